"""Errors a user can cause and fix. Each message says what to change.

The CLI prints them as one line and exits 2 (usage) or 1 (a run that failed); ops turn
them into a Dagster ``Failure`` with the same text, so the UI, the CLI and the feedback
say the same thing.
"""


class ManagerError(Exception):
    """Base of the errors whose message is meant for the user as it stands."""


class ConfigError(ManagerError):
    """manager.yaml is missing, malformed or names something that does not exist."""


class UnknownSourceError(ConfigError):
    """A source or environment that manager.yaml does not register."""


class SourceError(ManagerError):
    """The variables of a source could not be read (missing file, unknown commit)."""


class ContractError(ManagerError):
    """variables.yml breaks the contract; ``problems`` lists every violation."""

    def __init__(self, problems: list[str], origin: str = "variables.yml"):
        self.problems = list(problems)
        self.origin = origin
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{origin} is not valid ({len(self.problems)} problem(s)):\n{lines}")


class TerraformError(ManagerError):
    """A Terraform command failed; the message carries Terraform's own diagnostics."""


class LocalAwsError(ManagerError):
    """The embedded AWS stand-in could not be started or reached."""
