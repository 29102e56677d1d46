"""A plan-only backfill of N staging partitions under `dagster-daemon`, against N bare Terraform plans.

Two ways to re-plan N partitions (`--mode`): `runs`, a backfill of the partitioned deploy job (a run,
so a run process, per partition), and `fleet`, one run of the `plan_fleet` job launched through the
same queue (`dagster job launch`), which plans the partitions side by side (defs/fleet.py).

Sets up a manager with N sources (local git repositories with the example variables, as
tests/support.py makes them), the AWS stand-in (moto) and `dagster-daemon run`. Once the daemon
has loaded the code location and idled a few seconds (its resident memory is sampled then), it
launches `dagster job backfill -j deploy --partitions staging|s000,... --tags
{".dagster/manager/plan-only": "true"}` (as tests/integration/test_daemon.py does) and times from the
launch to the end of the last run (run records' end_time). While the runs go, /proc is sampled
for the peak resident set of each run's process (a `multiprocessing` spawned interpreter the code
server starts per run) alone and with what runs below it (Terraform, the provider, log tails).

The daemon is then stopped and the same N bare `terraform init && terraform plan` (same module,
inputs, backend, state keys and endpoint; fresh working directories) run with a parallelism equal
to the instance's max_concurrent_runs (or the core count: --bare-parallelism cores). Prints both
times and the ratio (goal: <= 1.3x).

    .venv/bin/python bench/backfill.py [--partitions 50] [--mode runs|fleet] [--bare-parallelism runs|cores|N] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness import (
    BIN,
    REPO,
    Bare,
    Services,
    TreeSampler,
    in_workspace,
    median,
    mib,
    start_daemon,
    start_moto,
    table,
    toolchain,
    tree_rss,
    wait_for_sensor_tick,
)

from manager_pipeline.config.file import load_config
from manager_pipeline.defs.partitions import sync_source_partitions
from manager_pipeline.defs.instance import open_instance
from tests.support import EXAMPLE_VARIABLES, build_manager, make_source_repo, plan_only_backfill, wait_until

TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")


def is_run_worker(command: str) -> bool:
    """A run's own process: the code server starts each run in a `multiprocessing` spawned interpreter."""
    return "spawn_main" in command and "--multiprocessing-fork" in command


def idle_memory(daemon_pid: int, seconds: float) -> tuple[int, list[tuple[str, int]]]:
    """The peak over ``seconds`` of the daemon's resident memory with its children (code server)."""
    peak, processes = 0, []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tree = tree_rss(daemon_pid)
        total = sum(rss for _, _, rss in tree)
        if total > peak:
            peak, processes = total, [(command, rss) for _, command, rss in tree]
        time.sleep(0.25)
    return peak, processes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--partitions", type=int, default=50, help="sources (staging partitions) in the backfill")
    parser.add_argument(
        "--bare-parallelism",
        default="runs",
        help="bare plans at once: `runs` (the instance's max_concurrent_runs), `cores` (os.cpu_count()) or a number",
    )
    parser.add_argument("--idle-seconds", type=float, default=5, help="how long the idle daemon's memory is sampled")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the backfill's runs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs) and print it")
    parser.add_argument(
        "--mode",
        choices=("runs", "fleet"),
        default="runs",
        help="`runs`: a backfill of the partitioned deploy job (a run per partition); `fleet`: one run of the "
        "plan_fleet job planning every partition side by side (as many at once as the bare plans)",
    )
    args = parser.parse_args()

    in_workspace("mp-backfill-", args.keep, lambda work, services: measure(args, work, services))


