import pytest

from manager_pipeline.approvals import GateAction, decide
from manager_pipeline.config import EnvironmentPolicy
from manager_pipeline.events import DispatchEvent

STAGING = EnvironmentPolicy("staging", auto_apply=True, apply_branches=("main",))
PRODUCTION = EnvironmentPolicy("production", auto_apply=False, apply_branches=("main",))


def event(**fields):
    return DispatchEvent(source="web", environment="staging", **fields)


@pytest.mark.parametrize(
    "policy, fields, branch, changes, action, reason",
    [
        (STAGING, {}, "main", True, GateAction.APPLY, "staging applies automatically from main"),
        (STAGING, {}, "main", False, GateAction.NO_CHANGES, "no changes"),
        (STAGING, {"plan_only": True}, "main", True, GateAction.PLAN_ONLY, "plan-only run"),
        (STAGING, {"pr": 12}, "main", True, GateAction.PLAN_ONLY, "pull request #12"),
        (STAGING, {}, "feature/x", True, GateAction.PLAN_ONLY, "branch `feature/x` does not apply to staging"),
        (STAGING, {}, None, True, GateAction.PLAN_ONLY, "branch `unknown`"),
        (PRODUCTION, {}, "main", True, GateAction.AWAITING_APPROVAL, "awaiting approval: plan abc123"),
    ],
)
def test_gate_decisions(policy, fields, branch, changes, action, reason):
    decision = decide(policy, event(**fields), branch, changes, "abc123")
    assert decision.action is action
    assert reason in decision.reason
    assert decision.applies is (action is GateAction.APPLY)
