"""`plans`, `approve`, `apply`, `unlock`: the saved plans, an operator's approval, applying one in this
process, and releasing a state lock a killed run left behind."""

from __future__ import annotations

import argparse
import sys

from manager_pipeline.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    approver,
    check_run_request,
    execute,
    load_resources,
    read_manager_yaml,
    read_settings,
)


def cmd_plans(args: argparse.Namespace) -> int:
    import datetime

    settings = read_settings()
    read_manager_yaml(settings)
    from manager_pipeline.defs.instance import prepare_home

    prepare_home(settings)
    from manager_pipeline.plans import PlanState

    if args.state and args.state not in {state.value for state in PlanState}:
        raise UsageError(f"unknown state `{args.state}` (states: {', '.join(state.value for state in PlanState)})")
    store = load_resources(settings)["plans"].plans()
    rows = store.list_plans(state=args.state, source=args.source, environment=args.env)
    if not rows:
        print("no plans")
        return EXIT_OK
    print(f"{'PLAN':<13} {'PARTITION':<28} {'STATE':<28} {'COMMIT':<13} {'CREATED (UTC)':<20} APPROVALS")
    for row in rows:
        created = datetime.datetime.fromtimestamp(row.created_at, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        approvals = ", ".join(f"{a.login}{'' if a.accepted else ' (refused)'}" for a in store.approvals(row.plan_id))
        partition = f"{row.environment}|{row.source}"
        state = f"{row.state.value} (DESTROY)" if row.destroy else row.state.value
        state += " (files pruned)" if row.files_pruned_at is not None else ""
        print(f"{row.plan_id:<13} {partition:<28} {state:<28} {(row.sha or '-')[:12]:<13} {created:<20} {approvals}")
    return EXIT_OK


def cmd_approve(args: argparse.Namespace) -> int:
    import uuid

    from manager_pipeline.defs.instance import open_instance
    from manager_pipeline.github.approvals import GitHubApprovals
    from manager_pipeline.plans import PlanState
    from manager_pipeline.plans.approvals import Candidate, approved_by, author_of, no_team, record
    from manager_pipeline.defs.audit import audit

    settings = read_settings()
    config = read_manager_yaml(settings)
    instance = open_instance(settings)
    resources = load_resources(settings)
    store = resources["plans"].plans()
    plan = store.find(args.plan_id)
    if plan is None:
        raise UsageError(f"no plan `{args.plan_id}`; `manager-pipeline plans` lists the plans")
    if plan.state is not PlanState.AWAITING:
        print(f"error: plan {plan.plan_id} is {plan.state.value}, not awaiting approval", file=sys.stderr)
        return EXIT_FAILED
    policy = config.policy(plan.environment, destroy=plan.destroy)
    github = resources["github"]
    approvals = GitHubApprovals(github.client()) if github.configured else None
    login, proof = approver(github)
    print(f"approving as `{login}` ({proof}; approvers in manager.yaml must name this login)")
    candidate = Candidate(login, "console", f"console:{uuid.uuid4().hex}", args.reason)
    new = record(
        store, plan, policy, author_of(plan, approvals), candidate, approvals.in_team if approvals else no_team
    )
    audit(instance, plan, new)
    if not new[0].accepted:
        print(f"error: approval refused: {new[0].reason}", file=sys.stderr)
        return EXIT_FAILED
    accepted = [a.login for a in store.approvals(plan.plan_id) if a.accepted]
    if approved_by(policy, accepted):
        print(
            f"plan {plan.plan_id} approved ({', '.join(sorted(set(accepted)))}); the daemon applies it, or now: "
            f"manager-pipeline apply {plan.plan_id}"
        )
    else:
        print(f"approval recorded: {len(set(accepted))} of {policy.required_approvals} for plan {plan.plan_id}")
    return EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    from manager_pipeline.defs.instance import open_instance
    from manager_pipeline.defs.jobs import APPLY_JOB
    from manager_pipeline.defs.partitions import sync_source_partitions

    settings = read_settings()
    config = read_manager_yaml(settings)
    instance = open_instance(settings)
    plan = load_resources(settings)["plans"].plans().find(args.plan_id)
    if plan is None:
        raise UsageError(f"no plan `{args.plan_id}`; `manager-pipeline plans` lists the plans")
    sync_source_partitions(instance, config)
    return execute(settings, instance, APPLY_JOB, plan.source, plan.environment, plan.apply_tags("cli"))


def cmd_unlock(args: argparse.Namespace) -> int:
    from manager_pipeline.defs.resources import AwsResource
    from manager_pipeline.pipeline import module_workdir
    from manager_pipeline.terraform.workdir import BACKEND_FILE

    settings = read_settings()
    config = read_manager_yaml(settings)
    check_run_request(config, args.source, args.env)
    resources = load_resources(settings)
    aws: AwsResource = resources["aws"]
    # The environment's own credentials (its policy's `aws:`), as its runs use them on the same state.
    target = aws.target(args.env, config.policy(args.env).aws)
    workdir = settings.workdirs / f"unlock-{args.source}-{args.env}"
    backend = module_workdir(workdir, config.terraform_dir, target, args.source, args.env)
    with resources["terraform"].session(workdir, target) as (runner, _):
        runner.init(workdir / BACKEND_FILE)
        runner.force_unlock(args.lock_id)
    print(f"released lock {args.lock_id} on {backend.key}")
    return EXIT_OK


def add_parsers(subparsers) -> None:
    plans = subparsers.add_parser("plans", help="list saved plans, their state and approvals")
    plans.add_argument("--source")
    plans.add_argument("--env")
    plans.add_argument("--state", help="e.g. awaiting-approval, applied")
    plans.set_defaults(func=cmd_plans)
    approve = subparsers.add_parser("approve", help="approve a plan waiting for approval, as an operator")
    approve.add_argument("plan_id")
    approve.add_argument("--reason", required=True, help="why; kept in the audit trail")
    approve.set_defaults(func=cmd_approve)
    apply = subparsers.add_parser("apply", help="apply an approved plan in this process, after the same checks")
    apply.add_argument("plan_id")
    apply.set_defaults(func=cmd_apply)
    unlock = subparsers.add_parser("unlock", help="release a state lock a killed run left behind")
    unlock.add_argument("source")
    unlock.add_argument("env")
    unlock.add_argument("lock_id")
    unlock.set_defaults(func=cmd_unlock)
