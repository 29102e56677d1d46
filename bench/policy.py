"""The policy stage's cost against the plan's own time, in the same run (issue 20, "Speed").

Each round makes a fresh working directory of the manager's module (terraform/) with a source's
variables for production, and times what the plan stage does: `init`, `plan -out`, `show -json`.
Then checkov scans that plan's JSON with production's policy (built-in checks, the reviewed skips):

- cold: the engine process is started for the scan (checkov imports itself, ~2.5 s, then scans);
- warm: the engine was prestarted when the plan started (`policy.prestart`), so its import ran
  beside Terraform; the scan then costs what is left;
- served: how the installed checkov runs (policy/server.py): its server imported it once, and each
  scan is a fork of it (its CPU is the server's child's, not ours: wall time only).

"Added" is the wall time from the end of `show -json` to the verdict, what a run waits for
after its plan. The goal: median added per plan < 3 s on this machine. Then one engine call over
--fleet plans (the fleet planner's way) against the same plans scanned one call each.

Wall times on shared cores follow the load (printed with them); CPU seconds of the children
(Terraform and its provider, checkov) are printed beside them, and the CPU of the engine's start
alone, which is what a prestart takes off the time after the plan.

    .venv/bin/python bench/policy.py [--rounds 5] [--fleet 10] [--variables examples/variables.full.yml]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.harness import Bare, in_workspace, median, start_moto, table, toolchain  # noqa: E402
from manager_pipeline.policy import (  # noqa: E402
    PlanToScan,
    ensure_checkov,
    load_reviewed_skips,
    prestart,
    resolve_policy,
    scan,
    scan_many,
)
from manager_pipeline.policy.engine import DRIVER  # noqa: E402
from manager_pipeline.policy.install import engine_env  # noqa: E402
from manager_pipeline.policy.server import running_or_started  # noqa: E402
from manager_pipeline.terraform import TerraformRunner  # noqa: E402

MODULE = REPO / "terraform"


def children_cpu() -> float:
    """CPU seconds of this process's ended children (Terraform, the provider, checkov)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def engine_start_cpu(checkov, rounds: int = 3) -> float:
    """CPU seconds of the engine's start alone (what a prestart moves beside the plan): the engine's
    process, told nothing to scan, ends right after it."""
    spent = []
    for _ in range(rounds):
        cpu = children_cpu()
        subprocess.run([str(checkov.python), "-c", DRIVER], input="", text=True, env=engine_env(), check=True)
        spent.append(children_cpu() - cpu)
    return median(spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="plans made, each scanned cold and warm")
    parser.add_argument("--fleet", type=int, default=10, help="plans in the one engine call of the fleet figure")
    parser.add_argument("--variables", type=Path, default=REPO / "examples" / "variables.full.yml")
    parser.add_argument("--environment", default="production")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (service logs)")
    args = parser.parse_args()
    variables = args.variables.read_text()
    tools_dir, tools = toolchain()
    served = ensure_checkov(tools_dir)
    # cold and warm: a process of its own per scan, as an engine that is not served runs.
    checkov = dataclasses.replace(served, served=False)
    checks = checkov.checks
    policy = resolve_policy(args.environment, reviewed_skips=load_reviewed_skips(MODULE, known=checks))

    def measure(work: Path, services) -> None:
        endpoint = start_moto(services)
        bare = Bare(tools=tools, module=MODULE, endpoint=endpoint, bucket=f"bench-{uuid.uuid4().hex[:8]}", scratch=work)
        start_cpu = engine_start_cpu(checkov)
        rows = [
            ("round", "plan s", "plan cpu s", "cold scan s", "cold cpu s", "warm added s", "served s", "fail", "warn")
        ]
        plans, plan_s, plan_cpu, cold_s, cold_cpu, warm_s, served_s = [], [], [], [], [], [], []
        running_or_started(served)

        def plan_once(warm: bool) -> tuple[dict, float, float]:
            workdir = bare.prepare("bench", args.environment, variables)
            runner = TerraformRunner(workdir.path, tools.terraform, bare.env)
            started = time.perf_counter()
            if warm:
                prestart(checkov)
            runner.init(workdir.backend_file)
            runner.plan(workdir.plan_file)
            plan_json = runner.show_json(workdir.plan_file)
            ended = time.perf_counter()
            plan_s.append(ended - started)
            return plan_json, ended

        for index in range(args.rounds):
            cpu = children_cpu()
            plan_json, _ = plan_once(warm=False)
            plan_cpu.append(children_cpu() - cpu)
            plans.append(plan_json)
            cpu = children_cpu()
            started = time.perf_counter()
            result = scan(plan_json, policy, checkov=checkov, source="bench")
            cold_s.append(time.perf_counter() - started)
            cold_cpu.append(children_cpu() - cpu)
            plan_json, ended = plan_once(warm=True)
            warm = scan(plan_json, policy, checkov=checkov, source="bench")
            warm_s.append(time.perf_counter() - ended)
            assert warm.failures == result.failures, "a prestarted engine gave another verdict"
            started = time.perf_counter()
            by_server = scan(plan_json, policy, checkov=served, source="bench")
            served_s.append(time.perf_counter() - started)
            assert by_server.failures == result.failures, "the served engine gave another verdict"
            rows.append(
                (
                    str(index + 1),
                    f"{plan_s[-2]:.2f}/{plan_s[-1]:.2f}",
                    f"{plan_cpu[-1]:.2f}",
                    f"{cold_s[-1]:.2f}",
                    f"{cold_cpu[-1]:.2f}",
                    f"{warm_s[-1]:.2f}",
                    f"{served_s[-1]:.2f}",
                    str(len(result.failures)),
                    str(len(result.warnings)),
                )
            )
        print(table(rows))
        resources = len(plans[0].get("resource_changes", ()))
        print(
            f"\n{args.variables.name} ({args.environment}): {resources} resource changes a plan, "
            f"checkov {checkov.version}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        plan, cold, warm_added = median(plan_s), median(cold_s), median(warm_s)
        print(f"plan (init + plan + show -json), median: {plan:.2f} s wall, {median(plan_cpu):.2f} s CPU")
        print(
            f"added per plan, median wall: cold {cold:.2f} s ({cold / plan:.2f}x the plan), "
            f"prestarted {warm_added:.2f} s ({warm_added / plan:.2f}x), served {median(served_s):.2f} s "
            f"({median(served_s) / plan:.2f}x)  [goal < 3 s]"
        )
        print(
            f"engine CPU, median: {median(cold_cpu):.2f} s a cold scan, of which {start_cpu:.2f} s its start "
            f"(imports, built-in checks): a prestarted scan leaves ~{median(cold_cpu) - start_cpu:.2f} s after the plan"
        )

        fleet = [PlanToScan(plans[i % len(plans)], policy, f"source-{i}") for i in range(args.fleet)]
        cpu = children_cpu()
        started = time.perf_counter()
        results = scan_many(fleet, checkov=checkov)
        many_s, many_cpu = time.perf_counter() - started, children_cpu() - cpu
        assert len(results) == args.fleet and all(r.failures == result.failures for r in results)
        print(
            f"fleet: {args.fleet} plans in one engine call: {many_s:.2f} s wall, {many_cpu:.2f} s CPU = "
            f"{many_s / args.fleet:.2f} s ({many_cpu / args.fleet:.2f} s CPU) a plan, against {cold:.2f} s "
            f"({median(cold_cpu):.2f} s CPU) a plan one call each"
        )
        if result.failures:
            print(f"\nenforced failures left ({len(result.failures)}):")
            for finding in result.failures:
                print(f"  {finding.line()}")

    in_workspace("bench-policy-", args.keep, measure)


if __name__ == "__main__":
    main()
