"""Runs of the deploy job when the manager is a GitHub App: check runs (their annotations at the lines of
infra/variables.yml, the plan summary, "Plan again"), and the commit status a refused check run becomes.

The real PyGithub talks to the GitHub stand-in, which holds every request and reply to GitHub's REST
description (tests/github_spec/): checks create, update and list, and the collaborator permission lookup."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from manager_pipeline.defs.instance import open_instance
from manager_pipeline.defs.jobs import DEPLOY_JOB
from manager_pipeline.defs.location import build_definitions
from manager_pipeline.defs.resources import github_resource
from manager_pipeline.feedback import checks
from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.intake.receiver import ConfigWatcher, WebhookApp
from manager_pipeline.intake.webhooks import signature_for
from tests.support import EXAMPLE_VARIABLES, LIGHT_MODULE, QUIET, REPO, run_partition, sensor_tick

pytestmark = pytest.mark.integration

# What is fed back, dispatched or superseded is under test here, not what terraform/ builds.
TERRAFORM_DIR = LIGHT_MODULE

ALL_PERMISSIONS = {"checks": "write", "statuses": "write", "contents": "read", "pull_requests": "write",
                   "issues": "write", "metadata": "read"}
SECRET = "press-secret"


@pytest.fixture
def app_source(github_source, github_standin, monkeypatch, request):
    """``github_source`` reached as a GitHub App installation (no token); the App's permissions are
    ``ALL_PERMISSIONS`` unless the test gives others (indirect parametrization)."""
    permissions = getattr(request, "param", ALL_PERMISSIONS)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    github_standin._call("POST", "app", {"app_id": 5151, "public_key": public, "installation_id": 61,
                                         "slug": "manager-app", "permissions": permissions})
    monkeypatch.delenv("GITHUB_TOKEN")
    for name, value in {"GITHUB_APP_ID": "5151", "GITHUB_APP_PRIVATE_KEY": private,
                        "GITHUB_APP_INSTALLATION_ID": "61"}.items():
        monkeypatch.setenv(name, value)
    return github_source


def runs_of(github_standin, name: str, sha: str) -> list[dict]:
    return [r for r in github_standin.state(name)["check_runs"] if r["head_sha"] == sha]


def statuses_of(github_standin, name: str, sha: str) -> list[dict]:
    return [s for s in github_standin.state(name)["statuses"] if s["sha"] == sha]


def test_two_problems_fail_the_check_run_with_an_annotation_at_each_line(manager, github_standin, app_source):
    name = app_source["name"]
    variables = EXAMPLE_VARIABLES.read_text().replace("networking:", "netwroking:")
    variables = variables.replace("min_instances: 1", "min_instances: -1")
    bad = hashlib.sha1(b"two-problems" + name.encode()).hexdigest()
    github_standin.update(name, commits={bad: {"infra/variables.yml": variables}},
                          pulls=[{"number": 7, "head_sha": app_source["head"]}, {"number": 8, "head_sha": bad}])
    failed = run_partition(manager, "app", "staging", sha=bad, pr=8)
    assert not failed.success
    (run,) = runs_of(github_standin, name, bad)
    assert run["name"] == "manager-pipeline/staging" and run["status"] == "completed"
    assert run["conclusion"] == "failure" and run["external_id"].endswith(failed.run_id)
    assert run["details_url"].endswith(f"/runs/{failed.run_id}")
    assert run["output"]["title"].startswith("Failed at validate")
    lines = variables.splitlines()
    annotations = run["annotations"]
    assert len(annotations) == 2 and {a["path"] for a in annotations} == {"infra/variables.yml"}
    assert sorted(lines[a["start_line"] - 1].strip() for a in annotations) == ["min_instances: -1", "netwroking:"]
    assert any("did you mean `networking`" in a["message"] for a in annotations)
    assert statuses_of(github_standin, name, bad) == []  # an App reports through its check run only
    notes = [c for c in github_standin.state(name)["issue_comments"] if c["issue"] == 8 and "notify" in c["body"]]
    assert len(notes) == 1


def test_a_valid_change_gets_the_plan_summary_and_plan_again_re_plans_once(manager, github_standin, app_source):
    name, head = app_source["name"], app_source["head"]
    planned = run_partition(manager, "app", "staging", sha=head, pr=7)
    assert planned.success
    (run,) = runs_of(github_standin, name, head)
    assert run["status"] == "completed" and run["conclusion"] == "success"
    assert run["output"]["title"].startswith("Plan ") and "to add, 0 to change, 0 to destroy" in run["output"]["title"]
    summary = run["output"]["summary"]
    assert "to add, 0 to change, 0 to destroy" in summary and planned.output_for_node("plan").plan_id in summary
    assert run["details_url"].endswith(f"/runs/{planned.run_id}") and run["annotations"] == []
    assert [a["identifier"] for a in run["actions"]] == [checks.PLAN_AGAIN]
    assert run["requests"] == 2  # created in progress when planning started, completed at the end
    assert statuses_of(github_standin, name, head) == []
    assert len(github_standin.state(name)["issue_comments"]) == 1  # the sticky plan comment, as with a token

    # The button: GitHub's `requested_action` delivery, signed; the sender's access asked of GitHub.
    # The published example's branch has a slash: GitHub's {branch} is one segment, so it is sent escaped.
    branch = "miniak/event-process-id"
    github_standin.update(name, branches={branch: head}, permissions={"maintainer": "write", "reader": "read"})
    github = github_resource()
    receiver = WebhookApp(
        SECRET, ConfigWatcher(manager.config_path), Inbox(manager.settings().database_url), environ={},
        permission=lambda repo, login: github.client(True).permission(repo, login),
    )
    published = json.loads((REPO / "tests/github_spec/webhooks/check_run.json").read_text())["examples"]
    payload = copy.deepcopy(next(e for e in published if e["action"] == "requested_action"))
    payload["repository"]["full_name"] = name
    payload["check_run"].update(id=run["id"], external_id=run["external_id"], head_sha=head)
    payload["check_run"]["pull_requests"][0]["number"] = 7
    payload["requested_action"] = {"identifier": checks.PLAN_AGAIN}

    def press(login: str, delivery: str):
        payload["sender"]["login"] = login
        body = json.dumps(payload).encode()
        headers = {"X-GitHub-Event": "check_run", "X-GitHub-Delivery": delivery,
                   "X-Hub-Signature-256": signature_for(SECRET.encode(), body)}
        return receiver.handle(headers, body)

    assert press("reader", "press-0")[1]["status"] == "ignored"  # read access: no plan
    assert press("maintainer", "press-1")[1]["status"] == "queued"
    assert press("maintainer", "press-1") == (200, {"status": "duplicate"})  # the same press, delivered again
    asked = [r for r in github_standin.requests() if r["path"].endswith("/permission")]
    # Asked of GitHub at each delivery, before the inbox takes it (or finds it a duplicate).
    assert [r["path"].rsplit("/", 2)[1] for r in asked] == ["reader", "maintainer", "maintainer"]
    requests = sensor_tick(manager, "dispatch_webhooks", "inbox", "github").run_requests
    assert [r.partition_key for r in requests] == ["staging|app"]

    settings = manager.settings()
    job = build_definitions(settings).resolve_job_def(DEPLOY_JOB)
    # As the daemon launches it: with the run key the sensor confirms its runs by.
    tags = requests[0].tags | {"dagster/run_key": requests[0].run_key}
    again = job.execute_in_process(partition_key=requests[0].partition_key, instance=open_instance(settings),
                                   tags=tags, run_config=QUIET, raise_on_error=False)
    assert again.success and again.output_for_node("feedback").status.value == "plan-only"
    assert any(r["path"].endswith("/branches/miniak%2Fevent-process-id") for r in github_standin.requests())
    assert not getattr(sensor_tick(manager, "dispatch_webhooks", "inbox", "github"), "run_requests", None)
    runs = runs_of(github_standin, name, head)
    assert len(runs) == 2 and runs[0]["id"] == run["id"]
    assert runs[1]["external_id"].endswith(again.run_id) and runs[1]["conclusion"] == "success"
    assert statuses_of(github_standin, name, head) == []


@pytest.mark.parametrize(
    "app_source", [{k: v for k, v in ALL_PERMISSIONS.items() if k != "checks"}], indirect=True, ids=["no-checks"]
)
def test_an_app_without_checks_write_falls_back_to_statuses_and_says_so_once(manager, github_standin, app_source):
    name, head = app_source["name"], app_source["head"]
    result = run_partition(manager, "app", "staging", sha=head, pr=7)
    assert result.success
    assert runs_of(github_standin, name, head) == []
    statuses = statuses_of(github_standin, name, head)
    assert [s["state"] for s in statuses] == ["pending", "success"]
    assert {s["context"] for s in statuses} == {"manager-pipeline/staging"}
    assert len(github_standin.state(name)["issue_comments"]) == 1  # nothing else lost
    refused = [r for r in github_standin.requests() if "/check-runs" in r["path"] and r["status"] == 403]
    assert refused  # GitHub was asked, and said no
    records = open_instance(manager.settings()).all_logs(result.run_id)
    said = [r for r in records if "refused check runs" in (r.user_message or "")]
    assert len(said) == 1 and "checks: write" in said[0].user_message
    listed = manager.cli("sources")
    assert listed.returncode == 0, listed.stderr
    assert "check runs refused" in listed.stdout and "checks: write" in listed.stdout
