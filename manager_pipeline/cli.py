"""manager-pipeline: run the deploy job, list sources, open the UI, stop the local stand-in.

Exit codes: 0 done, 1 the run failed (the message says at which stage and why),
2 a usage error (unknown source or environment, missing variables file, bad manager.yaml);
`drift` also exits 2 when it finds drift (its usage errors say `error:` on stderr).
"""

from __future__ import annotations

import argparse
import json
import re
import os
import shlex
import sys
from pathlib import Path
from typing import Sequence

from manager_pipeline.config import ManagerConfig, load_config
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# `drift` found drift (as `terraform plan -detailed-exitcode` says changes).
EXIT_DRIFT = 2


class UsageError(Exception):
    pass


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _config(settings: Settings) -> ManagerConfig:
    try:
        return load_config(settings.config_path)
    except ManagerError as exc:
        raise UsageError(str(exc)) from None


def _check_run_request(config: ManagerConfig, source: str, environment: str) -> None:
    """Everything that can be wrong with the request itself, checked before any run exists."""
    from manager_pipeline.sources import LocalSource

    try:
        spec = config.check_partition(source, environment)
        if spec.path is not None:
            LocalSource(spec).check_readable()
    except ManagerError as exc:
        raise UsageError(str(exc)) from None


def _ui_command(settings: Settings) -> str:
    if (settings.config_path.parent / "Makefile").is_file() and Path.cwd() == settings.config_path.parent:
        return "make ui"
    return f"{shlex.quote(sys.argv[0])} ui"


def _failure_message(result) -> str:
    """Where the run failed and why: the stage's own message, or the innermost cause of an
    unexpected error in one line (Dagster wraps it in "Error occurred while executing op ...")."""
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data and data.user_failure_data.description:
                return f"{event.step_key}: {data.user_failure_data.description}"
            if data.error:
                error = data.error
                while error.cause is not None:
                    error = error.cause
                if error.cls_name == "DagsterExecutionInterruptedError":
                    return f"{event.step_key}: the run was stopped (interrupted) during this stage"
                first = (error.message.strip().splitlines() or [""])[0]
                return f"{event.step_key}: {first} (an unexpected error: the run's event log has the traceback)"
    return "the run failed; see the run's event log in the UI"


def _redacted(line: str) -> str:
    """A line the CLI prints about a run, with every secret the process knows masked."""
    from manager_pipeline.feedback.redact import redact_text

    return redact_text(line)


def _print_outputs(outcome) -> None:
    from manager_pipeline.feedback.report import format_value

    if outcome.outputs:
        print("\nOutputs:")
        width = max(len(name) for name in outcome.outputs)
        for name, value in outcome.outputs.items():
            print(_redacted(f"  {name:<{width}} = {format_value(value)}"))


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings()
    config = _config(settings)
    _check_run_request(config, args.source, args.env)

    from manager_pipeline.defs.jobs import DEPLOY_JOB
    from manager_pipeline.defs.partitions import sync_source_partitions
    from manager_pipeline.instance import open_instance
    from manager_pipeline.local_aws import LocalAws

    if args.sha is not None and not re.fullmatch(r"[0-9a-f]{40}", args.sha):
        raise UsageError(f"--sha `{args.sha[:80]}` is not a commit id; give the full 40-character hex id")
    instance = open_instance(settings)
    sync_source_partitions(instance, config)
    if settings.aws.mode == "local":
        status = LocalAws(settings.home).ensure_running()
        state = "started" if status.started else "reused"
        print(f"[{'aws':<8}] local AWS stand-in (moto) {state} on {status.endpoint_url}")
    event = DispatchEvent(
        source=args.source,
        environment=args.env,
        sha=args.sha,
        branch=args.branch,
        pr=args.pr,
        plan_only=args.plan_only,
        trigger="cli",
        author=args.author,
    )
    return _execute(settings, instance, DEPLOY_JOB, args.source, args.env, event.to_tags())


