"""The manager-pipeline command as a user runs it: a real process, real Terraform, real moto."""

from __future__ import annotations

import json
import os

import pytest

from manager_pipeline.aws.standin import pid_alive

pytestmark = pytest.mark.integration


def test_sources_lists_partitions(manager):
    done = manager.cli("sources")
    assert done.returncode == 0, done.stderr
    assert "app" in done.stdout
    assert "staging|app" in done.stdout and "production|app" in done.stdout


def test_run_plan_only_prints_each_stage_and_the_ui_command(manager):
    done = manager.cli("run", "--source", "app", "--env", "staging", "--plan-only")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for stage in ("[fetch", "[validate", "[init", "[plan", "[gate", "[feedback"):
        assert stage in out
    assert "[apply" not in out
    assert "to add, 0 to change, 0 to destroy" in out
    assert "plan-only run" in out
    assert " ui  ->  http://127.0.0.1:3000/runs/" in out
    # The run is in the instance the UI opens.
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(manager.dagster_home))
    runs = instance.get_runs()
    assert len(runs) == 1 and runs[0].tags["dagster/partition"] == "staging|app"
    assert runs[0].tags[".dagster/manager/plan-only"] == "true"
    # The embedded default: every step in this one process, on SQLite, with no broker or database server.
    from dagster import DagsterEventType

    records = instance.get_records_for_run(runs[0].run_id).records
    engine = [r.event_log_entry.dagster_event.message for r in records if r.event_log_entry.dagster_event
              and r.event_log_entry.dagster_event.event_type is DagsterEventType.ENGINE_EVENT]
    assert any(message.startswith("Executing steps in process") for message in engine), engine
    assert type(instance.run_storage).__name__ == "SqliteRunStorage"
    assert "MANAGER_EXECUTOR" not in manager.env and "MANAGER_DATABASE_URL" not in manager.env


@pytest.mark.parametrize(
    "args, message",
    [
        (["--source", "nope", "--env", "staging"], "unknown source `nope`"),
        (["--source", "app", "--env", "prod"], "unknown environment `prod`; did you mean `production`?"),
        (["--source", "app", "--env", "staging"], "no variables file at"),
    ],
    ids=["unknown-source", "unknown-environment", "missing-variables"],
)
def test_run_refuses_bad_requests_with_one_line_and_exit_2(manager, source_repo, args, message):
    if message == "no variables file at":
        (source_repo / "infra" / "variables.yml").unlink()
    done = manager.cli("run", *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert done.stdout == ""
    # Nothing half-written: no instance, no working directory, no state.
    assert not manager.home.exists()
    assert not _bucket_exists(manager)


def _bucket_exists(manager) -> bool:
    return any(b["Name"] == manager.bucket for b in manager.s3().list_buckets()["Buckets"])


def test_embedded_default_starts_reuses_and_stops_the_local_stand_in(manager):
    env = {k: v for k, v in manager.env.items() if k not in ("AWS_ENDPOINT_URL", "TF_STATE_BUCKET")}
    manager.env = env
    first = manager.cli("run", "--source", "app", "--env", "staging", "--plan-only")
    assert first.returncode == 0, first.stderr
    assert "local AWS stand-in (moto) started on http://127.0.0.1:" in first.stdout
    recorded = json.loads((manager.home / "local-aws.json").read_text())
    assert pid_alive(recorded["pid"])

    second = manager.cli("run", "--source", "app", "--env", "staging", "--plan-only")
    assert second.returncode == 0, second.stderr
    assert f"reused on {recorded['endpoint_url']}" in second.stdout

    stopped = manager.cli("stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not pid_alive(recorded["pid"]) or _zombie(recorded["pid"])
    assert not (manager.home / "local-aws.json").exists()
    again = manager.cli("stop")
    assert "no local AWS stand-in was running" in again.stdout


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] == "Z"
    except OSError:
        return True


def test_failed_run_exits_1_naming_the_stage(manager, source_repo):
    variables = source_repo / "infra" / "variables.yml"
    variables.write_text(variables.read_text().replace("max_instances: 2", "max_instances: 0"))
    done = manager.cli("run", "--source", "app", "--env", "staging")
    assert done.returncode == 1
    assert "failed at validate" in done.stderr
    assert "environments.staging.min_instances: 1 is more than max_instances (0)" in done.stderr
    assert os.path.isdir(manager.dagster_home / "reports" / "app" / "staging")


def test_a_database_that_does_not_answer_is_one_line_and_exit_2_without_its_password(manager):
    """Issue 10, errors a person can act on: an unreachable database is a setting or a service to fix."""
    manager.env["MANAGER_DATABASE_URL"] = "postgresql://postgres:hunter2@127.0.0.1:1/manager"
    done = manager.cli("plans")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: the manager's database does not answer (postgresql://postgres:***@127.0.0.1:1/")
    assert "check it is up and MANAGER_DATABASE_URL" in line and "hunter2" not in done.stderr
