"""Overhead of the deploy job over bare Terraform: what a person waits for, and the job alone.

For each round it runs, in turn:

- the whole process a person starts, `manager-pipeline run --source bench --env staging
  --plan-only` (a subprocess: interpreter start, imports, instance, the deploy job, output);
- a bare `terraform init && terraform plan` of the same module with the same inputs (tfvars),
  backend, state key and endpoint, in a fresh working directory;
- the deploy job alone, in this process (`execute_in_process`, as `run` does once imported);
- the interpreter start and the imports of the run path alone (`python -c "import ..."`);
- Dagster's floor: a whole process running a one-op job that does nothing, on the same instance.

Every run gets a fresh working directory. It prints each round, then the medians and the
ratios to bare Terraform (the issue's goal for the whole process: <= 1.3x).

    .venv/bin/python bench/overhead.py [--pairs 7] [--no-in-process] [--no-provider-server]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from manager_pipeline.aws.standin import LocalAws  # noqa: E402
from manager_pipeline.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument(
        "--no-provider-server",
        action="store_true",
        help="let Terraform start the aws provider itself for every command, as bare Terraform does",
    )
    parser.add_argument("--no-in-process", action="store_true", help="skip the in-process figure (the job alone)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mp-bench-"))
    source = work / "source"
    shutil.copytree(REPO / "examples" / "source_monorepo", source)
    (work / "manager.yaml").write_text(
        f"sources:\n  - name: bench\n    path: {source}\nterraform_dir: {REPO / 'terraform'}\n"
    )
    shutil.copyfile(REPO / "dagster.yaml", work / "dagster.yaml")
    env_home = work / ".manager"
    local_aws = LocalAws(env_home)
    endpoint = local_aws.ensure_running().endpoint_url
    try:
        measure(args, work, source, env_home, endpoint)
    finally:
        local_aws.stop()
        shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, work: Path, source: Path, env_home: Path, endpoint: str) -> None:
    os.environ.update(
        {
            "MANAGER_CONFIG": str(work / "manager.yaml"),
            "MANAGER_HOME": str(env_home),
            "DAGSTER_HOME": str(env_home / "dagster"),
            "AWS_ENDPOINT_URL": endpoint,
            "TF_STATE_BUCKET": f"bench-{uuid.uuid4().hex[:8]}",
        }
    )
    os.environ.pop("TERRAFORM_BIN", None)
    os.environ["MANAGER_PROVIDER_SERVER"] = "off" if args.no_provider_server else "on"

    from manager_pipeline.aws.target import STAND_IN_CREDENTIALS, AwsTarget
    from manager_pipeline.config.file import load_config
    from manager_pipeline.contract import load_variables, resolve
    from manager_pipeline.defs.jobs import DEPLOY_JOB
    from manager_pipeline.defs.location import build_definitions
    from manager_pipeline.defs.partitions import partition_key, sync_source_partitions
    from manager_pipeline.events import DispatchEvent
    from manager_pipeline.defs.instance import open_instance
    from manager_pipeline.terraform import BackendSettings, ensure_toolchain, prepare_workdir, state_key

    settings = Settings.from_env()
    config = load_config(settings.config_path)
    toolchain = ensure_toolchain(settings.tools_dir)
    instance = open_instance(settings)
    sync_source_partitions(instance, config)
    job = build_definitions(settings).resolve_job_def(DEPLOY_JOB)
    tags = DispatchEvent(source="bench", environment="staging", plan_only=True, trigger="bench").to_tags()
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

    target = AwsTarget(settings=settings.aws, endpoint_url=endpoint, credentials=dict(STAND_IN_CREDENTIALS))
    target.ensure_state_bucket()
    document = load_variables((source / "infra" / "variables.yml").read_text(), list(config.environments))
    deploy_config = resolve(document, "staging", "bench")
    backend = BackendSettings(target.state_bucket, target.state_region, state_key("bench", "staging"), endpoint)
    bare_env = target.process_env() | toolchain.env()

    def run_job() -> float:
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            result = job.execute_in_process(
                partition_key=partition_key("bench", "staging"), instance=instance, tags=tags, run_config=quiet
            )
        elapsed = time.perf_counter() - started
        assert result.success
        return elapsed

    def run_bare() -> float:
        workdir = prepare_workdir(
            work / f"bare-{uuid.uuid4().hex[:8]}", config.terraform_dir, deploy_config, backend, endpoint
        )
        started = time.perf_counter()
        for argv in (
            ["init", "-input=false", "-no-color", f"-backend-config={workdir.backend_file}"],
            ["plan", "-input=false", "-no-color"],
        ):
            subprocess.run(
                [str(toolchain.terraform), *argv], cwd=workdir.path, env=bare_env, check=True, stdout=subprocess.DEVNULL
            )
        return time.perf_counter() - started

    cli = [str(Path(sys.executable).parent / "manager-pipeline"), "run", "--source", "bench", "--env", "staging"]

    def run_process() -> float:
        started = time.perf_counter()
        done = subprocess.run([*cli, "--plan-only"], cwd=work, env=dict(os.environ), capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        assert done.returncode == 0, done.stdout + done.stderr
        return elapsed

    imports = "import manager_pipeline.cli, manager_pipeline.defs.instance, manager_pipeline.defs.location"

    def run_imports() -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", imports], cwd=work, check=True)
        return time.perf_counter() - started

    # Dagster's own floor for a whole process: start, import dagster, open this instance, run a job of
    # one op that does nothing, with its run record and events (what any run here pays, before Terraform).
    floor = (
        "from dagster import op, job, DagsterInstance\n"
        "@op\ndef nothing(): pass\n"
        "@job\ndef floor(): nothing()\n"
        "quiet = {'loggers': {'console': {'config': {'log_level': 'CRITICAL'}}}}\n"
        "with DagsterInstance.get() as instance:\n"
        "    assert floor.execute_in_process(instance=instance, run_config=quiet).success\n"
    )

    def run_floor() -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", floor], cwd=work, env=dict(os.environ), check=True)
        return time.perf_counter() - started

    measures: dict[str, tuple] = {"process": (run_process, []), "bare": (run_bare, [])}
    if not args.no_in_process:
        measures["in-process"] = (run_job, [])
    measures["imports"] = (run_imports, [])
    measures["floor"] = (run_floor, [])
    for run, _ in measures.values():
        run()  # warm-up: first provider load, first SQLite writes, page cache
    print(f"{'round':>5} " + " ".join(f"{name + ' s':>13}" for name in measures))
    for round_ in range(1, args.pairs + 1):
        figures = []
        for run, values in measures.values():
            values.append(run())
            figures.append(values[-1])
        print(f"{round_:>5} " + " ".join(f"{value:13.2f}" for value in figures))
    bare = statistics.median(measures["bare"][1])
    server = "off" if args.no_provider_server else "on"
    print(f"\nmedians over {args.pairs} rounds (Terraform {toolchain.version}, provider server {server}):")
    labels = {
        "process": "manager-pipeline run --plan-only (whole process)",
        "bare": "bare terraform init && plan",
        "in-process": "deploy job in process (job alone)",
        "imports": "python start + imports of the run path",
        "floor": "Dagster's floor: a one-op no-op job, whole process",
    }
    for name, (_, values) in measures.items():
        value = statistics.median(values)
        goal = "   (goal <= 1.30x)" if name == "process" else ""
        print(f"  {labels[name]:<50} {value:6.2f} s  {value / bare:5.2f}x bare{goal}")
    process, floor_s = statistics.median(measures["process"][1]), statistics.median(measures["floor"][1])
    print(
        f"\nbare + Dagster's floor = {bare + floor_s:.2f} s = {(bare + floor_s) / bare:.2f}x bare: the least a whole "
        f"process that records a Dagster run around Terraform can take; the manager's own cost over it "
        f"is {process - bare - floor_s:.2f} s"
    )


if __name__ == "__main__":
    main()