def _execute(
    settings: Settings, instance, job_name: str, source: str, environment: str, tags: dict, then=None
) -> int:
    """Run a job for one partition in this process; print its outcome (``then(outcome)`` prints more about
    it), or where it failed and why."""
    from manager_pipeline.defs.location import build_definitions
    from manager_pipeline.defs.partitions import partition_key

    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    if settings.executor == "celery":
        # This process orchestrates; the steps run on the workers of the environment's queue.
        from manager_pipeline.defs.celery import execute_on_workers

        result = execute_on_workers(job_name, instance, source, environment, tags, quiet)
    else:
        job = build_definitions(settings).resolve_job_def(job_name)
        result = job.execute_in_process(
            partition_key=partition_key(source, environment),
            instance=instance,
            tags=tags,
            run_config=quiet,
            raise_on_error=False,
        )
    url = f"{settings.webserver_url}/runs/{result.run_id}"
    if not result.success:
        print(_redacted(f"error: run {result.run_id} failed at {_failure_message(result)}"), file=sys.stderr)
        print(f"Run details: {_ui_command(settings)}  ->  {url}", file=sys.stderr)
        return EXIT_FAILED
    outcome = result.output_for_node("feedback")
    _print_outputs(outcome)
    if then is not None:
        then(outcome)
    print(_redacted(f"\nRun {result.run_id} finished: {outcome.status.value}. {outcome.headline}"))
    print(f"Open it in the Dagster UI: {_ui_command(settings)}  ->  {url}")
    return EXIT_OK


def _resources(settings: Settings):
    from manager_pipeline.defs.resources import build_resources
    from manager_pipeline.errors import ConfigError

    try:
        return build_resources(settings)
    except ConfigError as exc:
        # A setting the operator must fix (e.g. GITHUB_TIMEOUT=15s): nothing ran.
        raise UsageError(str(exc)) from None


def cmd_plans(args: argparse.Namespace) -> int:
    import datetime

    settings = _settings()
    _config(settings)
    from manager_pipeline.instance import prepare_home

    prepare_home(settings)
    from manager_pipeline.plans import PlanState

    if args.state and args.state not in {state.value for state in PlanState}:
        raise UsageError(f"unknown state `{args.state}` (states: {', '.join(state.value for state in PlanState)})")
    store = _resources(settings)["plans"].plans()
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


def _approver(github) -> tuple[str, str]:
    """Who approves, and how that is known: the login of the operator's own GitHub token
    (MANAGER_APPROVER_TOKEN, verified by GitHub), else the operating-system user the process runs as
    (from the kernel's uid, not USER/LOGNAME, which anyone can set). No flag can name someone else."""
    import os
    import pwd

    from manager_pipeline.feedback.redact import register_secret

    token = os.environ.get("MANAGER_APPROVER_TOKEN")
    if token:
        register_secret(token)
        client = github.model_copy(update={"token": token, "app_id": None, "app_private_key": None}).client(True)
        try:
            return client.token_login(), "verified by GitHub from MANAGER_APPROVER_TOKEN"
        except Exception as exc:  # noqa: BLE001 - any failure means the identity is not proven
            raise UsageError(f"MANAGER_APPROVER_TOKEN was not accepted by GitHub ({exc}); nothing was approved") from None
    return pwd.getpwuid(os.geteuid()).pw_name, "the operating-system user"


def cmd_approve(args: argparse.Namespace) -> int:
    import uuid

    from manager_pipeline.github.approvals import GitHubApprovals
    from manager_pipeline.instance import open_instance
    from manager_pipeline.plans import PlanState
    from manager_pipeline.plans.approvals import Candidate, approved_by, author_of, no_team, record
    from manager_pipeline.plans.audit import audit

    settings = _settings()
    config = _config(settings)
    instance = open_instance(settings)
    resources = _resources(settings)
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
    login, proof = _approver(github)
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
    from manager_pipeline.defs.jobs import APPLY_JOB
    from manager_pipeline.defs.partitions import sync_source_partitions
    from manager_pipeline.instance import open_instance

    settings = _settings()
    config = _config(settings)
    instance = open_instance(settings)
    plan = _resources(settings)["plans"].plans().find(args.plan_id)
    if plan is None:
        raise UsageError(f"no plan `{args.plan_id}`; `manager-pipeline plans` lists the plans")
    sync_source_partitions(instance, config)
    return _execute(settings, instance, APPLY_JOB, plan.source, plan.environment, plan.apply_tags("cli"))


