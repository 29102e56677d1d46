"""Errors a user can cause and fix. Each message says what to change.

The CLI prints them as one line and exits 2 (usage) or 1 (a run that failed); ops turn
them into a Dagster ``Failure`` with the same text, so the UI, the CLI and the feedback
say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable


class ManagerError(Exception):
    """Base of the errors whose message is meant for the user as it stands."""


class ConfigError(ManagerError):
    """manager.yaml is missing, malformed or names something that does not exist.

    Raised with a message, or with ``problems`` (every problem of the file, each placed at
    ``manager.yaml:line:column``): one problem is the message itself, on one line; several
    are listed under a heading, like ContractError's.
    """

    def __init__(self, message: str | None = None, problems: Iterable[Problem] = ()):
        self.problems = list(problems)
        if message is None:
            message = str(self.problems[0]) if len(self.problems) == 1 else _listing(self.problems, "manager.yaml")
        super().__init__(message)


class UnknownSourceError(ConfigError):
    """A source or environment that manager.yaml does not register."""


class SourceError(ManagerError):
    """The variables of a source could not be read (missing file, unknown commit)."""


@dataclass(frozen=True)
class Problem:
    """One problem of a file (variables.yml, manager.yaml), placed at its key or value."""

    path: str
    message: str
    origin: str = "variables.yml"
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = f"{self.origin}:{self.line}:{self.column}" if self.line is not None else self.origin
        return f"{where}: {self.path}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.origin,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }


class ContractError(ManagerError):
    """variables.yml breaks the contract; ``problems`` lists every violation."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__(_listing(self.problems, "variables.yml"))


def _listing(problems: list[Problem], default_origin: str) -> str:
    origin = problems[0].origin if problems else default_origin
    count = len(problems)
    lines = "\n".join(f"  - {p}" for p in problems)
    return f"{origin} is not valid ({count} problem{'s' if count != 1 else ''}):\n{lines}"


class TerraformError(ManagerError):
    """A Terraform command failed; the message carries Terraform's own diagnostics."""


class LocalAwsError(ManagerError):
    """The embedded AWS stand-in could not be started or reached."""