def measure(args: argparse.Namespace, work: Path, services: Services) -> None:

    tools_dir, tools = toolchain()
    endpoint = start_moto(services)
    variables = EXAMPLE_VARIABLES.read_text()
    template = make_source_repo(work / "template", variables)
    names = [f"s{index:03d}" for index in range(args.partitions)]
    sources = {name: Path(shutil.copytree(template, work / "sources" / name, symlinks=True)) for name in names}
    # Every run stops after its plan (the backfill's tag says so; nothing auto-applies either).
    manager = build_manager(work / "manager", endpoint, tools_dir, sources, staging_auto_apply=False)
    settings = manager.settings()
    instance = open_instance(settings)
    sync_source_partitions(instance, load_config(settings.config_path))
    limit = instance.run_coordinator.get_run_queue_config().max_concurrent_runs
    cores = os.cpu_count() or 1
    parallelism = {"runs": limit, "cores": cores}.get(args.bare_parallelism) or int(args.bare_parallelism)

    daemon = start_daemon(services, manager)
    log = services.log("dagster-daemon")
    wait_for_sensor_tick(manager, "watch_local_sources", 180, log)
    idle_peak, idle_processes = idle_memory(daemon.pid, args.idle_seconds)

    if args.mode == "fleet":
        launched = launch_fleet(args, manager, instance, daemon, log, parallelism)
    else:
        launched = launch_backfill(args, manager, instance, daemon, log, names)
    services.stop("dagster-daemon")

    bare = Bare(tools, REPO / "terraform", endpoint, manager.bucket, work)
    bare.once(names[0], "staging", variables)  # warm-up
    workdirs = [bare.prepare(name, "staging", variables) for name in names]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        bare_runs = list(pool.map(bare.run, workdirs))
    bare_s = time.perf_counter() - started

    which = {"runs": "max_concurrent_runs", "cores": "cores"}.get(args.bare_parallelism, "given")
    print(
        f"\n{args.partitions} staging partitions, plan-only, mode `{args.mode}`; instance max_concurrent_runs={limit}, "
        f"{cores} cores; bare parallelism {parallelism} ({which})"
    )
    what = "one plan_fleet run" if args.mode == "fleet" else "backfill"
    print(
        table(
            [
                ("figure", "seconds", "goal"),
                (f"{what}: launch -> last run ended", f"{launched.total_s:.1f}", ""),
                (f"bare: {args.partitions} x init && plan, {parallelism} at once", f"{bare_s:.1f}", ""),
                (f"ratio {what} / bare", f"{launched.total_s / bare_s:.2f}x", "<= 1.30x"),
                (f"  `dagster job {'launch' if args.mode == 'fleet' else 'backfill'}` CLI", f"{launched.submit_s:.1f}", ""),
                ("  launch -> first run started", f"{launched.first_start_s:.1f}", ""),
                ("  run start -> end, median", f"{median(launched.durations):.1f}", ""),
                ("  run start -> end, max", f"{max(launched.durations):.1f}", ""),
                ("  bare init && plan, median (at once)", f"{median(bare_runs):.1f}", ""),
            ]
        )
    )
    sampler = launched.sampler
    runs_hwm = list(sampler.run_hwm.values())
    trees = list(sampler.tree_peak.values())
    print("\nresident memory (/proc, sampled every 0.25 s):")
    memory = [("process", "peak", "")]
    if runs_hwm:
        memory += [
            (f"run process (VmHWM), median of {len(runs_hwm)}", mib(median(runs_hwm)), ""),
            ("run process (VmHWM), max", mib(max(runs_hwm)), ""),
            ("run with Terraform and provider below it, max", mib(max(trees)), ""),
        ]
    memory.append((f"idle daemon with its children ({len(idle_processes)} processes)", mib(idle_peak), ""))
    memory += [(f"  {command[:60]}", mib(rss), "") for command, rss in idle_processes]
    print(table([row[:2] for row in memory]))


@dataclass
class Launched:
    """What a person waits for, from the launch: in all, for the submit command, until the first run started."""

    total_s: float
    submit_s: float
    first_start_s: float
    durations: list[float]
    sampler: TreeSampler


def launch_fleet(args, manager, instance, daemon, log, parallelism):
    """One run of plan_fleet through the run queue (`dagster job launch`), every staging partition in it."""
    from dagster import RunsFilter

    config = {"ops": {"plan_partitions": {"config": {"environments": ["staging"], "parallelism": parallelism}}}}
    argv = [str(BIN / "dagster"), "job", "launch", "-w", str(manager.root / "workspace.yaml"), "-j", "plan_fleet",
            "--config-json", json.dumps(config)]
    with TreeSampler(daemon.pid, is_run_worker) as sampler:
        launched = time.time()
        done = subprocess.run(argv, cwd=manager.root, env=manager.env, capture_output=True, text=True, timeout=600)
        submitted = time.time()
        assert done.returncode == 0, done.stdout + done.stderr

        def finished():
            records = instance.get_run_records(RunsFilter(job_name="plan_fleet"))
            if records and all(r.dagster_run.status.value in TERMINAL for r in records):
                return records
            return None

        records = wait_until(finished, args.timeout, "the plan_fleet run", log, interval=0.5)
    [record] = records
    if record.dagster_run.status.value != "SUCCESS":
        print(f"warning: the plan_fleet run {record.dagster_run.run_id} did not succeed")
    return Launched(
        total_s=record.end_time - launched,
        submit_s=submitted - launched,
        first_start_s=record.start_time - launched,
        durations=[record.end_time - record.start_time],
        sampler=sampler,
    )


def launch_backfill(args, manager, instance, daemon, log, names):
    from dagster import RunsFilter

    argv = plan_only_backfill(manager.root, [f"staging|{name}" for name in names])
    with TreeSampler(daemon.pid, is_run_worker) as sampler:
        launched = time.time()
        done = subprocess.run(argv, cwd=manager.root, env=manager.env, capture_output=True, text=True, timeout=600)
        submitted = time.time()
        assert done.returncode == 0, done.stdout + done.stderr
        backfill_id = instance.get_backfills()[0].backfill_id

        def finished():
            records = instance.get_run_records(RunsFilter(tags={"dagster/backfill": backfill_id}))
            if len(records) == args.partitions and all(r.dagster_run.status.value in TERMINAL for r in records):
                return records
            return None

        records = wait_until(finished, args.timeout, "the backfill's runs", log, interval=1.0)

    failed = [r for r in records if r.dagster_run.status.value != "SUCCESS"]
    if failed:
        print(f"warning: {len(failed)} of {len(records)} runs did not succeed, e.g. {failed[0].dagster_run.run_id}")
    last_end = max(r.end_time for r in records)
    first_start = min(r.start_time for r in records if r.start_time)
    durations = [r.end_time - r.start_time for r in records if r.start_time and r.end_time]
    return Launched(
        total_s=last_end - launched,
        submit_s=submitted - launched,
        first_start_s=first_start - launched,
        durations=durations,
        sampler=sampler,
    )


if __name__ == "__main__":
    main()
