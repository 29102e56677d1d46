"""Approval policy and apply integrity: what may be applied, by whose approval, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from manager_pipeline.plans import ApplyFacts, Plan, PlanState, apply_requirements
from manager_pipeline.plans.approvals import Candidate, approved_by, judge
from manager_pipeline.config import parse_config
from manager_pipeline.errors import ConfigError
from manager_pipeline.github.approvals import ApproveCommand, GitHubApprovals, approve_command
from manager_pipeline.github.client import Comment
from manager_pipeline.terraform.plan import PlanSummary

ROOT = Path("/srv/manager/manager.yaml")


def policy(**settings):
    body = ", ".join(f"{key}: {value}" for key, value in settings.items())
    return parse_config(f"environments:\n  production: {{{body}}}\n", ROOT).policy("production")


def test_policy_fields_and_defaults():
    gated = policy(auto_apply="false", approvers="[alice, acme/platform]", max_plan_age="12h")
    assert gated.gated and gated.required_approvals == 1 and gated.approvers == ("alice", "acme/platform")
    assert gated.allow_self_approval is False and gated.max_plan_age_hours == 12
    assert policy(auto_apply="true").required_approvals == 0
    assert policy(auto_apply="false", approvers="[a]", max_plan_age="7d").max_plan_age_hours == 168


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"required_approvals": 2}, "requires 2 approval(s) but names no `approvers`"),
        ({"required_approvals": -1, "approvers": "[a]"}, "expected a whole number from 0 to 10"),
        ({"approvers": "[bad login!]"}, "neither a GitHub login nor an `org/team` slug"),
        ({"max_plan_age": "soon", "approvers": "[a]"}, "expected hours or days such as `12h` or `7d`"),
        ({"allow_self_approval": "maybe", "approvers": "[a]"}, "expected true or false"),
        ({"auto_apply": "true", "required_approvals": 1, "approvers": "[a]"}, "applies without approval"),
        ({"aproovers": "[a]"}, "unknown key `aproovers`; did you mean `approvers`?"),
    ],
)
def test_invalid_policy_is_an_error_at_load_time(settings, message):
    with pytest.raises(ConfigError) as caught:
        policy(**settings)
    assert message in str(caught.value)


def no_team(login, team):
    return False


def test_who_may_approve():
    gated = policy(approvers="[alice, acme/platform]")
    assert judge(gated, "bob", Candidate("Alice", "console", "c1"), no_team) is None
    assert "not an approver of production" in judge(gated, "bob", Candidate("mallory", "console", "c2"), no_team)
    assert "is the author of the change" in judge(gated, "alice", Candidate("alice", "review", "r1"), no_team)
    in_platform = lambda login, team: (login, team) == ("carol", "acme/platform")  # noqa: E731
    assert judge(gated, "bob", Candidate("carol", "comment", "c3"), in_platform) is None
    selfish = policy(approvers="[alice]", allow_self_approval="true")
    assert judge(selfish, "alice", Candidate("alice", "review", "r2"), no_team) is None
    assert "has no approvers" in judge(policy(auto_apply="false"), None, Candidate("x", "console", "c"), no_team)


def test_approvals_count_people_not_comments():
    two = policy(approvers="[a, b]", required_approvals=2)
    assert not approved_by(two, ["a", "A"]) and approved_by(two, ["a", "b"])


@pytest.mark.parametrize(
    "body, expected",
    [
        ("/approve production", ApproveCommand(None, None)),
        ("/approve production reviewed the db change\nmore", ApproveCommand(None, "reviewed the db change")),
        ("/approve production 0123456789ab", ApproveCommand("0123456789ab", None)),
        ("/approve production 0123456789ab looks right", ApproveCommand("0123456789ab", "looks right")),
        ("  /approve production", ApproveCommand(None, None)),
        ("/approve staging", None),
        ("please /approve production", None),
        ("/approved production", None),
    ],
)
def test_approve_comment_command(body, expected):
    assert approve_command(body, "production") == expected


def test_an_unknown_author_cannot_be_ruled_out_as_the_approver():
    gated = policy(approvers="[alice]")
    assert "the author of the change is unknown" in judge(gated, None, Candidate("alice", "console", "c"), no_team)
    lenient = policy(approvers="[alice]", allow_self_approval="true")
    assert judge(lenient, None, Candidate("alice", "console", "c"), no_team) is None


class Comments:
    """A GitHubClient's comment reading, as GitHubApprovals uses it."""

    def __init__(self, comments):
        self.comments = comments

    def reviews(self, repo, number):
        return []

    def issue_comments(self, repo, number):
        return self.comments

    def commit_comments(self, repo, sha):
        return []