def cmd_destroy(args: argparse.Namespace) -> int:
    """Plan the destroy of one partition in this process: it waits for approval in every environment."""
    from functools import partial

    from manager_pipeline.decommission import last_applied_plan, nothing_to_destroy, partition_states, unbuildable
    from manager_pipeline.defs.jobs import DESTROY_JOB
    from manager_pipeline.defs.partitions import SOURCE, sync_source_partitions
    from manager_pipeline.instance import open_instance
    from manager_pipeline.local_aws import LocalAws

    settings = _settings()
    config = _config(settings)
    try:
        policy = config.policy(args.env, destroy=True)
    except ManagerError as exc:
        raise UsageError(str(exc)) from None
    instance = open_instance(settings)
    resources = _resources(settings)
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
    author, proof = _approver(resources["github"])
    print(f"planning the destroy of {args.source} in {args.env} as `{author}` ({proof})")
    sync_source_partitions(instance, config)
    if not instance.has_dynamic_partition(SOURCE, args.source):
        instance.add_dynamic_partitions(SOURCE, [args.source])
    event = DispatchEvent(source=args.source, environment=args.env, trigger="cli", author=author, destroy=True)
    steps = partial(_print_destroy_steps, policy=policy)
    return _execute(settings, instance, DESTROY_JOB, args.source, args.env, event.to_tags(), then=steps)


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


def cmd_unlock(args: argparse.Namespace) -> int:
    from manager_pipeline.defs.resources import AwsResource
    from manager_pipeline.terraform import BackendSettings
    from manager_pipeline.terraform.workdir import BACKEND_FILE, copy_module

    settings = _settings()
    config = _config(settings)
    _check_run_request(config, args.source, args.env)
    resources = _resources(settings)
    aws: AwsResource = resources["aws"]
    target = aws.target()
    workdir = settings.workdirs / f"unlock-{args.source}-{args.env}"
    backend = BackendSettings.of_partition(target, args.source, args.env)
    copy_module(workdir, config.terraform_dir, backend, target.endpoint_url)
    with resources["terraform"].session(workdir, target) as (runner, _):
        runner.init(workdir / BACKEND_FILE)
        runner.force_unlock(args.lock_id)
    print(f"released lock {args.lock_id} on {backend.key}")
    return EXIT_OK


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

    settings = _settings()
    config = _config(settings)
    partitions = _drift_partitions(config, args.source, args.env)

    from manager_pipeline.defs.drift import DRIFT_JOB, drift_tags, last_applied, unchecked
    from manager_pipeline.defs.location import build_definitions
    from manager_pipeline.defs.partitions import partition_key, sync_source_partitions
    from manager_pipeline.drift import DriftStatus
    from manager_pipeline.instance import open_instance
    from manager_pipeline.local_aws import LocalAws

    instance = open_instance(settings)
    sync_source_partitions(instance, config)
    store = _resources(settings)["plans"].plans()
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
                tags=drift_tags(source, environment, "cli"),
                run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
                raise_on_error=False,
            )
        if result.success:
            check = result.output_for_node("check_drift")
            found.add(check.status)
            print(check.line())
        else:
            found.add(None)
            print(_redacted(f"{environment}|{source}: check failed at {_failure_message(result)}"))
    if job is not None:
        print(f"Runs (tag manager/drift): {_ui_command(settings)}  ->  {settings.webserver_url}/runs")
    if DriftStatus.DRIFT in found:
        return EXIT_DRIFT
    return EXIT_FAILED if found & {None, DriftStatus.LOCKED} else EXIT_OK


