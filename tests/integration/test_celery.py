"""Beyond one machine: a run's steps on Celery workers (this machine's RabbitMQ and Redis), each worker with
a home of its own, sharing nothing but the database (PostgreSQL) and the artifact bucket (S3 on the stand-in);
the source on the GitHub stand-in, read through PyGithub wherever a step needs it."""

from __future__ import annotations

import collections
import hashlib
import os
import random
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from manager_pipeline.config.file import load_config
from manager_pipeline.defs.partitions import sync_source_partitions
from manager_pipeline.plans import Plans
from tests.integration.conftest import POSTGRES, own_database
from tests.support import (
    BIN,
    EXAMPLE_VARIABLES,
    Manager,
    build_manager,
    plan_only_backfill,
    run_partition,
    serving_code_location,
    stop_process,
    wait_until,
)

pytestmark = pytest.mark.integration

# Where the source's Slack notifications go: a secret, never handed from one worker to another.
WEBHOOK = "https://hooks.slack.com/services/T0/B0/celery-handoff-secret-7f3a"
PROFILE = "prod-deployer"
ROLE = "arn:aws:iam::123456789012:role/prod-deployer"

# A module that applies in a second (a bucket), says whose credentials Terraform used, and can be slowed
# down (`custom.apply_seconds`) to stop a worker in the middle of an apply.
MODULE = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
  backend "s3" {}
}
variable "project_name" { type = string }
variable "environment" { type = string }
variable "region" { type = string }
variable "custom" {
  type    = any
  default = null
}
provider "aws" {
  region = var.region
}
data "aws_caller_identity" "current" {}
resource "aws_s3_bucket" "site" {
  bucket = "${var.project_name}-${var.environment}-site"
}
resource "terraform_data" "slow" {
  triggers_replace = var.custom
  provisioner "local-exec" {
    command = "echo applied >> ${try(var.custom.marker, "/dev/null")} && sleep ${try(var.custom.apply_seconds, 0)}"
  }
}
output "caller" { value = data.aws_caller_identity.current.arn }
output "bucket" { value = aws_s3_bucket.site.bucket }
"""


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@dataclass
class Cluster:
    """The code location's settings on Celery, its workers (a home each), and the source on GitHub."""

    manager: Manager
    env: dict[str, str]
    root: Path
    repo: str
    github: object
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def worker_env(self, name: str, **extra: str) -> dict[str, str]:
        home = self.root / "workers" / name
        return self.env | {"MANAGER_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), **extra}

    def launch(self, name: str, *environments: str, **extra: str) -> subprocess.Popen:
        log = self.root / f"{name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [str(BIN / "manager-pipeline"), "worker", "--environments", *environments, "--concurrency", "1"]
                + ["--name", name],
                cwd=self.manager.root,
                env=self.worker_env(name, **extra),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.workers[name] = process
        return process

    def ready(self, name: str) -> None:
        process, log = self.workers[name], self.root / f"{name}.log"
        wait_until(lambda: process.poll() is not None or " ready." in log.read_text(errors="replace"), 60, name, log)
        assert process.poll() is None, log.read_text(errors="replace")

    def home(self, name: str) -> Path:
        return self.root / "workers" / name

    def commit(self, variables: str) -> str:
        sha = hashlib.sha1(variables.encode()).hexdigest()
        self.github.update(self.repo, commits={sha: {"infra/variables.yml": variables}}, branches={"main": sha})
        return sha

    def run(self, environment: str, sha: str, background: bool = False):
        argv = [str(BIN / "manager-pipeline"), "run", "--source", "app", "--env", environment]
        argv += ["--sha", sha, "--branch", "main"]
        if background:
            return subprocess.Popen(argv, cwd=self.manager.root, env=self.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
        return subprocess.run(argv, cwd=self.manager.root, env=self.env, capture_output=True, text=True, timeout=240)

    def instance(self) -> DagsterInstance:
        return DagsterInstance.from_config(self.env["DAGSTER_HOME"])

    def plans(self) -> Plans:
        return Plans(self.env["MANAGER_DATABASE_URL"], self.root / "reader-plans")


@pytest.fixture(scope="module")
def postgres_database():
    with own_database() as name:
        yield name


@pytest.fixture(scope="module")
def broker():
    """A RabbitMQ virtual host of the module's own: queues named as in production, no other run's tasks."""
    vhost = f"mp-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"pyamqp://guest:guest@127.0.0.1:5672/{vhost}"
    rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, moto_endpoint, tools_dir, github_standin, postgres_database, broker):
    """Three workers: alpha and beta for staging, prod for production (with production's AWS profile)."""
    root = tmp_path_factory.mktemp("celery")
    module = root / "module"
    module.mkdir()
    (module / "main.tf").write_text(MODULE)
    manager = build_manager(root / "manager", moto_endpoint, tools_dir, {})
    repo, token = f"acme/celery-{uuid.uuid4().hex[:8]}", f"ghp_{uuid.uuid4().hex}"
    github_standin.token(token)
    github_standin.repo(repo, commits={}, branches={})
    manager.write_config(
        f"sources:\n  - name: app\n    repo: {repo}\n"
        "environments:\n  staging: {auto_apply: true}\n"
        f"  production:\n    approvers: [alice]\n    aws: {{profile: {PROFILE}, role_arn: '{ROLE}'}}\n"
        # This module's bare bucket is what the policy tests refuse; here the workers are under test.
        "    checks: {failing: warn}\n"
        f"terraform_dir: {module}\n"
    )
    dagster_home = Path(manager.env["DAGSTER_HOME"])
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(
        "storage:\n  postgres:\n    postgres_db:\n"
        f"      hostname: 127.0.0.1\n      username: postgres\n      password: ''\n      db_name: {postgres_database}\n"
        "      port: 5432\n"
        # At most four runs in flight: two workers take one step each, and on a loaded two-core machine
        # twenty run processes starting at once kept the code server past the daemon's gRPC deadline.
        "concurrency:\n  runs:\n    max_concurrent_runs: 4\n    tag_concurrency_limits:\n"
        "      - {key: dagster/partition, value: {applyLimitPerUniqueValue: true}, limit: 1}\n"
        # The queue as the repository's dagster.yaml has it (a look every second), for the backfill's daemon.
        "run_queue:\n  dequeue_interval_seconds: 1\n  dequeue_use_threads: true\n  dequeue_num_workers: 4\n"
        "  max_user_code_failure_retries: 3\n  user_code_failure_retry_delay: 5\n"
        "code_servers:\n  local_startup_timeout: 360\n"
        "telemetry:\n  enabled: false\n"
    )
    env = manager.env | {
        "GITHUB_API_URL": github_standin.url,
        "GITHUB_TOKEN": token,
        "GITHUB_THROTTLE": "off",
        "GITHUB_RETRIES": "2",
        "MANAGER_EXECUTOR": "celery",
        "MANAGER_CELERY_BROKER": broker,
        "MANAGER_CELERY_BACKEND": f"redis://127.0.0.1:6379/{random.randint(1, 15)}",
        "MANAGER_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{postgres_database}",
        "PLAN_ARTIFACT_BUCKET": f"artifacts-{uuid.uuid4().hex[:10]}",
        # Signs the values handed between workers; the webhook receiver never holds it.
        "MANAGER_HANDOFF_KEY": uuid.uuid4().hex,
        # Slack is reached nowhere: a closed port answers at once (the post fails; the run does not).
        "MANAGER_SLACK_URL": "https://127.0.0.1:9",
    }
    setup = Cluster(manager=manager, env=env, root=root, repo=repo, github=github_standin)
    (root / "workers").mkdir()
    aws_config = root / "prod-aws-config"
    aws_config.write_text(
        f"[profile {PROFILE}]\nregion = us-east-1\naws_access_key_id = AKIAPRODUCTIONTEST01\n"
        "aws_secret_access_key = production-secret-key-of-the-prod-worker\n"
    )
    for name, environment, extra in (
        ("alpha", "staging", {}),
        ("beta", "staging", {}),
        ("prod", "production", {"AWS_CONFIG_FILE": str(aws_config)}),
    ):
        setup.launch(name, environment, **extra)
    for name in setup.workers:
        setup.ready(name)
    yield setup
    for process in setup.workers.values():  # all at once: each takes a moment to shut down
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in setup.workers.values():
        stop_process(process, timeout=30)


def step_workers(instance: DagsterInstance, run_id: str) -> dict[str, list[str]]:
    """Step key -> the Celery workers that took it, from the run's events (dagster-celery records them)."""
    found: dict[str, list[str]] = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        metadata = entry.dagster_event.engine_event_data.metadata or {}
        if "Celery worker" in metadata:
            found.setdefault(entry.step_key, []).append(metadata["Celery worker"].value.split("@")[0])
    return found


def messages(instance: DagsterInstance, run_id: str) -> str:
    return "\n".join(entry.user_message for entry in instance.all_logs(run_id))


def story(instance: DagsterInstance, run_id: str, *, framework_only: bool = False) -> str:
    """What a failed run's events say: each event's type, message and error (a run that failed before any
    step has no user messages, only events). ``framework_only`` keeps Dagster's own events (engine, step
    and run events), not the lines the steps logged, so a failure outside the steps is not cut away."""
    lines = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if framework_only and event is None:
            continue
        kind = event.event_type_value if event else "log"
        text = entry.user_message or (event.message if event else "") or ""
        error = getattr(getattr(event, "event_specific_data", None), "error", None) if event else None
        lines.append(f"{kind} {entry.step_key or ''}: {text}" + (f"\n{error.to_string()}" if error else ""))
    return "\n".join(lines)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_run_steps_across_workers_and_applies_exactly_the_planned_bytes(cluster):
    sha = cluster.commit(EXAMPLE_VARIABLES.read_text() + f"\nnotifications:\n  slack_webhook: {WEBHOOK}\n")
    started = time.monotonic()
    done = cluster.run("staging", sha)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert "finished: applied" in done.stdout and "bucket = demo-app-staging-site" in done.stdout
    instance = cluster.instance()
    [run] = instance.get_runs()
    workers = step_workers(instance, run.run_id)
    # Every step on one staging worker, the run's on both; the Terraform steps do not all share one.
    assert set(workers) >= {"fetch_variables", "validate", "init", "plan", "approval_gate", "apply", "feedback"}
    assert all(len(names) == 1 for names in workers.values()), workers
    assert {names[0] for names in workers.values()} == {"alpha", "beta"}
    terraform_steps = {step: workers[step][0] for step in ("init", "plan", "apply")}
    assert len(set(terraform_steps.values())) == 2, terraform_steps
    log = messages(instance, run.run_id)
    # A Terraform step on a worker without the run's working directory builds it from what init handed on.
    have = {terraform_steps["init"]}
    for step in ("plan", "apply"):
        assert (f"{step}: working directory built on" in log) == (terraform_steps[step] not in have), log
        have.add(terraform_steps[step])
    plan = cluster.plans().list_plans(source="app", environment="staging")[-1]
    assert plan.state.value == "applied" and plan.run_id == run.run_id
    # The applied plan is the planned one, byte for byte: in the bucket, and on each worker that took it.
    s3 = cluster.manager.s3()
    in_bucket = s3.get_object(Bucket=cluster.env["PLAN_ARTIFACT_BUCKET"], Key=f"plans/{plan.plan_id}/plan.tfplan")
    assert sha256(in_bucket["Body"].read()) == plan.plan_sha256
    copies = [cluster.home(name) / "dagster" / "plans" / plan.plan_id / "plan.tfplan" for name in ("alpha", "beta")]
    assert all(copy.is_file() for copy in copies), "the gate's worker took the plan from the bucket"
    assert {sha256(copy.read_bytes()) for copy in copies} == {plan.plan_sha256}
    # Terraform ran with the manager's own credentials (the stand-in's) for staging.
    assert "assumed-role" not in plan.planned_outputs["caller"]
    # The webhook reached the feedback step (Slack was tried) but never the handed values.
    assert "Slack notification not sent: Slack could not be reached" in log
    with psycopg2.connect(f"{POSTGRES} dbname={cluster.env['MANAGER_DATABASE_URL'].rsplit('/', 1)[1]}") as db:
        with db.cursor() as cursor:
            cursor.execute("SELECT key, body FROM op_handoffs WHERE key LIKE %s", (f"{run.run_id}/%",))
            handed = {key: bytes(body) for key, body in cursor.fetchall()}
    assert f"{run.run_id}/fetch_variables/document" in handed and len(handed) >= 8
    assert not [key for key, body in handed.items() if WEBHOOK.encode() in body or b"celery-handoff-secret" in body]
    print(f"run on two workers: {elapsed:.1f}s, steps {workers}")


def test_production_runs_only_on_the_worker_with_production_credentials(cluster):
    # Without production's profile, a worker refuses to start for production: it never takes its steps.
    lacking = subprocess.Popen(
        [str(BIN / "manager-pipeline"), "worker", "--environments", "staging", "production"],
        cwd=cluster.manager.root,
        env=cluster.worker_env("lacking"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sha = cluster.commit(EXAMPLE_VARIABLES.read_text())
    done = cluster.run("production", sha)
    out, err = lacking.communicate(timeout=120)
    assert lacking.returncode == 2, out + err
    assert err.strip().splitlines() == [
        f"error: this machine cannot act for production (profile `{PROFILE}` and role {ROLE}): AWS profile "
        f"`{PROFILE}` is not in ~/.aws/config; add it, or run production's steps on a worker that has it"
    ]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "awaiting approval" in done.stdout.lower()
    instance = cluster.instance()
    run = instance.get_runs(limit=1)[0]
    workers = step_workers(instance, run.run_id)
    assert {names[0] for names in workers.values()} == {"prod"} and "plan" in workers
    log = messages(instance, run.run_id)
    assert 'Submitting celery task for step "plan" to queue "production"' in log
    plan = cluster.plans().list_plans(source="app", environment="production")[-1]
    # Terraform planned with production's own role, assumed with the prod worker's profile.
    assert plan.planned_outputs["caller"].endswith(":assumed-role/prod-deployer/manager-pipeline-production")
    assert "production-secret-key" not in log


BACKFILL_PARTITIONS = 20


@pytest.mark.daemon
# A bound on a loaded two-core machine, not a measure (bench/ measures speed).
@pytest.mark.timeout(1500)
def test_a_plan_only_backfill_of_twenty_partitions_spreads_over_both_workers(cluster):
    """`dagster job backfill` of 20 staging partitions (plan-only), its runs launched by a real dagster-daemon on
    the Celery-configured instance: every run succeeds, every partition's plan is a preview in the plan store
    and in its run's events, and the steps went to both staging workers."""
    for name in ("alpha", "beta"):
        assert cluster.workers[name].poll() is None, f"staging worker {name} is not running"
    names = [f"s{index:03d}" for index in range(BACKFILL_PARTITIONS)]
    repos = {name: f"{cluster.repo}-{name}" for name in names}
    for name, repo in repos.items():
        # A project of its own per source: each plan says whose it is (its planned bucket).
        variables = EXAMPLE_VARIABLES.read_text().replace("project_name: demo-app", f"project_name: bf-{name}")
        sha = hashlib.sha1(variables.encode()).hexdigest()
        cluster.github.repo(repo, commits={sha: {"infra/variables.yml": variables}}, branches={"main": sha})
    config = cluster.manager.config_path
    config.write_text(
        config.read_text().replace(
            "environments:", "".join(f"  - name: {n}\n    repo: {r}\n" for n, r in repos.items()) + "environments:", 1
        )
    )
    instance = cluster.instance()
    assert set(names) <= set(sync_source_partitions(instance, load_config(config)))
    log_path = cluster.root / "daemon.log"
    # The code location served on its own, as the multi-worker deployment runs it (docs/scale.md).
    with serving_code_location(cluster.manager.root, cluster.env, cluster.root / "code-server.log"):
        with open(log_path, "wb") as log:
            daemon = subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", "-w", str(cluster.manager.root / "workspace.yaml")],
                cwd=cluster.manager.root,
                # A start of a run waits for its process to load the code: 60 s by default, a bound under load.
                env=cluster.env | {"DAGSTER_GRPC_TIMEOUT_SECONDS": "300"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            launched = time.time()
            done = subprocess.run(
                plan_only_backfill(cluster.manager.root, [f"staging|{name}" for name in names]),
                cwd=cluster.manager.root,
                env=cluster.env,
                capture_output=True,
                text=True,
                timeout=300,  # it loads the code location first: minutes on a loaded machine
            )
            assert done.returncode == 0, done.stdout + done.stderr
            submitted = time.time()
            [backfill] = instance.get_backfills()
            terminal = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}

            def finished():
                runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
                return len(runs) == len(names) and all(run.status in terminal for run in runs) and runs

            # A bound, not a measure (bench/backfill measures): twenty plans and their checks on a loaded machine.
            runs = wait_until(finished, 900, "the backfill's runs", log_path, interval=1.0)
            assert daemon.poll() is None, log_path.read_text(errors="replace")[-3000:]
        finally:
            stop_process(daemon, timeout=30)
    failed = [
        f"{run.tags['dagster/partition']} {run.status.value} (run {run.run_id}):\n"
        + story(instance, run.run_id, framework_only=True)[-12000:]
        for run in runs
        if run.status != DagsterRunStatus.SUCCESS
    ]
    if failed:  # the whole story, not an assertion's cut repr
        code_log = (cluster.root / "code-server.log").read_text(errors="replace")[-3000:]
        daemon_log = log_path.read_text(errors="replace")[-4000:]
        pytest.fail("\n\n".join(failed) + f"\n\ndaemon log:\n{daemon_log}\n\ncode server log:\n{code_log}")
    by_partition = {run.tags["dagster/partition"]: run for run in runs}
    assert sorted(by_partition) == [f"staging|{name}" for name in names]
    assert all(run.tags[".dagster/manager/plan-only"] == "true" for run in runs)
    store = cluster.plans()
    taken: dict[str, set[str]] = {}
    per_worker: collections.Counter[str] = collections.Counter()
    for name in names:
        run = by_partition[f"staging|{name}"]
        # The run's steps went to Celery workers, through staging's queue.
        log = messages(instance, run.run_id)
        assert 'Submitting celery task for step "plan" to queue "staging"' in log, log[-2000:]
        workers = step_workers(instance, run.run_id)
        assert set(workers) >= {"fetch_variables", "validate", "init", "plan", "approval_gate", "feedback"}, workers
        assert "apply" not in workers, workers
        for step, hosts in workers.items():
            taken.setdefault(step, set()).update(hosts)
            per_worker.update(hosts)
        # The partition's plan, in the plan store: a preview of its own project, made by its run.
        [plan] = store.list_plans(source=name, environment="staging")
        assert plan.state.value == "preview" and plan.run_id == run.run_id, (name, plan.state, plan.run_id)
        assert plan.planned_outputs["bucket"] == f"bf-{name}-staging-site"
        # ...and in the run's events: the plan step's output names it, the gate held it as plan-only.
        outputs = {
            (entry.step_key, entry.dagster_event.step_output_data.output_name): entry.dagster_event.step_output_data
            for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_OUTPUT)
        }
        planned = outputs[("plan", "result")].metadata
        assert planned["plan_id"].value == plan.plan_id and planned["plan_sha256"].value == plan.plan_sha256
        assert ("approval_gate", "approved") not in outputs
        assert outputs[("approval_gate", "held")].metadata["decision"].value == "preview"
        assert "gate: plan-only run" in log
    # Both staging workers took steps of the backfill, plans included; production's worker none.
    everyone = set().union(*taken.values())
    assert everyone == {"alpha", "beta"}, taken
    assert taken["plan"] == {"alpha", "beta"}, taken
    records = instance.get_run_records(RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
    first, last = min(r.start_time for r in records), max(r.end_time for r in records)
    print(
        f"plan-only backfill of {len(names)} partitions on two workers: {last - launched:.1f}s from the launch to "
        f"the last run's end (the CLI {submitted - launched:.1f}s, the first run started at {first - launched:.1f}s); "
        f"steps per worker: {dict(sorted(per_worker.items()))}"
    )


def test_a_worker_killed_mid_apply_never_applies_twice(cluster, tmp_path):
    marker = tmp_path / "applied.txt"
    variables = EXAMPLE_VARIABLES.read_text() + f"\ncustom:\n  apply_seconds: 120\n  marker: {marker}\n"
    process = cluster.run("staging", cluster.commit(variables), background=True)
    try:
        wait_until(marker.exists, 120, "the apply's provisioner")
        instance = cluster.instance()
        run = instance.get_runs(limit=1)[0]
        [victim] = step_workers(instance, run.run_id)["apply"]
        os.killpg(cluster.workers[victim].pid, signal.SIGKILL)
        output, _ = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
    # The broker gave the step to the other worker, which refused it: the plan is applied once, by one run.
    assert process.returncode == 1, output
    assert "applied once, by one run" in output, output
    taken = step_workers(instance, run.run_id)["apply"]
    assert taken[0] == victim and len(taken) == 2 and taken[1] != victim, taken
    assert marker.read_text() == "applied\n"
    plan = cluster.plans().list_plans(source="app", environment="staging")[-1]
    assert plan.state.value == "applying" and plan.apply_run_id == run.run_id


def test_values_can_wait_in_the_artifact_bucket_instead(manager, monkeypatch):
    """MANAGER_HANDOFF=s3, here with the in-process executor: every value goes through the bucket and back."""
    bucket = f"artifacts-{uuid.uuid4().hex[:10]}"
    key = uuid.uuid4().hex
    manager.env |= {"MANAGER_HANDOFF": "s3", "PLAN_ARTIFACT_BUCKET": bucket, "MANAGER_HANDOFF_KEY": key}
    monkeypatch.setenv("MANAGER_HANDOFF_KEY", key)  # the IO manager reads it from its own process
    result = run_partition(manager, "app", "production")
    assert result.success, result
    plan = result.output_for_node("plan")
    assert plan.state.value == "planned" and plan.plan_file.is_file()
    s3 = manager.s3()
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix="handoff/")["Contents"]}
    steps = ("fetch_variables/document", "validate/result", "init/result", "plan/result")
    assert {f"handoff/{result.run_id}/{step}" for step in steps} <= keys
    document = s3.get_object(Bucket=bucket, Key=f"handoff/{result.run_id}/fetch_variables/document")["Body"].read()
    assert b"project_name" not in document and b"instance_type" not in document
