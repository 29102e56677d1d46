"""Stage: what a fresh plan becomes - applied now, awaiting approval, or a preview - decided on the
policy the run started under (plans/gate.py), and for one that applies now, the apply requirements
asked before anything is applied."""

from __future__ import annotations

import time
from dataclasses import dataclass

from manager_pipeline.config.model import EnvironmentPolicy
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.outcome import Outcome, OutcomeStatus
from manager_pipeline.plans import ApplyFacts, Plan, Plans, PlanState, apply_requirements, sha256_file
from manager_pipeline.plans.gate import GateDecision, decide
from manager_pipeline.terraform import Workdir


class ApplyRefused(ManagerError):
    """Apply requirements that do not hold: each reason says what to do."""

    def __init__(self, heading: str, reasons: list[str]):
        self.reasons = reasons
        super().__init__(heading + "\n" + "\n".join(f"- {reason}" for reason in reasons))


@dataclass(frozen=True)
class GateResult:
    decision: GateDecision
    # The plan to apply now, or what the run reports instead (awaiting approval, a preview, no changes).
    approved: Plan | None = None
    held: Outcome | None = None


def gate(
    policy: EnvironmentPolicy,
    event: DispatchEvent,
    plan: Plan,
    workdir: Workdir,
    store: Plans,
    superseded_by: str | None = None,
) -> GateResult:
    decision = decide(
        policy,
        event,
        plan.branch if plan.branch_verified else None,
        plan.has_changes,
        plan.plan_id,
        superseded_by,
        claimed_branch=plan.branch,
    )
    store.transition(plan.plan_id, decision.state, note=decision.reason)
    if decision.applies:
        refusals = apply_requirements(
            store.get(plan.plan_id),
            policy,
            ApplyFacts(
                plan_file_sha256=sha256_file(plan.plan_file),
                newest_candidate=plan.plan_id,
                module_digest=workdir.module_digest,
                variables_digest=workdir.variables_digest,
                variables_problem=None,
                accepted_approvers=(),
                now=time.time(),
            ),
        )
        if refusals:
            store.transition(plan.plan_id, PlanState.REFUSED, note="; ".join(r.reason for r in refusals)[:1000])
            raise ApplyRefused("apply refused:", [r.reason for r in refusals])
        return GateResult(decision, approved=plan)
    # With no changes, what the plan shows as outputs is what the state holds.
    outputs = plan.planned_outputs if decision.outcome is OutcomeStatus.NO_CHANGES else {}
    held = Outcome(
        event=event,
        status=decision.outcome,
        headline=decision.reason,
        plan=plan,
        outputs=outputs,
        sha=plan.sha,
        branch=plan.branch,
    )
    return GateResult(decision, held=held)
