"""Check runs (feedback/checks.py): annotations at their lines, 50 a request, the status a refused check run
becomes, and a check run's "Plan again" (a signed `check_run` delivery, built from GitHub's published
`requested_action` example) taken once, from a collaborator with write access only, as a plan."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from manager_pipeline.contract import load_variables
from manager_pipeline.errors import ContractError, TerraformError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.feedback import checks, github_items
from manager_pipeline.feedback.outbox import FeedbackItem
from manager_pipeline.github.client import CheckRun, GitHubError
from manager_pipeline.intake.dispatch import plan_dispatch
from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.intake.receiver import ConfigWatcher, WebhookApp
from manager_pipeline.intake.webhooks import signature_for
from manager_pipeline.outcome import Outcome, OutcomeStatus
from manager_pipeline.sources import VariablesDocument

REPO = Path(__file__).resolve().parent.parent.parent
WEBHOOKS = REPO / "tests" / "github_spec" / "webhooks"
VARIABLES = (REPO / "examples" / "source_monorepo" / "infra" / "variables.yml").read_text()
SECRET = "example-secret"
HELLO = "Codertocat/Hello-World"
SHA = "a" * 40


def two_problems() -> str:
    return VARIABLES.replace("networking:", "netwroking:").replace("min_instances: 1", "min_instances: -1")


def test_a_contract_error_is_annotated_at_each_line_of_the_file():
    origin = f"acme/web@{SHA[:12]}:infra/variables.yml"
    with pytest.raises(ContractError) as caught:
        load_variables(two_problems(), ["staging", "production"], origin)
    annotations = [checks.annotation(a) for a in checks.annotations_of(caught.value)]
    lines = two_problems().splitlines()
    assert len(annotations) == 2
    assert {a["path"] for a in annotations} == {"infra/variables.yml"}
    assert all(a["annotation_level"] == "failure" for a in annotations)
    found = sorted(lines[a["start_line"] - 1].strip() for a in annotations)
    assert found == ["min_instances: -1", "netwroking:"]


def test_a_terraform_error_that_names_a_variable_is_annotated_at_its_key():
    document = VariablesDocument("app", VARIABLES, f"acme/web@{SHA[:12]}:infra/variables.yml", SHA, "main")
    error = TerraformError('Error: Invalid value for variable\n  on variables.tf line 40:\n  var.networking.vpc_cidr')
    (found,) = checks.annotations_of(error, document)
    assert VARIABLES.splitlines()[found["line"] - 1].strip().startswith("vpc_cidr:")
    assert found["path"] == "networking.vpc_cidr" and "Invalid value for variable" in found["message"]


class FakeChecks:
    def __init__(self, refuse: str | None = None):
        self.calls: list[tuple] = []
        self.runs: list[CheckRun] = []
        self.refuse = refuse

    def check_runs(self, repo, sha, name):
        if self.refuse:
            raise GitHubError("check runs", 403, self.refuse)
        return list(self.runs)

    def create_check_run(self, repo, body):
        self.calls.append(("create", body))
        run = CheckRun(len(self.runs) + 1, body["name"], body["external_id"], body.get("status", "queued"), 1)
        self.runs.append(run)
        return run

    def update_check_run(self, repo, check_run_id, body):
        self.calls.append(("update", check_run_id, body))

    def create_status(self, repo, sha, context, state, description, target_url):
        self.calls.append(("status", context, state, description))


def failed_outcome(problems: int) -> Outcome:
    annotations = tuple(
        {"file": "acme/web@x:infra/variables.yml", "line": i + 1, "column": 1, "path": f"k{i}", "message": "bad"}
        for i in range(problems)
    )
    event = DispatchEvent("app", "staging", sha=SHA)
    return Outcome(event, OutcomeStatus.FAILED, "failed", failed_stage="validate", error="bad", annotations=annotations)


def completed(outcome: Outcome) -> FeedbackItem:
    status = github_items.outcome_status("acme/web", SHA, outcome, "http://ui/runs/run-1")
    return checks.completed(status, outcome, "run-1", "http://ui/runs/run-1")


def test_annotations_go_50_a_request_and_a_retry_updates_the_same_check_run():
    item = completed(failed_outcome(120))
    github = FakeChecks()
    assert checks.send(github, item) is None
    create, *updates = github.calls
    assert create[0] == "create" and len(create[1]["output"]["annotations"]) == 50
    assert create[1]["conclusion"] == "failure" and create[1]["name"] == "manager-pipeline/staging"
    assert [len(u[2]["output"]["annotations"]) for u in updates] == [50, 20]
    assert all(u[2]["output"]["title"] and u[2]["output"]["summary"] for u in updates)
    github.calls.clear()
    checks.send(github, item)  # delivered again: found by its external id, not made twice
    assert github.calls[0][0] == "update" and len(github.runs) == 1


def test_a_queued_check_run_is_taken_over_by_its_run():
    github = FakeChecks()
    queued = github_items.queued("acme/web", SHA, "staging", "http://ui/runs")
    checks.send(github, checks.queued(queued, "app", "staging", "d-1", "http://ui/runs"))
    started = github_items.started("acme/web", SHA, "staging", "http://ui/runs/run-1")
    checks.send(github, checks.started(started, "app", "staging", "run-1", "http://ui/runs/run-1", "d-1"))
    assert [c[0] for c in github.calls] == ["create", "update"]
    assert github.calls[1][2]["external_id"] == "manager-pipeline:app:staging:run-1"


def test_a_refused_check_run_becomes_its_status_and_says_so():
    item = completed(failed_outcome(2))
    github = FakeChecks(refuse="Resource not accessible by integration")
    note = checks.send(github, item)
    assert github.calls == [("status", "manager-pipeline/staging", "failure", "Failed at validate: bad")]
    assert "checks: write" in note and "403" in note
    limited = FakeChecks(refuse="API rate limit exceeded")
    with pytest.raises(GitHubError):  # a rate limit is tried again later, not taken for a refusal
        checks.send(limited, item)


def test_the_plan_summary_leads_the_output_and_the_button_is_offered():
    event = DispatchEvent("app", "production", sha=SHA)
    outcome = Outcome(event, OutcomeStatus.AWAITING_APPROVAL, "waits")
    item = completed(outcome)
    assert isinstance(item, FeedbackItem) and item.kind == checks.KIND
    assert item.payload["conclusion"] == "action_required"
    assert item.payload["details_url"] == "http://ui/runs/run-1"
    assert item.payload["actions"][0]["identifier"] == checks.PLAN_AGAIN
    assert item.payload["fallback"]["state"] == "pending"


# --- "Plan again" ------------------------------------------------------------------------------

CONFIG = """
sources:
  - {name: hello, repo: Codertocat/Hello-World}
