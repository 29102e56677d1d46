"""What one doctor check found: a name, a status, and one line saying what is missing and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from manager_pipeline.redact import redact_text


class Status(str, Enum):
    OK = "ok"
    FAILED = "failed"
    # The check could not ask (no network to GitHub, a service down): counted as not passed.
    COULD_NOT_RUN = "could-not-run"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    line: str

    def __post_init__(self) -> None:
        # One line, and every secret this process knows masked (a check never puts one in; this is the net).
        object.__setattr__(self, "line", redact_text(" ".join(self.line.split())))

    @property
    def passed(self) -> bool:
        return self.status is Status.OK

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status.value, "line": self.line}


def ok(name: str, line: str) -> CheckResult:
    return CheckResult(name, Status.OK, line)


def failed(name: str, line: str) -> CheckResult:
    return CheckResult(name, Status.FAILED, line)


def could_not_run(name: str, line: str) -> CheckResult:
    return CheckResult(name, Status.COULD_NOT_RUN, line)