def cmd_sources(args: argparse.Namespace) -> int:
    settings = _settings()
    config = _config(settings)
    if not config.sources:
        print(f"no sources registered in {settings.config_path}")
        return EXIT_OK
    for spec in config.sources.values():
        where = os.path.relpath(spec.path, settings.config_path.parent) if spec.path else f"github:{spec.repo}"
        partitions = ", ".join(f"{env}|{spec.name}" for env in spec.environments)
        print(f"{spec.name:<20} {where}  ({spec.variables_file})  partitions: {partitions}")
    return EXIT_OK


def cmd_setup(args: argparse.Namespace) -> int:
    from manager_pipeline.instance import prepare_home
    from manager_pipeline.terraform import ensure_toolchain

    settings = _settings()
    toolchain = ensure_toolchain(settings.tools_dir, settings.terraform_bin, settings.providers)  # type: ignore[arg-type]
    home = prepare_home(settings)
    print(f"terraform {toolchain.version}: {toolchain.terraform}")
    print(f"providers: {settings.providers} ({toolchain.cli_config})")
    print(f"dagster instance: {home}")
    return EXIT_OK


def cmd_ui(args: argparse.Namespace) -> int:
    from manager_pipeline.instance import prepare_home

    settings = _settings()
    _config(settings)
    prepare_home(settings)
    root = settings.config_path.parent
    dagster = Path(sys.executable).with_name("dagster")
    argv = [str(dagster), "dev", "-w", str(root / "workspace.yaml"), "-h", args.host, "-p", str(args.port)]
    os.chdir(root)
    print(f"Dagster UI on http://{args.host}:{args.port} (instance {settings.dagster_home}); Ctrl-C stops it")
    sys.stdout.flush()
    os.execv(argv[0], argv)
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    """A Celery worker for the steps of some environments' runs: only those whose credentials it holds."""
    import socket

    settings = _settings()
    config = _config(settings)
    from kombu.utils.url import maybe_sanitize_url

    from manager_pipeline.defs.celery import check_worker, run_worker

    environments = list(dict.fromkeys(args.environments))
    try:
        check_worker(settings, config, environments)
    except ManagerError as exc:
        raise UsageError(str(exc)) from None
    name = args.name or f"manager-{'-'.join(environments)}-{os.getpid()}"
    print(
        f"worker {name}@{socket.gethostname()}: steps of {', '.join(environments)} from "
        f"{maybe_sanitize_url(settings.celery_broker)}, {args.concurrency} at a time; Ctrl-C stops it",
        flush=True,
    )
    run_worker(settings, environments, args.concurrency, name)
    return EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    from manager_pipeline.local_aws import LocalAws

    settings = _settings()
    stopped = LocalAws(settings.home).stop()
    print("local AWS stand-in stopped" if stopped else "no local AWS stand-in was running")
    return EXIT_OK


def _known_environments(settings: Settings) -> list[str]:
    """The manager's environments when its manager.yaml is there; else the defaults."""
    from manager_pipeline.config import DEFAULT_ENVIRONMENTS

    if not settings.config_path.is_file():
        return list(DEFAULT_ENVIRONMENTS)
    return list(_config(settings).environments)


def cmd_validate(args: argparse.Namespace) -> int:
    from manager_pipeline.contract import check_document, contract_warnings, parse_variables, resolve
    from manager_pipeline.errors import ContractError

    settings = _settings()
    environments = _known_environments(settings)
    if args.env and args.env not in environments:
        raise UsageError(f"unknown environment `{args.env}` (known: {', '.join(environments)})")
    try:
        source = Path(args.path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.path}: {exc.strerror}") from None
    try:
        document = parse_variables(source, args.path)
        data = check_document(document, environments, args.path)
        resolved = resolve(data, args.env, "validate", args.path).to_tfvars() if args.env else None
    except ContractError as exc:
        if args.format == "json":
            print(json.dumps({"valid": False, "errors": [p.to_dict() for p in exc.problems]}, indent=2))
        else:
            print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    warnings = contract_warnings(data, args.path, document)
    if resolved is not None:
        resolved.pop("source_name")
    if args.format == "json":
        print(
            json.dumps(
                {
                    "valid": True,
                    "file": args.path,
                    "environment": args.env,
                    "warnings": [p.to_dict() for p in warnings],
                    "resolved": resolved,
                },
                indent=2,
            )
        )
    else:
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"{args.path} is valid" + (f"; what Terraform receives for {args.env}:" if resolved else ""))
        if resolved:
            print(json.dumps(resolved, indent=2))
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from manager_pipeline.contract import SCHEMA
    from manager_pipeline.contract.generated import markdown_reference, terraform_sections

    if args.manager:
        from manager_pipeline.config import manager_schema

        print(json.dumps(manager_schema(), indent=2))
    elif args.markdown:
        print(markdown_reference())
    elif args.terraform:
        print(terraform_sections(), end="")
    else:
        print(json.dumps(SCHEMA, indent=2))
    return EXIT_OK


