from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from manager_pipeline.events import DispatchEvent
from manager_pipeline.plans.state import OutcomeStatus

if TYPE_CHECKING:
    from manager_pipeline.plans import Plan

__all__ = ["Outcome", "OutcomeStatus"]


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
    # Places in the source's variables file to point at (validation problems, policy failures on a field,
    # a Terraform error naming a variable), as ``Problem.to_dict()`` data (it crosses processes), plus an
    # optional ``level`` (failure, warning, notice): a GitHub App's check run annotates each at its line.
    annotations: tuple[Mapping[str, Any], ...] = ()