def test_an_edited_comment_never_counts_as_an_approval():
    comments = [
        Comment(1, "carol", "/approve production", created_at=100.0, edited=True),
        Comment(2, "dave", "/approve production 0123456789ab ok", created_at=100.0, edited=False),
    ]
    found = GitHubApprovals(Comments(comments)).candidates("acme/web", "f" * 40, "production", [7], since=50.0)
    assert [(c.login, c.plan_id, c.reason) for c in found] == [("dave", "0123456789ab", "ok")]


def saved_plan(tmp_path, **changes) -> Plan:
    fields = dict(
        plan_id="abc123abc123",
        source="web",
        environment="production",
        sha="f" * 40,
        branch="main",
        branch_verified=True,
        pr=None,
        author="bob",
        repo=None,
        created_at=1_000_000.0,
        plan_sha256="1" * 64,
        variables_digest="v1",
        module_digest="m1",
        terraform_version="1.15.5",
        has_changes=True,
        summary=PlanSummary(to_add=("a.b",)),
        state=PlanState.AWAITING,
        directory=tmp_path,
        run_id="r",
    )
    return Plan(**(fields | changes))


def check(tmp_path, plan=None, **changes) -> list:
    facts = dict(
        plan_file_sha256="1" * 64,
        newest_candidate="abc123abc123",
        module_digest="m1",
        variables_digest="v1",
        variables_problem=None,
        accepted_approvers=("alice",),
        now=1_000_000.0 + 3600,
    )
    return apply_requirements(plan or saved_plan(tmp_path), policy(approvers="[alice]"), ApplyFacts(**(facts | changes)))


def test_a_clean_approved_plan_passes(tmp_path):
    assert check(tmp_path) == []


@pytest.mark.parametrize(
    "changes, message, final",
    [
        ({"plan_file_sha256": "2" * 64}, "is not the one that was planned (sha256 differs)", True),
        ({"newest_candidate": "fff000fff000"}, "plan fff000fff000 is newer for web/production", True),
        ({"module_digest": "m2"}, "the manager's terraform/ changed since plan", True),
        ({"variables_digest": "v2"}, "the source's variables changed since plan", True),
        ({"variables_problem": "no variables file"}, "cannot be checked: no variables file", True),
        ({"now": 1_000_000.0 + 8 * 24 * 3600}, "192 h old; production applies plans up to 168 h old", True),
        ({"accepted_approvers": ()}, "has 0 of 1 required approval(s)", False),
    ],
)
def test_apply_refusals_say_what_to_do(tmp_path, changes, message, final):
    found = check(tmp_path, **changes)
    assert [(message in r.reason, r.final) for r in found] == [(True, final)], found


@pytest.mark.parametrize(
    "state, message",
    [
        (PlanState.APPLIED, "was applied already"),
        (PlanState.APPLYING, "is being applied by run"),
        (PlanState.PREVIEW, "is a preview"),
        (PlanState.SUPERSEDED, "is superseded"),
        (PlanState.EXPIRED, "is expired"),
    ],
)
def test_a_plan_past_waiting_is_refused_by_its_state(tmp_path, state, message):
    reasons = [r.reason for r in check(tmp_path, plan=saved_plan(tmp_path, state=state, apply_run_id="x"))]
    assert any(message in r for r in reasons), reasons


def test_a_branch_the_commit_was_not_seen_on_is_refused(tmp_path):
    reasons = [r.reason for r in check(tmp_path, plan=saved_plan(tmp_path, branch_verified=False))]
    assert reasons == ["commit ffffffffffff of plan abc123abc123 was not verified to be on `main`"]


def test_feature_branches_are_refused(tmp_path):
    reasons = [r.reason for r in check(tmp_path, plan=saved_plan(tmp_path, branch="feature"))]
    assert any("branch `feature` does not apply to production" in r for r in reasons)