def cmd_serve_webhooks(args: argparse.Namespace) -> int:
    import logging

    from manager_pipeline.instance import prepare_home
    from manager_pipeline.intake.inbox import Inbox
    from manager_pipeline.intake.receiver import PATH, ConfigWatcher, WebhookApp, serve

    settings = _settings()
    config = _config(settings)
    secret = os.environ.get("GITHUB_WEBHOOK_SECRET", "")
    # Each source may have its own secret (`webhook_secret_env`), or take OIDC tokens only
    # (`auth: oidc`); one of them is enough to start.
    own_secrets = [s.webhook_secret_env for s in config.sources.values() if s.webhook_secret_env]
    oidc_only = any(s.auth == "oidc" for s in config.sources.values())
    if not secret and not oidc_only and not any(os.environ.get(name) for name in own_secrets):
        raise UsageError(
            "GITHUB_WEBHOOK_SECRET is not set and no source's `webhook_secret_env` names a set variable "
            "(nor has a source `auth: oidc`); the receiver refuses to start without a secret"
        )
    prepare_home(settings)
    watcher = ConfigWatcher(settings.config_path)
    app = WebhookApp(secret, watcher, Inbox(settings.database_url), announce=_announcer(settings, watcher))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    def ready(host: str, port: int) -> None:
        print(f"receiving GitHub deliveries on http://{host}:{port}{PATH} (health: /healthz)", flush=True)
        print(f"OIDC tokens: issuer {app.oidc.issuer}, audience {app.oidc.audience}", flush=True)

    serve(app, args.host, args.port, ready, deadline_s=args.request_timeout, max_connections=args.max_connections)
    return EXIT_OK


def _announcer(settings: Settings, watcher):
    """With GitHub credentials, the receiver posts a `queued` status the moment a delivery is stored."""
    from manager_pipeline.intake.announce import Announcer
    from manager_pipeline.intake.dispatch import pr_checker

    feedback = _resources(settings)["feedback"]
    if not feedback.github.configured:
        return None
    outbox = feedback.outbox()
    announcer = Announcer(
        config=watcher.current,
        touches=pr_checker(lambda repo, pr: feedback.github.client(True).pull_files(repo, pr)),
        enqueue=outbox.add,
        send=lambda: feedback.deliver(quick=True),
        runs_url=f"{feedback.webserver_url}/runs",
    )
    return announcer.announce


