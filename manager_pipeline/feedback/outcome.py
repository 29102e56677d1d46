from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Mapping

from manager_pipeline.events import DispatchEvent

if TYPE_CHECKING:
    from manager_pipeline.plans import Plan


class OutcomeStatus(str, Enum):
    APPLIED = "applied"
    NO_CHANGES = "no-changes"
    PLAN_ONLY = "plan-only"
    AWAITING_APPROVAL = "awaiting-approval"
    SUPERSEDED = "superseded"
    FAILED = "failed"

    @property
    def succeeded(self) -> bool:
        return self is not OutcomeStatus.FAILED


@dataclass(frozen=True)
class Outcome:
    """How a run ended, with what the source repo should be told about it."""

    event: DispatchEvent
    status: OutcomeStatus
    headline: str
    plan: Plan | None = None
    outputs: Mapping[str, Any] = field(default_factory=dict)
    failed_stage: str | None = None
    error: str | None = None
    sha: str | None = None
    branch: str | None = None
