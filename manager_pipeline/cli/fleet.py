"""`preview`, `drift`, `destroy`: operations over many partitions or their state: the blast radius of a
module change, a drift check now, and the destroy plan of one partition."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from manager_pipeline.cli.common import (
    EXIT_DRIFT,
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    approver,
    execute,
    failure_message,
    load_resources,
    read_manager_yaml,
    read_settings,
    redacted,
    ui_command,
)
from manager_pipeline.config.model import ManagerConfig
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import DispatchEvent


def cmd_preview(args: argparse.Namespace) -> int:
    """Plan every partition (or those named) with a module, in one run in this process; print the summary."""
    from contextlib import nullcontext

    from manager_pipeline.aws.standin import LocalAws
    from manager_pipeline.defs.fleet import FLEET_JOB
    from manager_pipeline.defs.instance import open_instance
    from manager_pipeline.defs.location import build_definitions
    from manager_pipeline.fleet.planner import fleet_partitions
    from manager_pipeline.fleet.preview import local_module

    settings = read_settings()
    config = read_manager_yaml(settings)
    try:
        partitions = fleet_partitions(config, args.source or (), args.env or ())
    except ManagerError as exc:
        raise UsageError(str(exc)) from None
    if not partitions:
        print("no partition to plan")
        return EXIT_OK
    if settings.aws.mode == "local":
        LocalAws(settings.home).ensure_running()
    instance = open_instance(settings)
    job = build_definitions(settings).resolve_job_def(FLEET_JOB)
    # A folder of this command's own user is handed to the planner in this process, never as run config.
    where = local_module(Path(args.module)) if args.module else nullcontext()
    with where:
        label = args.ref or args.module or ""
        op_config = {
            "sources": list(args.source or ()),
            "environments": list(args.env or ()),
            "ref": args.ref or "",
            "module_label": label,
            "parallelism": args.parallelism,
            "comment_on": args.comment or "",
        }
        result = job.execute_in_process(
            instance=instance,
            tags={".dagster/manager/trigger": "cli"},
            run_config={
                "ops": {"plan_partitions": {"config": op_config}},
                "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
            },
            raise_on_error=False,
        )
    url = f"{settings.webserver_url}/runs/{result.run_id}"
    try:
        markdown = result.output_for_node("plan_partitions", "summary")
        failed = result.output_for_node("plan_partitions", "failed")
    except Exception:  # noqa: BLE001 - the planning step itself failed: its error says why
        print(redacted(f"error: run {result.run_id} failed at {failure_message(result)}"), file=sys.stderr)
        return EXIT_FAILED
    print("\n" + redacted(markdown))
    print(f"Open it in the Dagster UI: {ui_command(settings)}  ->  {url}")
    # A partition that could not be planned fails the run, and so the command (a pull request's check shows it).
    return EXIT_FAILED if failed else EXIT_OK


def _drift_partitions(config: ManagerConfig, source: str | None, environment: str | None) -> list[tuple[str, str]]:
    """The partitions `drift` checks: of one source, of one environment, or all; an unknown one is a usage error."""
    try:
        if source and environment:
            config.check_partition(source, environment)
        elif environment:
            config.policy(environment)
        specs = [config.source(source)] if source else list(config.sources.values())
    except ManagerError as exc:
        raise UsageError(str(exc)) from None
    return [(spec.name, env) for spec in specs for env in spec.environments if environment in (None, env)]


def cmd_drift(args: argparse.Namespace) -> int:
    """Check partitions for drift now, in this process, one line each: exit 2 when one has drifted, 1 when
    one could not be checked (its state locked, or the check failed), else 0."""
    import contextlib
    import io

    settings = read_settings()
    config = read_manager_yaml(settings)
    partitions = _drift_partitions(config, args.source, args.env)

    from manager_pipeline.aws.standin import LocalAws
    from manager_pipeline.defs.drift import DRIFT_JOB, drift_tags
    from manager_pipeline.drift.check import last_applied, unchecked
    from manager_pipeline.defs.instance import open_instance
    from manager_pipeline.defs.location import build_definitions
    from manager_pipeline.defs.partitions import partition_key, partition_tags, sync_source_partitions
    from manager_pipeline.drift.report import DriftStatus

    instance = open_instance(settings)
    sync_source_partitions(instance, config)
    store = load_resources(settings)["plans"].plans()
    job, found = None, set()
    for source, environment in partitions:
        skipped = unchecked(source, environment, last_applied(store, source, environment))
        if skipped is not None:
            print(skipped.line())
            continue
        if job is None:
            if settings.aws.mode == "local":
                LocalAws(settings.home).ensure_running()
            job = build_definitions(settings).resolve_job_def(DRIFT_JOB)
        # Terraform's lines stay in the run's event log: here, one line per partition.
        with contextlib.redirect_stdout(io.StringIO()):
            result = job.execute_in_process(
                partition_key=partition_key(source, environment),
                instance=instance,
                tags=partition_tags(DRIFT_JOB, source, environment) | drift_tags(source, environment, "cli"),
                run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
                raise_on_error=False,
            )
        if result.success:
            check = result.output_for_node("check_drift")
            found.add(check.status)
            print(check.line())
        else:
            found.add(None)
            print(redacted(f"{environment}|{source}: check failed at {failure_message(result)}"))
    if job is not None:
        print(f"Runs (tag manager/drift): {ui_command(settings)}  ->  {settings.webserver_url}/runs")
    if DriftStatus.DRIFT in found:
        return EXIT_DRIFT
    return EXIT_FAILED if found & {None, DriftStatus.LOCKED} else EXIT_OK


def cmd_destroy(args: argparse.Namespace) -> int:
    """Plan the destroy of one partition in this process: it waits for approval in every environment."""
    from functools import partial

    from manager_pipeline.aws.standin import LocalAws
    from manager_pipeline.defs.instance import open_instance
    from manager_pipeline.defs.jobs import DESTROY_JOB
    from manager_pipeline.defs.partitions import SOURCE, sync_source_partitions
    from manager_pipeline.destroy.inputs import last_applied_plan, nothing_to_destroy, partition_states, unbuildable

    settings = read_settings()
    config = read_manager_yaml(settings)
    try:
        policy = config.policy(args.env, destroy=True)
    except ManagerError as exc:
        raise UsageError(str(exc)) from None
    instance = open_instance(settings)
    resources = load_resources(settings)
    if settings.aws.mode == "local":
        LocalAws(settings.home).ensure_running()
    # What the state holds decides: a source that left manager.yaml is destroyed from its last applied plan.
    state = partition_states(resources["aws"].target(), [(args.source, args.env)])[0]
    nothing = nothing_to_destroy(state, config)
    if nothing:
        print(nothing)
        return EXIT_OK
    problem = unbuildable(state, last_applied_plan(resources["plans"].plans(), args.source, args.env), config)
    if problem:
        raise UsageError(problem)
    # Who asks for the destroy is its author: under allow_self_approval: false, someone else approves it.
    author, proof = approver(resources["github"])
    print(f"planning the destroy of {args.source} in {args.env} as `{author}` ({proof})")
    sync_source_partitions(instance, config)
    if not instance.has_dynamic_partition(SOURCE, args.source):
        instance.add_dynamic_partitions(SOURCE, [args.source])
    event = DispatchEvent(source=args.source, environment=args.env, trigger="cli", author=author, destroy=True)
    steps = partial(_print_destroy_steps, policy=policy)
    return execute(settings, instance, DESTROY_JOB, args.source, args.env, event.to_tags(), then=steps)


def _print_destroy_steps(outcome, policy) -> None:
    """What a destroy plan waiting for approval removes, and how it gets approved and applied."""
    from manager_pipeline.feedback import OutcomeStatus

    plan = outcome.plan
    if plan is None or outcome.status is not OutcomeStatus.AWAITING_APPROVAL:
        return
    print(f"\nDestroy plan {plan.plan_id} removes {len(plan.summary.deletions)} resource(s):")
    for address in plan.summary.deletions:
        print(f"  - {address}")
    approvers = ", ".join(policy.approvers) or f"none yet: list them under `approvers` of {policy.name} in manager.yaml"
    on_github = f", or `/approve {policy.name} {plan.plan_id}` on commit {plan.sha[:12]} of {plan.repo}"
    print(
        f"It needs {policy.required_approvals} approval(s) (approvers: {approvers}): "
        f"`manager-pipeline approve {plan.plan_id} --reason TEXT`" + (on_github if plan.repo and plan.sha else "")
    )
    print(f"Then the daemon applies it, or now: manager-pipeline apply {plan.plan_id}")


def add_parsers(subparsers) -> None:
    preview = subparsers.add_parser(
        "preview", help="plan every partition with a module (a branch, a folder): the blast radius of a change"
    )
    module = preview.add_mutually_exclusive_group()
    module.add_argument("--ref", help="the module as it is at this git ref of the manager repository")
    module.add_argument("--module", metavar="FOLDER", help="the module in this folder")
    preview.add_argument("--source", action="append", help="only this source (repeatable)")
    preview.add_argument("--env", action="append", help="only this environment (repeatable)")
    preview.add_argument("--parallelism", type=int, default=0, help="partitions planned at once (default: cores)")
    preview.add_argument("--comment", metavar="OWNER/NAME#N", help="post the summary on this pull request")
    preview.set_defaults(func=cmd_preview)
    drift = subparsers.add_parser(
        "drift", help="check partitions for drift now (refresh-only plans): exit 2 on drift, 1 if one was not checked"
    )
    drift.add_argument("source", nargs="?", help="only this source (default: every source)")
    drift.add_argument("--env", help="only this environment")
    drift.set_defaults(func=cmd_drift)
    destroy = subparsers.add_parser(
        "destroy", help="plan the destroy of what a source has in an environment; it applies once approved"
    )
    destroy.add_argument("source", help="the source (also one that left manager.yaml)")
    destroy.add_argument("env", help="the environment")
    destroy.set_defaults(func=cmd_destroy)
