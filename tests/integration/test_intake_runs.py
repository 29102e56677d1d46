"""Dispatch meets runs: pull request files asked of GitHub, queued runs and running applies superseded."""
from __future__ import annotations

import hashlib
import uuid

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from manager_pipeline.feedback import OutcomeStatus
from manager_pipeline.defs.instance import open_instance
from manager_pipeline.intake.dispatch import INBOX_ID_TAG, REF_TAG
from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.intake.webhooks import Delivery
from tests.support import EXAMPLE_VARIABLES, LIGHT_MODULE, dagster_launch, run_partition, sensor_tick

pytestmark = pytest.mark.integration

# What is fed back, dispatched or superseded is under test here, not what terraform/ builds.
TERRAFORM_DIR = LIGHT_MODULE


def dispatch_tick(manager):
    instance = open_instance(manager.settings())
    return sensor_tick(manager, "dispatch_webhooks", "inbox", "github", instance=instance), instance


def test_pull_requests_are_checked_against_their_files_on_github(manager, github_standin, github_source):
    name = github_source["name"]
    variables = EXAMPLE_VARIABLES.read_text()
    code_only, infra = (hashlib.sha1(f"{name}{i}".encode()).hexdigest() for i in (1, 2))
    github_standin.update(
        name,
        commits={
            code_only: {"infra/variables.yml": variables, "src/app.py": "print(1)"},
            infra: {"infra/variables.yml": variables.replace("t3.micro", "t3.small")},
        },
        pulls=[{"number": 3, "head_sha": code_only}, {"number": 4, "head_sha": infra}],
    )
    inbox = Inbox(manager.settings().database_url)
    for number, sha in ((3, code_only), (4, infra)):
        inbox.add(
            Delivery(f"pr-{number}", "pull_request", "synchronize", name, ("app",), sha=sha, branch="f", pr=number)
        )
    result, _ = dispatch_tick(manager)
    assert {r.tags[".dagster/manager/pr"] for r in result.run_requests} == {"4"}
    notes = {event.delivery.delivery_id: event.state for event in inbox.after(0, 10)}
    assert notes == {"pr-3": "ignored", "pr-4": "dispatching"}  # dispatched once its runs are seen
    assert any(r["path"] == f"/repos/{name}/pulls/3/files" for r in github_standin.requests())


def test_a_newer_delivery_cancels_an_older_queued_run_with_a_note(manager):
    open_instance(manager.settings())
    launched = dagster_launch(
        manager,
        "staging|app",
        **{
            "manager/source": "app",
            "manager/environment": "staging",
            ".dagster/manager/trigger": "webhook",
            REF_TAG: "branch:main",
            INBOX_ID_TAG: "1",
            ".dagster/manager/delivery": "old",
        },
    )
    output, _ = launched.communicate(timeout=120)
    assert launched.returncode == 0, output
    instance = DagsterInstance.from_config(str(manager.dagster_home))
    [queued] = instance.get_runs()
    assert queued.status == DagsterRunStatus.QUEUED  # no daemon: it waits in the queue
    inbox = Inbox(manager.settings().database_url)
    inbox.add(Delivery("filler", "push", None, "acme/app", ("app",), sha="a" * 40, branch="main"))
    inbox.add(Delivery("newer", "push", None, "acme/app", ("app",), sha="b" * 40, branch="main"))
    result, instance = dispatch_tick(manager)
    assert [r.tags[".dagster/manager/delivery"] for r in result.run_requests if r.tags["manager/environment"] == "staging"] == [
        "newer"
    ]
    canceled = instance.get_run_by_id(queued.run_id)
    assert canceled.status == DagsterRunStatus.CANCELED
    notes = [e.message for e in instance.all_logs(queued.run_id) if e.message]
    assert any("superseded by delivery newer before it started: not run" in note for note in notes)


def test_a_running_apply_superseded_by_a_newer_delivery_is_not_applied(manager, github_standin, github_source):
    name = github_source["name"]
    inbox = Inbox(manager.settings().database_url)
    older, _ = inbox.add(
        Delivery(f"d-{uuid.uuid4().hex[:6]}", "push", None, name, ("app",), sha=github_source["head"], branch="main")
    )
    inbox.add(Delivery(f"d-{uuid.uuid4().hex[:6]}", "push", None, name, ("app",), sha="c" * 40, branch="main"))
    result = run_partition(
        manager,
        "app",
        "staging",
        sha=github_source["head"],
        branch="main",
        extra_tags={INBOX_ID_TAG: str(older), REF_TAG: "branch:main"},
    )
    assert result.success
    outcome = result.output_for_node("feedback")
    assert outcome.status is OutcomeStatus.SUPERSEDED and "superseded by delivery" in outcome.headline
    assert manager.s3().list_objects_v2(Bucket=manager.bucket, Prefix="app/staging/").get("KeyCount", 0) == 0
    last = github_standin.state(name)["statuses"][-1]
    assert last["state"] == "success" and last["description"] == "Superseded by a newer change; not applied"
