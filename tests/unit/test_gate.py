import pytest

from manager_pipeline.config.model import EnvironmentPolicy
from manager_pipeline.events import DispatchEvent
from manager_pipeline.feedback import OutcomeStatus
from manager_pipeline.plans import PlanState
from manager_pipeline.plans.gate import decide
from manager_pipeline.plans.state import TRANSITIONS, sources_of

STAGING = EnvironmentPolicy("staging", auto_apply=True, apply_branches=("main",))
PRODUCTION = EnvironmentPolicy("production", auto_apply=False, apply_branches=("main",))


def event(**fields):
    return DispatchEvent(source="web", environment="staging", **fields)


@pytest.mark.parametrize(
    "policy, fields, branch, changes, state, outcome, reason",
    [
        (STAGING, {}, "main", True, PlanState.APPROVED, OutcomeStatus.APPLIED, "staging applies automatically"),
        (STAGING, {}, "main", False, PlanState.PREVIEW, OutcomeStatus.NO_CHANGES, "no changes"),
        (STAGING, {"plan_only": True}, "main", True, PlanState.PREVIEW, OutcomeStatus.PLAN_ONLY, "plan-only run"),
        (STAGING, {"pr": 12}, "main", True, PlanState.PREVIEW, OutcomeStatus.PLAN_ONLY, "pull request #12"),
        (STAGING, {}, "feature/x", True, PlanState.PREVIEW, OutcomeStatus.PLAN_ONLY, "`feature/x` does not apply"),
        (STAGING, {}, None, True, PlanState.PREVIEW, OutcomeStatus.PLAN_ONLY, "branch `unknown`"),
        (PRODUCTION, {}, "main", True, PlanState.AWAITING, OutcomeStatus.AWAITING_APPROVAL, "awaiting approval: plan"),
    ],
)
def test_gate_decisions(policy, fields, branch, changes, state, outcome, reason):
    decision = decide(policy, event(**fields), branch, changes, "abc123")
    assert (decision.state, decision.outcome) == (state, outcome)
    assert reason in decision.reason
    assert decision.applies is (state is PlanState.APPROVED)


def test_a_superseded_delivery_is_never_applied():
    decision = decide(STAGING, event(), "main", True, "abc123", superseded_by="d-9")
    assert decision.state is PlanState.SUPERSEDED and not decision.applies


def test_only_an_approved_plan_starts_applying_and_finished_plans_never_move():
    assert sources_of(PlanState.APPLYING) == {PlanState.APPROVED}
    assert sources_of(PlanState.APPLIED) == {PlanState.APPLYING}
    for final in (PlanState.APPLIED, PlanState.FAILED, PlanState.REFUSED, PlanState.SUPERSEDED, PlanState.PREVIEW):
        assert final not in TRANSITIONS


def test_a_claimed_but_unverified_apply_branch_only_plans():
    decision = decide(STAGING, event(), None, True, "abc123", claimed_branch="main")
    assert decision.state is PlanState.PREVIEW and "not verified to be on `main`" in decision.reason