def cmd_feedback(args: argparse.Namespace) -> int:
    import datetime

    settings = _settings()
    from manager_pipeline.instance import prepare_home

    prepare_home(settings)
    outbox = _resources(settings)["feedback"].outbox()
    if args.retry is not None:
        item = outbox.get(args.retry)
        if item is None:
            raise UsageError(f"no feedback item {args.retry}; `manager-pipeline feedback --dead` lists the dead ones")
        if not outbox.retry(args.retry):
            print(f"error: feedback item {args.retry} is {item.state}, not dead or waiting", file=sys.stderr)
            return EXIT_FAILED
        print(f"feedback item {args.retry} ({item.item.kind} for {item.item.repo}) re-queued; the daemon sends it next")
        return EXIT_OK
    items = outbox.items("dead" if args.dead else None)
    if not items:
        print("no dead feedback items" if args.dead else "nothing waiting for GitHub")
        return EXIT_OK
    print(f"{'ID':<8} {'STATE':<11} {'ATTEMPTS':<9} {'REPOSITORY':<30} {'KIND':<13} {'NEXT/CREATED (UTC)':<20} LAST ERROR")
    for stored in items:
        when = stored.next_attempt_at if stored.state == "pending" and stored.next_attempt_at else stored.created_at
        shown = datetime.datetime.fromtimestamp(when or 0, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        error = " ".join(_redacted(stored.last_error or "-").split())[:120]  # redacted before the cut
        print(
            _redacted(
                f"{stored.id:<8} {stored.state:<11} {stored.attempts:<9} {stored.item.repo:<30} "
                f"{stored.item.kind:<13} {shown:<20} {error}"
            )
        )
    if any(stored.state == "dead" for stored in items):
        print("re-queue one with: manager-pipeline feedback --retry ID")
    return EXIT_OK


def cmd_add_source(args: argparse.Namespace) -> int:
    from manager_pipeline.defs.resources import github_resource
    from manager_pipeline.errors import ConfigError
    from manager_pipeline.onboarding import AddRequest, OnboardingError, add_source

    settings = _settings()
    request = AddRequest(
        name=args.name,
        repo=args.repo,
        path=args.path,
        variables_file=args.variables_file,
        environments=tuple(e for item in args.environments for e in item.split(",")) if args.environments else None,
        webhook_url=args.webhook_url,
        webhook=not args.no_webhook,
        org_secret=args.org_secret,
        dry_run=args.dry_run,
    )
    try:
        github = github_resource() if args.repo else None
        add_source(request, settings.config_path, github.client if github and github.configured else None)
    except (OnboardingError, ConfigError) as exc:
        raise UsageError(str(exc)) from None
    return EXIT_OK


def cmd_remove_source(args: argparse.Namespace) -> int:
    from manager_pipeline.onboarding import OnboardingError, remove_source

    settings = _settings()
    force = args.force
    if args.destroy and not args.dry_run:
        # Decommissioning: a destroy plan for each environment with state, as the one who removes the
        # source (someone else approves it); the entry goes, its partitions stay until those destroys applied.
        try:
            environments = _config(settings).source(args.name).environments
        except ManagerError as exc:
            raise UsageError(str(exc)) from None
        for environment in environments:
            code = cmd_destroy(argparse.Namespace(source=args.name, env=environment))
            if code != EXIT_OK:
                print(f"error: the destroy of {args.name} in {environment} was not planned; manager.yaml is unchanged",
                      file=sys.stderr)
                return code
        force = True
    try:
        remove_source(args.name, settings.config_path, settings.aws.state_bucket, force, args.dry_run)
    except OnboardingError as exc:
        raise UsageError(str(exc)) from None
    return EXIT_OK


def cmd_preview(args: argparse.Namespace) -> int:
    """Plan every partition (or those named) with a module, in one run in this process; print the summary."""
    from contextlib import nullcontext

    from manager_pipeline.defs.fleet import FLEET_JOB
    from manager_pipeline.defs.location import build_definitions
    from manager_pipeline.fleet import fleet_partitions
    from manager_pipeline.instance import open_instance
    from manager_pipeline.local_aws import LocalAws
    from manager_pipeline.preview import check_module, module_at_ref

    settings = _settings()
    config = _config(settings)
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
    where = module_at_ref(config.terraform_dir, args.ref) if args.ref else nullcontext(args.module)
    with where as module:
        if module is not None:
            check_module(Path(module))
        label = f"`{args.ref}`" if args.ref else (f"`{module}`" if module else "")
        op_config = {
            "sources": list(args.source or ()),
            "environments": list(args.env or ()),
            "module_dir": str(module or ""),
            "module_label": label,
            "parallelism": args.parallelism,
            "comment_on": args.comment or "",
        }
        result = job.execute_in_process(
            instance=instance,
            tags={"manager/trigger": "cli"},
            run_config={
                "ops": {"plan_partitions": {"config": op_config}},
                "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
            },
            raise_on_error=False,
        )
    url = f"{settings.webserver_url}/runs/{result.run_id}"
    if not result.success:
        print(_redacted(f"error: run {result.run_id} failed at {_failure_message(result)}"), file=sys.stderr)
        return EXIT_FAILED
    markdown = result.output_for_node("plan_partitions")
    print("\n" + _redacted(markdown))
    print(f"Open it in the Dagster UI: {_ui_command(settings)}  ->  {url}")
    return EXIT_FAILED if "**failed**" in markdown else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="manager-pipeline", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the deploy job for one source and environment, in this process")
    run.add_argument("--source", required=True, help="source name from manager.yaml")
    run.add_argument("--env", required=True, help="environment, e.g. staging")
    run.add_argument("--plan-only", action="store_true", help="stop after the plan")
    run.add_argument("--sha", help="read the variables at this commit")
    run.add_argument("--branch", help="the branch the commit is on (decides whether it may apply)")
    run.add_argument("--pr", type=int, help="pull request number (plans only)")
    run.add_argument("--author", help="GitHub login of the change's author (who may not approve it)")
    run.set_defaults(func=cmd_run)

    commands.add_parser("sources", help="list registered sources and their partitions").set_defaults(func=cmd_sources)
    validate = commands.add_parser("validate", help="check a variables.yml against the contract")
    validate.add_argument("path", help="the variables.yml to check")
    validate.add_argument("--env", help="also print what Terraform receives for this environment")
    validate.add_argument("--format", choices=("text", "json"), default="text")
    validate.set_defaults(func=cmd_validate)
    schema = commands.add_parser("schema", help="print the JSON Schema of variables.yml")
    generated = schema.add_mutually_exclusive_group()
    generated.add_argument("--markdown", action="store_true", help="the field reference (README) instead")
    generated.add_argument("--terraform", action="store_true", help="terraform/sections.tf instead")
    generated.add_argument("--manager", action="store_true", help="the JSON Schema of manager.yaml instead")
    schema.set_defaults(func=cmd_schema)
    commands.add_parser("setup", help="build Terraform and the provider mirror, prepare the instance").set_defaults(
        func=cmd_setup
    )
    ui = commands.add_parser("ui", help="open the Dagster UI (and daemon) on this instance")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)
    commands.add_parser("stop", help="stop the local AWS stand-in").set_defaults(func=cmd_stop)
    worker = commands.add_parser("worker", help="take the steps of runs on Celery (MANAGER_EXECUTOR=celery)")
    worker.add_argument(
        "--environments", nargs="+", required=True, metavar="ENV", help="whose steps it takes (with their credentials)"
    )
    worker.add_argument("--concurrency", type=int, default=os.cpu_count() or 1, help="steps at a time (default: cores)")
    worker.add_argument("--name", help="the worker's name in the run's events (default: manager-ENVS-PID)")
    worker.set_defaults(func=cmd_worker)
    plans = commands.add_parser("plans", help="list saved plans, their state and approvals")
    plans.add_argument("--source")
    plans.add_argument("--env")
    plans.add_argument("--state", help="e.g. awaiting-approval, applied")
    plans.set_defaults(func=cmd_plans)
    approve = commands.add_parser("approve", help="approve a plan waiting for approval, as an operator")
    approve.add_argument("plan_id")
    approve.add_argument("--reason", required=True, help="why; kept in the audit trail")
    approve.set_defaults(func=cmd_approve)
    apply = commands.add_parser("apply", help="apply an approved plan in this process, after the same checks")
    apply.add_argument("plan_id")
    apply.set_defaults(func=cmd_apply)
    destroy = commands.add_parser(
        "destroy", help="plan the destroy of what a source has in an environment; it applies once approved"
    )
    destroy.add_argument("source", help="the source (also one that left manager.yaml)")
    destroy.add_argument("env", help="the environment")
    destroy.set_defaults(func=cmd_destroy)
    unlock = commands.add_parser("unlock", help="release a state lock a killed run left behind")
    unlock.add_argument("source")
    unlock.add_argument("env")
    unlock.add_argument("lock_id")
    unlock.set_defaults(func=cmd_unlock)
    drift = commands.add_parser(
        "drift", help="check partitions for drift now (refresh-only plans): exit 2 on drift, 1 if one was not checked"
    )
    drift.add_argument("source", nargs="?", help="only this source (default: every source)")
    drift.add_argument("--env", help="only this environment")
    drift.set_defaults(func=cmd_drift)
    feedback = commands.add_parser("feedback", help="list feedback waiting for GitHub, or dead; re-queue a dead item")
    feedback.add_argument("--dead", action="store_true", help="only the items parked after their last attempt")
    feedback.add_argument("--retry", type=int, metavar="ID", help="re-queue this (dead) item for the next delivery")
    feedback.set_defaults(func=cmd_feedback)
    webhooks = commands.add_parser("serve-webhooks", help="receive GitHub webhook deliveries into the inbox")
    webhooks.add_argument("--host", default="127.0.0.1")
    webhooks.add_argument("--port", type=int, default=8088)
    webhooks.add_argument(
        "--request-timeout", type=float, default=10.0, help="seconds a sender gets for headers, and for the body"
    )
    webhooks.add_argument("--max-connections", type=int, default=1000, help="past it, new connections get 503")
    webhooks.set_defaults(func=cmd_serve_webhooks)
    add = commands.add_parser(
        "add-source", help="register a source: manager.yaml entry, variables check, webhook on GitHub"
    )
    add.add_argument("name", help="the source's name (partition name): lowercase, digits, . _ -")
    where = add.add_mutually_exclusive_group(required=True)
    where.add_argument("--repo", metavar="OWNER/NAME", help="the GitHub repository")
    where.add_argument("--path", metavar="FOLDER", help="a local checkout instead (no webhook)")
    add.add_argument("--variables-file", default="infra/variables.yml", help="inside the repository")
    add.add_argument(
        "--environments", nargs="+", metavar="ENV", help="environments it deploys to (default: staging, production)"
    )
    add.add_argument(
        "--webhook-url", help="the receiver's public URL (default: $MANAGER_WEBHOOK_URL); /webhooks/github is added"
    )
    add.add_argument("--org-secret", action="store_true", help="sign with GITHUB_WEBHOOK_SECRET, not a new secret")
    add.add_argument("--no-webhook", action="store_true", help="no webhook (a workflow or polling sends changes)")
    add.add_argument("--dry-run", action="store_true", help="show the manager.yaml diff and what would be done")
    add.set_defaults(func=cmd_add_source)
    remove = commands.add_parser("remove-source", help="unregister a source (its infrastructure is not destroyed)")
    remove.add_argument("name")
    remove.add_argument(
        "--force", action="store_true", help="remove the manager.yaml entry only; its state objects are kept"
    )
    remove.add_argument(
        "--destroy",
        action="store_true",
        help="first plan the destroy of each environment with state (each then needs its approval and apply)",
    )
    remove.add_argument("--dry-run", action="store_true", help="show the manager.yaml diff only")
    remove.set_defaults(func=cmd_remove_source)
    preview = commands.add_parser(
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ManagerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - only a database that cannot be reached is told apart here
        unreachable = _database_unreachable(exc)
        if unreachable is None:
            raise
        print(f"error: {unreachable}", file=sys.stderr)
        return EXIT_USAGE


def _database_unreachable(exc: BaseException) -> str | None:
    """One line for the manager's database not answering (a setting or a service to fix), else None."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    if not isinstance(exc, OperationalError):
        return None
    url = os.environ.get("MANAGER_DATABASE_URL", "")
    try:
        shown = make_url(url).render_as_string(hide_password=True) if url else "the SQLite file in DAGSTER_HOME"
    except Exception:  # noqa: BLE001 - a URL too broken to show is not shown
        shown = "MANAGER_DATABASE_URL"
    cause = str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0]
    return f"the manager's database does not answer ({shown}): {cause}; check it is up and MANAGER_DATABASE_URL"


if __name__ == "__main__":
    sys.exit(main())
