"""Errors a user can cause and fix. Each message says what to change.

The CLI prints them as one line and exits 2 (usage) or 1 (a run that failed); ops turn
them into a Dagster ``Failure`` with the same text, so the UI, the CLI and the feedback
say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ManagerError(Exception):
    """Base of the errors whose message is meant for the user as it stands."""


class ConfigError(ManagerError):
    """manager.yaml is missing, malformed or names something that does not exist."""


class UnknownSourceError(ConfigError):
    """A source or environment that manager.yaml does not register."""


class SourceError(ManagerError):
    """The variables of a source could not be read (missing file, unknown commit)."""


@dataclass(frozen=True)
class Problem:
    """One violation of the variables.yml contract, placed in its file."""

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
        origin = self.problems[0].origin if self.problems else "variables.yml"
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{origin} is not valid ({count} problem{'s' if count != 1 else ''}):\n{lines}")


class TerraformError(ManagerError):
    """A Terraform command failed; the message carries Terraform's own diagnostics."""


class LocalAwsError(ManagerError):
    """The embedded AWS stand-in could not be started or reached."""
