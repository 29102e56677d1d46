"""A plan's life: one vocabulary, and the only moves it may make.

```
planned -> preview                      (no changes, a pull request, a plan-only run, another branch)
planned -> awaiting-approval -> approved -> applying -> applied | failed
planned -> approved (auto_apply)
planned -> policy-failed                (an enforced policy check failed: never approved, never applied)
awaiting-approval | approved -> refused | superseded | expired
```
Every change of state is a compare-and-set on the plan's row (``Plans.transition``), so two
processes racing on one plan cannot both win: one apply, one winner.
"""

from __future__ import annotations

from enum import Enum


class PlanState(str, Enum):
    PLANNED = "planned"
    PREVIEW = "preview"
    AWAITING = "awaiting-approval"
    APPROVED = "approved"
    APPLYING = "applying"
    APPLIED = "applied"
    FAILED = "failed"
    REFUSED = "refused"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"
    # An enforced policy check failed (policy/): it can never be approved or applied; fix and re-plan.
    POLICY_FAILED = "policy-failed"

    @property
    def candidate(self) -> bool:
        """Whether a plan in this state is, or was, meant to be applied (previews never are)."""
        return self not in (PlanState.PLANNED, PlanState.PREVIEW)

    @property
    def waiting(self) -> bool:
        """Still a candidate for an apply that has not started."""
        return self in (PlanState.AWAITING, PlanState.APPROVED)


_FROM_GATE = {PlanState.PREVIEW, PlanState.AWAITING, PlanState.APPROVED, PlanState.SUPERSEDED}
_ENDED_WAITING = {PlanState.REFUSED, PlanState.SUPERSEDED, PlanState.EXPIRED}

TRANSITIONS: dict[PlanState, frozenset[PlanState]] = {
    PlanState.PLANNED: frozenset({*_FROM_GATE, PlanState.POLICY_FAILED}),
    PlanState.AWAITING: frozenset({PlanState.APPROVED, *_ENDED_WAITING}),
    PlanState.APPROVED: frozenset({PlanState.APPLYING, *_ENDED_WAITING}),
    PlanState.APPLYING: frozenset({PlanState.APPLIED, PlanState.FAILED}),
}


def sources_of(target: PlanState) -> frozenset[PlanState]:
    """The states a plan may move to ``target`` from."""
    return frozenset(state for state, targets in TRANSITIONS.items() if target in targets)


# How a run ends, as the gate decides it with the plan's state (plans/gate.py); the run's `Outcome`
# (outcome.py) carries it to the feedback.
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
