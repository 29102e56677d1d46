"""Runs of the deploy job for a source on GitHub: fetch at the commit, statuses, comments, notifications."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from dagster import build_sensor_context

from manager_pipeline.defs.location import build_definitions
from manager_pipeline.feedback import OutcomeStatus
from manager_pipeline.feedback import outbox as outbox_module
from manager_pipeline.defs.instance import open_instance
from tests.support import EXAMPLE_VARIABLES, LIGHT_MODULE, run_partition

pytestmark = pytest.mark.integration

# What reaches GitHub is under test here, not what terraform/ builds: the light module (and a sensitive output).
TERRAFORM_DIR = LIGHT_MODULE


def comments_of(github_standin, name):
    return github_standin.state(name)["issue_comments"]


def test_pull_request_plans_keep_one_sticky_comment_and_statuses_say_where_it_stands(
    manager, github_standin, github_source
):
    plan_ids = []
    for _ in range(3):
        result = run_partition(manager, "app", "staging", pr=7, sha=github_source["head"])
        assert result.success
        plan_ids.append(result.output_for_node("plan").plan_id)
    comments = comments_of(github_standin, github_source["name"])
    assert len(comments) == 1 and comments[0]["issue"] == 7 and comments[0]["edits"] == 2
    body = comments[0]["body"]
    assert f"plan `{plan_ids[-1]}`" in body and "to add, 0 to change, 0 to destroy" in body
    assert body.index("to add") < body.index("<details>")
    statuses = github_standin.state(github_source["name"])["statuses"]
    assert [s["state"] for s in statuses] == ["pending", "success"] * 3
    assert {s["context"] for s in statuses} == {"manager-pipeline/staging"}
    assert all(len(s["description"]) <= 140 and "/runs/" in s["target_url"] for s in statuses)

    gated = run_partition(manager, "app", "production", sha=github_source["head"], branch="main")
    assert gated.success
    last = github_standin.state(github_source["name"])["statuses"][-1]
    assert last["context"] == "manager-pipeline/production" and last["state"] == "pending"
    assert last["description"].startswith(f"Awaiting approval: plan {gated.output_for_node('plan').plan_id}")


def test_github_outage_neither_fails_the_run_nor_loses_feedback(manager, github_standin, github_source, monkeypatch):
    github_standin.faults({"path": f"/repos/{github_source['name']}/(statuses|issues|commits/.*/pulls)", "status": 502})
    result = run_partition(manager, "app", "staging", pr=7, sha=github_source["head"])
    assert result.success
    assert result.output_for_node("feedback").status is OutcomeStatus.PLAN_ONLY
    assert github_standin.state(github_source["name"])["statuses"] == []

    definitions = build_definitions(manager.settings())
    sensor = definitions.resolve_sensor_def("deliver_feedback")
    instance = open_instance(manager.settings())
    resources = {"feedback": definitions.resources["feedback"]}
    with build_sensor_context(instance=instance, resources=resources) as context:
        assert "still waiting" in sensor(context).skip_message
    github_standin.clear_faults()
    # The failed first item backs off (issue 10 #15); once its next attempt is due, all go in order.
    monkeypatch.setattr(outbox_module, "now", lambda: time.time() + 10_000)
    with build_sensor_context(instance=instance, resources=resources) as context:
        assert "sent 3 feedback item(s); 0 still waiting" in sensor(context).skip_message
    with build_sensor_context(instance=instance, resources=resources) as context:
        assert sensor(context).skip_message == "nothing waiting for GitHub"
    state = github_standin.state(github_source["name"])
    assert [s["state"] for s in state["statuses"]] == ["pending", "success"]
    assert len(state["issue_comments"]) == 1


def test_apply_notifies_with_outputs_and_no_secret_ever_reaches_github(
    manager, github_standin, github_source, monkeypatch
):
    seeded = {
        "MANAGER_DB_PASSWORD": "pw-Zq8Xv3Lm9Tn2",
        "AWS_SECRET_ACCESS_KEY": "aws-Secret-8812abcd",
        "SLACK_TOKEN": "xoxb-778899",
    }
    for key, value in seeded.items():
        monkeypatch.setenv(key, value)
    result = run_partition(manager, "app", "staging", sha=github_source["head"], branch="main")
    assert result.success
    outcome = result.output_for_node("feedback")
    assert outcome.status is OutcomeStatus.APPLIED and outcome.outputs["admin_password"] == "(sensitive)"
    state = github_standin.state(github_source["name"])
    notes = [c for c in state["issue_comments"] if "manager-pipeline:notify" in c["body"]]
    assert len(notes) == 1 and "Applied plan" in notes[0]["body"] and outcome.outputs["project"] in notes[0]["body"]
    assert "`admin_password` | `(sensitive)`" in notes[0]["body"]

    variables = EXAMPLE_VARIABLES.read_text().replace("networking:", "netwroking:")
    bad = hashlib.sha1(b"bad" + github_source["name"].encode()).hexdigest()
    github_standin.repo(
        github_source["name"],
        commits={bad: {"infra/variables.yml": variables}, github_source["head"]: {"infra/variables.yml": ""}},
        branches={"main": bad},
        pulls=[{"number": 8, "head_sha": bad}],
    )
    failed = run_partition(manager, "app", "staging", sha=bad, pr=8)
    assert not failed.success
    state = github_standin.state(github_source["name"])
    assert state["statuses"][-1]["state"] == "failure" and "Failed at validate" in state["statuses"][-1]["description"]
    failure_notes = [c for c in state["issue_comments"] if c["issue"] == 8 and "notify" in c["body"]]
    assert (
        len(failure_notes) == 1 and "unknown key `netwroking`; did you mean `networking`?" in failure_notes[0]["body"]
    )

    bodies = [r["body"] for r in github_standin.requests() if r["body"]]
    # What was searched holds the feedback sent: the apply notification and the failure status.
    assert any("Applied plan" in body for body in bodies) and any("Failed at validate" in body for body in bodies)
    for secret in [github_source["token"], "s3cr3t-demo-app-pw", *seeded.values()]:
        assert not any(secret in body for body in bodies), secret
    assert not any(
        github_source["token"] in json.dumps(tags) for tags in [result.dagster_run.tags, failed.dagster_run.tags]
    )


def test_a_secret_registered_at_run_time_reaches_no_request_report_metadata_or_event_log(
    manager, github_standin, github_source, tmp_path
):
    """Issue 10 #13: the source's Slack webhook is known only once the run has read it (no environment
    variable names it). A file that copies it into a tag is refused at that tag, so it never reaches
    Terraform; the refusal leaves no trace of it anywhere."""
    from manager_pipeline.redact import forget_registered_secrets

    secret = f"https://127.0.0.1:9/services/T0/B0/{hashlib.sha1(github_source['name'].encode()).hexdigest()}"
    variables = EXAMPLE_VARIABLES.read_text().replace(
        "tags:\n", f"notifications:\n  slack_webhook: {secret}\ntags:\n  Hook: {secret}\n", 1
    )
    sha = hashlib.sha1(b"hook" + github_source["name"].encode()).hexdigest()
    github_standin.repo(
        github_source["name"],
        commits={sha: {"infra/variables.yml": variables}},
        branches={"main": sha},
        pulls=[{"number": 9, "head_sha": sha}],
    )
    forget_registered_secrets()
    try:
        failed = run_partition(manager, "app", "staging", sha=sha, pr=9)
    finally:
        forget_registered_secrets()
    assert not failed.success

    def leaked(text: str) -> bool:
        tail = secret.rsplit("/", 1)[1]
        return secret in text or any(tail[i : i + 12] in text for i in range(len(tail) - 11))

    state = github_standin.state(github_source["name"])
    assert state["statuses"][-1]["state"] == "failure" and "Failed at validate" in state["statuses"][-1]["description"]
    notes = [c["body"] for c in state["issue_comments"] if c["issue"] == 9 and "notify" in c["body"]]
    assert len(notes) == 1 and "tags.Hook: holds the value of notifications.slack_webhook" in notes[0]
    requests = github_standin.requests()
    assert not any(leaked(json.dumps(request)) for request in requests)

    reports = list(manager.settings().reports_dir.rglob("*.md"))
    assert reports and not any(leaked(path.read_text()) for path in reports)
    instance = open_instance(manager.settings())
    records = instance.all_logs(failed.run_id)
    assert any("holds the value of" in repr(record) for record in records)  # the refusal is in the event log
    assert not any(leaked(repr(record)) for record in records)
    assert not leaked(json.dumps(failed.dagster_run.tags))
