"""Approval policy and apply integrity: what may be applied, by whose approval, and what is refused."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from manager_pipeline.plans import ApplyFacts, Plan, PlanState, apply_requirements
from manager_pipeline.plans.approvals import Candidate, approved_by, judge
from manager_pipeline.config.file import parse_config
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


# --- the approval sensor: webhook notes between full polls -----------------------------------

SENSOR_CONFIG = """
sources:
  - {name: web, repo: acme/web}
  - {name: api, repo: acme/mono}
  - {name: batch, repo: acme/other}
environments:
  production: {auto_apply: false, approvers: [alice, bob]}
"""


class CountingGitHub:
    """A GitHubClient's approval reading, counting the requests per repository (alice approves what
    ``approving`` lists: (repo, pull request number) -> the commit her review is of)."""

    def __init__(self):
        self.calls: list[str] = []
        self.approving: dict[tuple[str, int], str] = {}

    def reviews(self, repo, number):
        from manager_pipeline.github.client import Review

        self.calls.append(repo)
        sha = self.approving.get((repo, number))
        # Given now: after the plans it is asked about (an older review approves none of them).
        return [Review(1, "alice", "APPROVED", sha, "ok", submitted_at=time.time())] if sha else []

    def issue_comments(self, repo, number):
        self.calls.append(repo)
        return []

    def commit_comments(self, repo, sha):
        self.calls.append(repo)
        return []

    def pulls_of_commit(self, repo, sha):
        self.calls.append(repo)
        return []

    def commit_author(self, repo, sha):
        self.calls.append(repo)
        return "dev"

    def in_team(self, login, team):
        return False


class FakeGitHubResource:
    configured = True

    def __init__(self, client):
        self._client = client

    def client(self, quick=False):
        return self._client


class FakePlanStore:
    def __init__(self, url, root):
        self.database_url, self.root = url, root

    def plans(self):
        from manager_pipeline.plans import Plans

        return Plans(self.database_url, self.root)


@pytest.fixture
def sensor_setup(tmp_path):
    from dagster import DagsterInstance, DagsterRun

    from manager_pipeline.defs.plans import approval_sensor
    from manager_pipeline.defs.resources import ManagerConfigResource
    from manager_pipeline.intake.inbox import Inbox
    from manager_pipeline.plans import PlanFacts

    (tmp_path / "manager.yaml").write_text(SENSOR_CONFIG)
    url = f"sqlite:///{tmp_path / 'manager.db'}"
    resources = {
        "manager": ManagerConfigResource(config_path=str(tmp_path / "manager.yaml")),
        "plans": FakePlanStore(url, tmp_path / "plans"),
        "github": FakeGitHubResource(CountingGitHub()),
    }
    store = resources["plans"].plans()
    (tmp_path / "plan.tfplan").write_bytes(b"plan")
    instance = DagsterInstance.ephemeral()  # the runs that made the plans carry the approvals' audit trail
    waiting = {}
    for source, repo, pr, sha in [
        ("web", "acme/web", 12, "a" * 40), ("api", "acme/mono", 3, "b" * 40), ("batch", "acme/other", 5, "c" * 40)
    ]:
        facts = PlanFacts(
            source=source, environment="production", sha=sha, branch="main", branch_verified=True, pr=pr,
            author="dev", repo=repo, variables_digest="v", module_digest="m", terraform_version="1.15.5",
            has_changes=True, summary=PlanSummary(to_add=("a.b",)), run_id=f"run-{source}",
        )
        instance.add_run(DagsterRun(job_name="deploy", run_id=f"run-{source}"))
        plan = store.save(tmp_path / "plan.tfplan", "Plan: 1 to add", facts)
        assert store.transition(plan.plan_id, PlanState.AWAITING)
        waiting[repo] = plan
    sensor = approval_sensor()
    return sensor, instance, resources, store, Inbox(url), waiting


def approval_tick(setup, cursor=None):
    from dagster import build_sensor_context

    sensor, instance, resources, *_ = setup
    with build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
        result = sensor(context)
        return list(getattr(result, "run_requests", None) or []), context.cursor


def test_between_full_polls_only_the_noted_pull_requests_plans_are_asked_about(sensor_setup):
    from manager_pipeline.intake.webhooks import read_delivery
    from manager_pipeline.plans.approvals import record
    from tests.support import review_payload

    _, _, resources, store, inbox, waiting = sensor_setup
    github = resources["github"].client()
    # The first tick polls every waiting plan: every repository is asked.
    runs, cursor = approval_tick(sensor_setup)
    assert runs == [] and set(github.calls) == {"acme/web", "acme/mono", "acme/other"}
    # Nothing noted, nothing new: a tick asks GitHub nothing.
    github.calls.clear()
    runs, cursor = approval_tick(sensor_setup, cursor)
    assert runs == [] and github.calls == []
    # Alice approves acme/web#12 and GitHub says so: only acme/web is asked, and its apply is requested.
    github.approving[("acme/web", 12)] = "a" * 40
    config = parse_config(SENSOR_CONFIG, ROOT)
    note = read_delivery(config, "pull_request_review", "r-1", review_payload(number=12, commit="a" * 40))
    assert inbox.note_approval(note)
    runs, cursor = approval_tick(sensor_setup, cursor)
    web, mono = waiting["acme/web"], waiting["acme/mono"]
    assert [r.run_key for r in runs] == [f"apply:{web.plan_id}"]
    assert set(github.calls) == {"acme/web"} and inbox.note_states() == {"done": 1}
    # A console approval (recorded in the database) is acted on in the next tick, not the next poll.
    github.calls.clear()
    [new] = record(store, mono, config.policy("production"), "dev", Candidate("bob", "console", "console:1"), no_team)
    assert new.accepted
    runs, cursor = approval_tick(sensor_setup, cursor)
    assert sorted(r.run_key for r in runs) == sorted([f"apply:{web.plan_id}", f"apply:{mono.plan_id}"])
    assert set(github.calls) == {"acme/mono"} and store.get(mono.plan_id).state is PlanState.APPROVED
    github.calls.clear()
    approval_tick(sensor_setup, cursor)
    assert github.calls == []
    # 15 s after the last full poll, the next tick asks about every plan still waiting.
    approval_tick(sensor_setup, json.dumps(json.loads(cursor) | {"full_poll_at": 0}))
    assert set(github.calls) == {"acme/other"}


# --- issue 10, hole 8: `/approve <env> <plan-id>`; the bare form only while one plan waits ---------


class ApproverComments(Comments):
    """A GitHubClient as GitHubApprovals reads it: pull request comments, no reviews, author "dev"."""

    def pulls_of_commit(self, repo, sha):
        return []

    def commit_author(self, repo, sha):
        return "dev"

    def in_team(self, login, team):
        return False


def waiting_plan(store, tmp_path, source, repo, pr, sha):
    from manager_pipeline.plans import PlanFacts

    (tmp_path / "plan.tfplan").write_bytes(b"plan")
    facts = PlanFacts(
        source=source, environment="production", sha=sha, branch="main", branch_verified=True, pr=pr,
        author="dev", repo=repo, variables_digest="v", module_digest="m", terraform_version="1.15.5",
        has_changes=True, summary=PlanSummary(to_add=("a.b",)),
    )
    plan = store.save(tmp_path / "plan.tfplan", "Plan: 1 to add", facts)
    assert store.transition(plan.plan_id, PlanState.AWAITING)
    return store.get(plan.plan_id)


def test_a_bare_approve_approves_only_the_sole_waiting_plan_and_a_plan_id_picks_one(tmp_path):
    from manager_pipeline.plans import Plans
    from manager_pipeline.plans.approvals import review

    production = parse_config(SENSOR_CONFIG, ROOT).policy("production")  # approvers alice, bob
    store = Plans(f"sqlite:///{tmp_path / 'manager.db'}", tmp_path / "plans")
    # A monorepo: two sources' plans wait for production at the same commit of the same pull request.
    api = waiting_plan(store, tmp_path, "api", "acme/mono", 3, "b" * 40)
    batch = waiting_plan(store, tmp_path, "batch", "acme/mono", 3, "b" * 40)
    comments = [Comment(1, "alice", "/approve production", created_at=api.created_at + 1, edited=False)]
    github = GitHubApprovals(ApproverComments(comments))
    for plan in (api, batch):
        verdict = review(plan, production, store, github)
        assert not verdict.approved and verdict.accepted == []
        # The refusal is recorded with what to do, not dropped in silence.
        [refused] = store.approvals(plan.plan_id)
        assert (refused.login, refused.origin, refused.accepted) == ("alice", "comment:1", False)
        assert "names no plan" in refused.reason and f"/approve production {plan.plan_id}" in refused.reason
    # Naming a plan approves exactly that one.
    comments.append(Comment(2, "alice", f"/approve production {batch.plan_id}", created_at=api.created_at + 2,
                            edited=False))
    assert review(batch, production, store, github).approved
    assert not review(api, production, store, github).approved
    assert [a.origin for a in store.approvals(api.plan_id)] == ["comment:1"]
    # With one plan waiting for its commit, the bare form approves it.
    web = waiting_plan(store, tmp_path, "web", "acme/web", 12, "a" * 40)
    alone = GitHubApprovals(ApproverComments([Comment(3, "bob", "/approve production", web.created_at + 1, False)]))
    verdict = review(web, production, store, alone)
    assert verdict.approved and verdict.accepted == ["bob"]


# --- issue 10, hole 10: one plan's failure never strands the others' applies ------------------------


class FailingForMono(CountingGitHub):
    """Alice approves every pull request's head; asking about acme/mono's pull request fails."""

    def reviews(self, repo, number):
        if repo == "acme/mono":
            raise RuntimeError("GitHub answered 502 for acme/mono")
        return super().reviews(repo, number)


def test_a_failing_plan_leaves_the_others_approved_with_their_applies_requested_every_tick(sensor_setup):
    _, _, resources, store, _, waiting = sensor_setup
    github = FailingForMono()
    resources["github"] = FakeGitHubResource(github)
    web, mono, other = waiting["acme/web"], waiting["acme/mono"], waiting["acme/other"]
    github.approving = {("acme/web", 12): "a" * 40, ("acme/mono", 3): "b" * 40, ("acme/other", 5): "c" * 40}
    # The first tick reviews all three in the order they were planned; the second one raises.
    assert [p.plan_id for p in store.list_plans(state=PlanState.AWAITING)] == [web.plan_id, mono.plan_id, other.plan_id]
    runs, cursor = approval_tick(sensor_setup)
    expected = {f"apply:{web.plan_id}", f"apply:{other.plan_id}"}
    assert {r.run_key for r in runs} == expected and len(runs) == 2
    assert {r.tags[".dagster/manager/plan-id"] for r in runs} == {web.plan_id, other.plan_id}
    assert store.get(mono.plan_id).state is PlanState.AWAITING
    assert {store.get(p.plan_id).state for p in (web, other)} == {PlanState.APPROVED}
    # The daemon lost those requests (no apply run was made): a later tick asks again, same run keys,
    # though nothing new was approved and GitHub is not asked about them again.
    github.calls.clear()
    runs, cursor = approval_tick(sensor_setup, cursor)
    assert {r.run_key for r in runs} == expected and len(runs) == 2
    assert "acme/web" not in github.calls and "acme/other" not in github.calls
    # A plan whose apply run exists is not asked for again.
    assert store.transition(web.plan_id, PlanState.APPLYING, apply_run_id="run-apply-web")
    runs, _ = approval_tick(sensor_setup, cursor)
    assert [r.run_key for r in runs] == [f"apply:{other.plan_id}"]
