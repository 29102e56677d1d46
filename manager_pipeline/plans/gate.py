"""The deploy run's decision after its plan: what the plan becomes, and what the run reports."""

from __future__ import annotations

from dataclasses import dataclass

from manager_pipeline.config.model import EnvironmentPolicy
from manager_pipeline.events import DispatchEvent
from manager_pipeline.markdown import inline_code
from manager_pipeline.plans.state import OutcomeStatus, PlanState


@dataclass(frozen=True)
class GateDecision:
    state: PlanState
    # How the run ends when it stops at the gate (an approved plan goes on to its apply).
    outcome: OutcomeStatus
    reason: str

    @property
    def applies(self) -> bool:
        return self.state is PlanState.APPROVED


def decide(
    policy: EnvironmentPolicy,
    event: DispatchEvent,
    branch: str | None,
    has_changes: bool,
    plan_id: str,
    superseded_by: str | None = None,
    claimed_branch: str | None = None,
) -> GateDecision:
    """Apply only what may be applied unattended: changes, on an allowed branch, auto_apply.

    ``branch`` is the branch the commit was verified to be on (None: not verified);
    ``claimed_branch`` the one the event or checkout named.
    """
    if not has_changes:
        return GateDecision(PlanState.PREVIEW, OutcomeStatus.NO_CHANGES, "no changes: nothing to apply")
    if event.pr is not None:
        return GateDecision(
            PlanState.PREVIEW, OutcomeStatus.PLAN_ONLY, f"pull request #{event.pr}: plan only, applies happen after merge"
        )
    if event.plan_only:
        return GateDecision(PlanState.PREVIEW, OutcomeStatus.PLAN_ONLY, "plan-only run")
    if branch is None and claimed_branch in policy.apply_branches:
        return GateDecision(
            PlanState.PREVIEW,
            OutcomeStatus.PLAN_ONLY,
            f"the commit is not verified to be on {inline_code(claimed_branch)} (not its head on GitHub, not reachable from "
            "it in the checkout, or changed and not committed): plan only",
        )
    if branch not in policy.apply_branches:
        allowed = ", ".join(policy.apply_branches)
        return GateDecision(
            PlanState.PREVIEW,
            OutcomeStatus.PLAN_ONLY,
            f"branch {inline_code(branch or 'unknown')} does not apply to {policy.name} (apply_branches: {allowed})",
        )
    if superseded_by:
        return GateDecision(
            PlanState.SUPERSEDED,
            OutcomeStatus.SUPERSEDED,
            f"superseded by delivery {superseded_by}: plan {plan_id} is not applied",
        )
    if event.destroy:
        return GateDecision(
            PlanState.AWAITING,
            OutcomeStatus.AWAITING_APPROVAL,
            f"awaiting approval: destroy plan {plan_id} (every destroy needs approval, in {policy.name} too)",
        )
    if not policy.auto_apply:
        return GateDecision(
            PlanState.AWAITING,
            OutcomeStatus.AWAITING_APPROVAL,
            f"awaiting approval: plan {plan_id} ({policy.name} requires approval)",
        )
    return GateDecision(PlanState.APPROVED, OutcomeStatus.APPLIED, f"{policy.name} applies automatically from {branch}")