environments:
  staging: {auto_apply: true, apply_branches: [master]}
  production: {auto_apply: false, apply_branches: [master]}
"""
PERMISSIONS = {"maintainer": "write", "owner": "admin", "reader": "read"}


def press(login: str = "maintainer", identifier: str = checks.PLAN_AGAIN, environment: str = "staging") -> dict:
    published = json.loads((WEBHOOKS / "check_run.json").read_text())["examples"]
    payload = copy.deepcopy(next(e for e in published if e["action"] == "requested_action"))
    payload["repository"]["full_name"] = HELLO
    payload["check_run"]["external_id"] = checks.external_id("hello", environment, "run-1")
    payload["check_run"]["head_sha"] = SHA
    payload["requested_action"] = {"identifier": identifier}
    payload["sender"]["login"] = login
    return payload


def deliver(app: WebhookApp, payload: dict, delivery: str):
    body = json.dumps(payload).encode()
    headers = {"X-GitHub-Event": "check_run", "X-GitHub-Delivery": delivery,
               "X-Hub-Signature-256": signature_for(SECRET.encode(), body)}
    return app.handle(headers, body)


@pytest.fixture
def receiver(tmp_path):
    (tmp_path / "manager.yaml").write_text(CONFIG)
    asked = []

    def permission(repo, login):
        asked.append((repo, login))
        return PERMISSIONS.get(login, "none")

    app = WebhookApp(SECRET, ConfigWatcher(tmp_path / "manager.yaml"), Inbox(f"sqlite:///{tmp_path / 'inbox.db'}"),
                     environ={}, permission=permission)
    app.asked = asked
    return app


def test_plan_again_plans_its_check_runs_environment_once(receiver):
    status, answer = deliver(receiver, press(), "press-1")
    assert (status, answer["status"]) == (202, "queued") and receiver.asked == [(HELLO, "maintainer")]
    assert deliver(receiver, press(), "press-1") == (200, {"status": "duplicate"})  # redelivered
    assert deliver(receiver, press(login="owner"), "press-2")[1]["status"] == "duplicate"  # the same button
    events = receiver.inbox.after(0, 10)
    assert len(events) == 1
    delivery = events[0].delivery
    assert (delivery.sources, delivery.environment, delivery.sha) == (("hello",), "staging", SHA)
    plan = plan_dispatch(events, receiver.config.current(), lambda d, s: False)
    (run,) = plan.runs
    assert (run.source, run.environment) == ("hello", "staging")
    tags = DispatchEvent.from_tags("hello", "staging", run.tags())
    assert tags.plan_only and tags.sha == SHA  # no button applies anything, on a branch's commit either


@pytest.mark.parametrize("login", ["reader", "stranger"])
def test_plan_again_needs_write_access_as_github_says(receiver, login):
    status, answer = deliver(receiver, press(login=login), f"press-{login}")
    assert (status, answer["status"]) == (202, "ignored") and "needs write" in answer["reason"]
    assert receiver.inbox.after(0, 10) == []


def test_other_buttons_and_check_runs_of_others_start_nothing(receiver):
    assert deliver(receiver, press(identifier="lgtm"), "other-1")[1]["status"] == "ignored"
    foreign = press()
    foreign["check_run"]["external_id"] = "someone-else:1"
    assert deliver(receiver, foreign, "other-2")[1]["status"] == "ignored"
    assert receiver.asked == [] and receiver.inbox.after(0, 10) == []


def test_an_enforced_policy_failure_is_annotated_at_the_section_that_builds_its_resource():
    from manager_pipeline.pipeline.policy import PolicyFailed
    from manager_pipeline.policy import Finding, PolicyResult

    failing = Finding("CKV_AWS_130", "aws_subnet.public[0]", "public IPs on launch", "https://docs.example/130",
                      "enforced")
    result = PolicyResult("staging", (failing,), (), (), 10, "checkov 3.3.30", 1.0)
    line = VARIABLES.splitlines().index("networking:") + 1
    exc = PolicyFailed(result, {failing.resource: f"acme/web@{SHA[:12]}:infra/variables.yml:{line}: `networking`"})
    (found,) = [checks.annotation(a) for a in checks.annotations_of(exc)]
    assert (found["path"], found["start_line"], found["title"]) == ("infra/variables.yml", line, "networking")
    assert found["message"].startswith("CKV_AWS_130 aws_subnet.public[0]: public IPs on launch")
