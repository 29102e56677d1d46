from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from manager_pipeline.config import EnvironmentPolicy
from manager_pipeline.events import DispatchEvent


class GateAction(str, Enum):
    APPLY = "apply"
    NO_CHANGES = "no-changes"
    PLAN_ONLY = "plan-only"
    AWAITING_APPROVAL = "awaiting-approval"
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class GateDecision:
    action: GateAction
    reason: str

    @property
    def applies(self) -> bool:
        return self.action is GateAction.APPLY


def decide(
    policy: EnvironmentPolicy,
    event: DispatchEvent,
    branch: str | None,
    has_changes: bool,
    plan_id: str,
    superseded_by: str | None = None,
) -> GateDecision:
    """Apply only what may be applied unattended: changes, on an allowed branch, auto_apply.

    ``branch`` is where the variables were read (the event's branch, or the checkout's).
    """
    if not has_changes:
        return GateDecision(GateAction.NO_CHANGES, "no changes: nothing to apply")
    if event.pr is not None:
        return GateDecision(GateAction.PLAN_ONLY, f"pull request #{event.pr}: plan only, applies happen after merge")
    if event.plan_only:
        return GateDecision(GateAction.PLAN_ONLY, "plan-only run")
    allowed = ", ".join(policy.apply_branches)
    if branch not in policy.apply_branches:
        return GateDecision(
            GateAction.PLAN_ONLY,
            f"branch `{branch or 'unknown'}` does not apply to {policy.name} (apply_branches: {allowed})",
        )
    if superseded_by:
        return GateDecision(
            GateAction.SUPERSEDED, f"superseded by delivery {superseded_by}: plan {plan_id} is not applied"
        )
    if not policy.auto_apply:
        return GateDecision(
            GateAction.AWAITING_APPROVAL, f"awaiting approval: plan {plan_id} ({policy.name} requires approval)"
        )
    return GateDecision(GateAction.APPLY, f"{policy.name} applies automatically from {branch}")
