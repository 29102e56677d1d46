"""Runs under a real dagster-daemon: sensor-launched runs, the per-partition queue, backfills."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
import urllib.request

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.scheduler.instigation import InstigatorType, TickStatus

from manager_pipeline.defs.instance import open_instance
from manager_pipeline.intake.webhooks import signature_for
from manager_pipeline.aws.standin import free_port
from manager_pipeline.plans import Plans
from tests.support import (
    BIN,
    EXAMPLE_VARIABLES,
    LIGHT_MODULE,
    REPO,
    approve_as,
    build_manager,
    commit_all,
    dagster_launch,
    make_source_repo,
    plan_only_backfill,
    stop_process,
    github_time,
    wait_for_http,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.daemon]

TERMINAL = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


GITHUB_REPO = "acme/gamma"
GITHUB_TOKEN = "ghp_daemon_tests_token"
WEBHOOK_SECRET = "daemon-webhook-secret"


@pytest.fixture(scope="module")
def daemon_manager(tmp_path_factory, moto_endpoint, tools_dir, github_standin):
    base = tmp_path_factory.mktemp("daemon")
    sources = {
        "alpha": make_source_repo(base / "alpha", EXAMPLE_VARIABLES.read_text()),
        "beta": make_source_repo(base / "beta", EXAMPLE_VARIABLES.read_text().replace("10.20.", "10.21.")),
    }
    # Nothing applies here: every run stops after its plan, which keeps the runs short.
    manager = build_manager(base / "manager", moto_endpoint, tools_dir, sources, staging_auto_apply=False)
    # A third source on the GitHub stand-in, reached through webhooks.
    # The daemon's ticks, queue and sensors are under test, not what the module builds: the light module.
    manager.write_config(
        manager.config_path.read_text()
        .replace("environments:", f"  - name: gamma\n    repo: {GITHUB_REPO}\nenvironments:", 1)
        .replace(f"terraform_dir: {REPO / 'terraform'}", f"terraform_dir: {LIGHT_MODULE}")
    )
    github_standin.token(GITHUB_TOKEN)
    manager.env |= {
        "GITHUB_API_URL": github_standin.url,
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "GITHUB_THROTTLE": "off",
        "GITHUB_TIMEOUT": "3",
        "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        # Long enough for a run to wait on a state lock the queue test holds.
        "MANAGER_LOCK_TIMEOUT": "600s",
    }
    open_instance(manager.settings())
    log = open(base / "daemon.log", "wb")
    process = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", str(manager.root / "workspace.yaml")],
        cwd=manager.root,
        env=manager.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    manager.sources = sources
    manager.github = github_standin
    manager.daemon_log = base / "daemon.log"
    yield manager
    stop_process(process)
    log.close()


def instance_of(manager) -> DagsterInstance:
    return DagsterInstance.from_config(str(manager.dagster_home))


def wait_for(condition, timeout: float, what: str, manager=None):
    return wait_until(condition, timeout, what, log=manager.daemon_log if manager else None, interval=0.5)


def finished_runs(instance: DagsterInstance, tags: dict[str, str], count: int):
    runs = instance.get_runs(RunsFilter(tags=tags))
    if len(runs) >= count and all(r.status in TERMINAL for r in runs):
        return runs
    return None


def sensor_cursor(instance: DagsterInstance, name: str):
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.name == name and state.instigator_data and state.instigator_data.cursor:
            return state.instigator_data.cursor
    return None


def sensor_ticks_after(instance: DagsterInstance, name: str, moment: float) -> list:
    """The ticks of sensor ``name`` that began after ``moment`` (time.time()) and have ended."""
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.name == name:
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, after=moment)
            return [t for t in ticks if t.status != TickStatus.STARTED and t.timestamp > moment]
    return []


def wait_for_next_tick(manager, instance: DagsterInstance, name: str) -> None:
    """Wait until sensor ``name`` has evaluated once more: a tick that began after this call has ended."""
    moment = time.time()
    wait_for(lambda: sensor_ticks_after(instance, name, moment), 120, f"the next tick of {name}", manager)


def test_a_changed_variables_file_makes_the_sensor_launch_a_run_per_environment(daemon_manager):
    manager = daemon_manager
    instance = instance_of(manager)
    # The first tick records what is there; only a change after that starts runs.
    wait_for(lambda: sensor_cursor(instance, "watch_local_sources"), 90, "the watch sensor's first tick", manager)
    expected = {"alpha", "beta", "gamma"}
    wait_for(lambda: set(instance.get_dynamic_partitions("source")) == expected, 60, "partition sync", manager)
    assert instance.get_runs() == []

    variables = manager.sources["alpha"] / "infra" / "variables.yml"
    variables.write_text(variables.read_text().replace("CostCenter: engineering", "CostCenter: research"))
    sha = commit_all(manager.sources["alpha"], "change a tag")

    runs = wait_for(lambda: finished_runs(instance, {".dagster/manager/trigger": "watch"}, 2), 180, "sensor runs", manager)
    assert sorted(r.tags["dagster/partition"] for r in runs) == ["production|alpha", "staging|alpha"]
    assert all(r.status == DagsterRunStatus.SUCCESS for r in runs)
    assert all(
        r.tags[".dagster/manager/sha"] == sha and r.tags.get("dagster/sensor_name") == "watch_local_sources" for r in runs
    )
    # One change, one run per environment: later ticks start nothing more.
    wait_for_next_tick(manager, instance, "watch_local_sources")
    assert len(instance.get_runs(RunsFilter(tags={".dagster/manager/trigger": "watch"}))) == 2


def runs_tagged(instance: DagsterInstance, tags: dict[str, str], partition: str) -> list:
    """The run records with ``tags`` of ``partition``, oldest first."""
    records = instance.get_run_records(RunsFilter(tags=tags | {"dagster/partition": partition}))
    return sorted(records, key=lambda r: r.create_timestamp)


def test_the_queue_keeps_one_run_per_partition_in_flight(daemon_manager):
    manager = daemon_manager
    instance = instance_of(manager)
    tags = {".dagster/manager/trigger": "queue-test", ".dagster/manager/plan-only": "true"}
    # Someone holds alpha's staging state lock: alpha's first run waits in its plan for as long as the
    # test keeps the lock, which makes "in flight" a fact the test controls rather than a timing.
    lock = {"Bucket": manager.bucket, "Key": "alpha/staging/terraform.tfstate.tflock"}
    holder = {
        "ID": "0e3c7d1a-queue-test",
        "Operation": "OperationTypeApply",
        "Info": "",
        "Who": "operator@elsewhere",
        "Version": "1.15.5",
        "Created": "2026-11-30T00:00:00Z",
        "Path": f"{manager.bucket}/alpha/staging/terraform.tfstate",
    }
    if manager.bucket not in {b["Name"] for b in manager.s3().list_buckets()["Buckets"]}:
        manager.s3().create_bucket(Bucket=manager.bucket)  # no run has made the state bucket yet
    manager.s3().put_object(Body=json.dumps(holder).encode(), **lock)
    try:
        launches = [dagster_launch(manager, p, **tags) for p in ("staging|alpha",) * 2 + ("staging|beta",)]
        for process in launches:
            output, _ = process.communicate(timeout=120)
            assert process.returncode == 0, output
        alpha = wait_for(
            lambda: (r := runs_tagged(instance, tags, "staging|alpha"))
            and len(r) == 2
            and r[0].dagster_run.status == DagsterRunStatus.STARTED
            and r,
            # A bound on a loaded two-core machine: the run process imports the manager before it is STARTED.
            300,
            "alpha's first run to start",
            manager,
        )
        # A run of another partition is not held behind alpha: beta starts and ends meanwhile.
        beta = wait_for(
            lambda: (r := runs_tagged(instance, tags, "staging|beta")) and r[0].dagster_run.status in TERMINAL and r,
            240,
            "beta's run to end while alpha's waits",
            manager,
        )[0]
        assert beta.dagster_run.status == DagsterRunStatus.SUCCESS
        # The same partition is: alpha's second run is still queued behind the first.
        alpha = runs_tagged(instance, tags, "staging|alpha")
        assert alpha[0].dagster_run.status == DagsterRunStatus.STARTED
        assert alpha[1].dagster_run.status == DagsterRunStatus.QUEUED
    finally:
        manager.s3().delete_object(**lock)
    alpha = wait_for(
        lambda: (r := runs_tagged(instance, tags, "staging|alpha")) and all(x.dagster_run.status in TERMINAL for x in r) and r,
        240,
        "alpha's runs to end",
        manager,
    )
    assert [r.dagster_run.status for r in alpha] == [DagsterRunStatus.SUCCESS] * 2
    assert alpha[1].start_time >= alpha[0].end_time


def test_a_backfill_of_two_partitions_runs_both(daemon_manager):
    manager = daemon_manager
    instance = instance_of(manager)
    done = subprocess.run(
        plan_only_backfill(manager.root, ["staging|alpha", "staging|beta"]),
        cwd=manager.root,
        env=manager.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    backfill_id = instance.get_backfills()[0].backfill_id
    runs = wait_for(
        lambda: finished_runs(instance, {"dagster/backfill": backfill_id}, 2), 240, "backfill runs", manager
    )
    assert sorted(r.tags["dagster/partition"] for r in runs) == ["staging|alpha", "staging|beta"]
    assert all(r.status == DagsterRunStatus.SUCCESS for r in runs)
    assert all(r.tags[".dagster/manager/plan-only"] == "true" for r in runs)


def test_a_signed_push_webhook_becomes_runs_that_report_back_to_github(daemon_manager, github_standin):
    manager = daemon_manager
    instance = instance_of(manager)
    head = hashlib.sha1(b"gamma-head").hexdigest()
    github_standin.repo(
        GITHUB_REPO, commits={head: {"infra/variables.yml": EXAMPLE_VARIABLES.read_text()}}, branches={"main": head}
    )
    port = free_port()
    receiver = subprocess.Popen(
        [str(BIN / "manager-pipeline"), "serve-webhooks", "--port", str(port)],
        cwd=manager.root,
        env=manager.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        body = json.dumps(
            {
                "ref": "refs/heads/main",
                "after": head,
                "repository": {"full_name": GITHUB_REPO},
                "pusher": {"name": "dev-9"},
                "commits": [{"id": head, "added": [], "removed": [], "modified": ["infra/variables.yml"]}],
            }
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/webhooks/github",
            data=body,
            method="POST",
            headers={
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": "e2e-push-1",
                "Content-Type": "application/json",
                "X-Hub-Signature-256": signature_for(WEBHOOK_SECRET.encode(), body),
            },
        )

        def post():
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status
            except OSError:
                return None

        assert wait_for(post, 30, "the receiver", manager) == 202

        def queued() -> set[str]:
            statuses = github_standin.state(GITHUB_REPO)["statuses"]
            return {s["context"] for s in statuses if s["sha"] == head and s["description"].startswith("Queued")}

        # The receiver itself tells GitHub, not the run: a `queued` status per environment that will run.
        wait_for(lambda: queued() == {"manager-pipeline/staging", "manager-pipeline/production"}, 30, "queued", manager)
    finally:
        stop_process(receiver)
    runs = wait_for(
        lambda: finished_runs(instance, {".dagster/manager/delivery": "e2e-push-1"}, 2), 180, "webhook runs", manager
    )
    assert sorted(r.tags["dagster/partition"] for r in runs) == ["production|gamma", "staging|gamma"]
    assert all(r.status == DagsterRunStatus.SUCCESS and r.tags[".dagster/manager/sha"] == head for r in runs)
    statuses = github_standin.state(GITHUB_REPO)["statuses"]
    for context in ("manager-pipeline/staging", "manager-pipeline/production"):
        said = [s["description"] for s in statuses if s["context"] == context]
        assert said[0].startswith("Queued") and said[1].startswith("Planning"), said
    final = {s["context"]: s for s in statuses if s["state"] != "pending" or "Awaiting" in s["description"]}
    assert set(final) == {"manager-pipeline/staging", "manager-pipeline/production"}
    assert all("Awaiting approval" in s["description"] for s in final.values())
    # The pusher of a signed delivery is the manager's word (the dispatch sensor signs it, the run checks it):
    # the plan records its author, whom the self-approval rule checks.
    settings = manager.settings()
    plans = Plans(settings.database_url, settings.plans_dir).list_plans(source="gamma", environment="production")
    assert [plan.author for plan in plans if plan.sha == head] == ["dev-9"]


def test_an_operator_approval_makes_the_daemon_apply_the_plan_once(daemon_manager):
    manager = daemon_manager
    planned = manager.cli("run", "--source", "alpha", "--env", "production", "--author", "alice")
    assert planned.returncode == 0, planned.stderr
    plan_id = re.search(r"awaiting approval: plan (\w+)", planned.stdout).group(1)
    approved = approve_as(manager, "bob", plan_id, "--reason", "reviewed the plan")
    assert approved.returncode == 0, approved.stderr
    instance = instance_of(manager)
    runs = wait_for(lambda: finished_runs(instance, {".dagster/manager/plan-id": plan_id}, 1), 240, "the apply run", manager)
    assert len(runs) == 1 and runs[0].status == DagsterRunStatus.SUCCESS and runs[0].job_name == "apply_plan"
    listed = manager.cli("plans", "--source", "alpha", "--env", "production")
    assert f"{plan_id}" in listed.stdout and "applied" in listed.stdout and "bob" in listed.stdout
    # Another tick of the approval sensor, which still sees the approval: the plan is not applied twice.
    wait_for_next_tick(manager, instance, "approve_plans")
    assert len(instance.get_runs(RunsFilter(tags={".dagster/manager/plan-id": plan_id}))) == 1


def full_poll_at(instance: DagsterInstance) -> float:
    """When the approval sensor last asked GitHub about every waiting plan (its cursor)."""
    cursor = sensor_cursor(instance, "approve_plans")
    return json.loads(cursor)["full_poll_at"] if cursor else 0.0


def test_an_approving_review_webhook_queues_the_apply_before_the_next_poll(daemon_manager, github_standin, tmp_path):
    manager = daemon_manager
    instance = instance_of(manager)
    head = hashlib.sha1(b"gamma-reviewed-head").hexdigest()
    github_standin.repo(
        GITHUB_REPO,
        commits={head: {"infra/variables.yml": EXAMPLE_VARIABLES.read_text()}},
        branches={"main": head},
        pulls=[{"number": 41, "head_sha": head}],
    )
    planned = manager.cli("run", "--source", "gamma", "--env", "production", "--author", "alice")
    assert planned.returncode == 0, planned.stderr
    plan_id = re.search(r"awaiting approval: plan (\w+)", planned.stdout).group(1)
    port = free_port()
    log = tmp_path / "receiver.log"
    with open(log, "wb") as out:
        receiver = subprocess.Popen(
            [str(BIN / "manager-pipeline"), "serve-webhooks", "--port", str(port)],
            cwd=manager.root,
            env=manager.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", receiver, log)
        # Right after a full poll (which saw no review), so that the next one is 15 s away.
        before = full_poll_at(instance)
        polled = wait_for(lambda: (at := full_poll_at(instance)) > before and at, 60, "a full poll", manager)
        review = {"id": 4101, "user": {"login": "bob"}, "state": "APPROVED", "commit_id": head, "body": "ship it",
                  "submitted_at": github_time()}  # after the plan: an approval must be
        github_standin.update(GITHUB_REPO, reviews={"41": [review]})
        body = json.dumps(
            {
                "action": "submitted",
                "review": review | {"state": "approved"},
                "pull_request": {"number": 41, "head": {"sha": head, "ref": "feature"}},
                "repository": {"full_name": GITHUB_REPO},
                "sender": {"login": "bob"},
            }
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/webhooks/github",
            data=body,
            method="POST",
            headers={
                "X-GitHub-Event": "pull_request_review",
                "X-GitHub-Delivery": "e2e-review-1",
                "Content-Type": "application/json",
                "X-Hub-Signature-256": signature_for(WEBHOOK_SECRET.encode(), body),
            },
        )
        posted = time.time()
        with urllib.request.urlopen(request, timeout=10) as response:
            assert (response.status, json.loads(response.read())) == (202, {"status": "approval noted"})
    finally:
        stop_process(receiver)
    tags = {".dagster/manager/plan-id": plan_id}
    [record] = wait_for(lambda: instance.get_run_records(RunsFilter(tags=tags)), 30, "the apply run", manager)
    queued_after = record.create_timestamp.timestamp() - posted
    print(f"approval webhook -> apply run queued: {queued_after:.1f} s (last full poll {posted - polled:.1f} s before)")
    # The note did it, not the fallback: the next full poll was at least 15 s after the last one.
    assert queued_after < 12 and record.create_timestamp.timestamp() < polled + 15
    runs = wait_for(lambda: finished_runs(instance, tags, 1), 240, "the apply run to end", manager)
    assert len(runs) == 1 and runs[0].status == DagsterRunStatus.SUCCESS and runs[0].job_name == "apply_plan"
    listed = manager.cli("plans", "--source", "gamma", "--env", "production")
    assert plan_id in listed.stdout and "applied" in listed.stdout and "bob" in listed.stdout
    wait_for_next_tick(manager, instance, "approve_plans")
    assert len(instance.get_runs(RunsFilter(tags=tags))) == 1
