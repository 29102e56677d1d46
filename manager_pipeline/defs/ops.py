"""The deploy job's ops. Each calls one plain function and records what the UI should show."""

import json
import os
import socket
import time

from dagster import (
    DagsterRunStatus,
    Failure,
    HookContext,
    JsonMetadataValue,
    MarkdownMetadataValue,
    MetadataValue,
    OpExecutionContext,
    Out,
    Output,
    RunsFilter,
    TextMetadataValue,
    failure_hook,
    op,
)

from manager_pipeline.contract import DeployConfig, load_variables, resolve
from manager_pipeline.defs.partitions import split_partition_key
from manager_pipeline.defs.resources import (
    AwsResource,
    FeedbackResource,
    InboxResource,
    ManagerConfigResource,
    PlanStoreResource,
    SourcesResource,
    TerraformResource,
)
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import BRANCH_TAG, SHA_TAG, DispatchEvent
from manager_pipeline.feedback import Outcome, OutcomeStatus
from manager_pipeline.feedback.redact import redact, redact_text, register_secret
from manager_pipeline.feedback.slack import NotifySettings
from manager_pipeline.intake.dispatch import INBOX_ID_TAG, REF_TAG
from manager_pipeline.plans import ApplyFacts, Plan, PlanFacts, PlanState, apply_requirements, sha256_file
from manager_pipeline.plans.gate import decide
from manager_pipeline.sources import VariablesDocument
from manager_pipeline.terraform import (
    BackendSettings,
    Workdir,
    mask_outputs,
    planned_outputs,
    prepare_workdir,
    state_key,
    summarize,
)
from manager_pipeline.terraform.runner import StateLocked
from manager_pipeline.terraform.workdir import TFVARS_FILE

WORKER_TAG = "manager/worker"
# Plan text shown inline in the UI; the full text is always in the plan artifact.
MAX_METADATA_PLAN_CHARS = 60_000


def current_event(context: OpExecutionContext | HookContext) -> DispatchEvent:
    run = context.run if isinstance(context, OpExecutionContext) else context.instance.get_run_by_id(context.run_id)
    key = run.tags.get("dagster/partition") if isinstance(context, HookContext) else context.partition_key
    if not key:
        raise Failure("the deploy job runs per partition: pick a source and an environment")
    source, environment = split_partition_key(key)
    return DispatchEvent.from_tags(source, environment, run.tags)


def say(context: OpExecutionContext, stage: str, message: str) -> None:
    """A progress line: in the run's event log, and on stdout (the CLI, the UI's stdout tab); redacted."""
    message = redact_text(message)
    context.log.info(f"{stage}: {message}")
    print(f"[{stage:<8}] {message}", flush=True)


def _failure(exc: ManagerError, context: OpExecutionContext | None = None) -> Failure:
    message = str(exc)
    if isinstance(exc, StateLocked) and context is not None and exc.lock.get("ID"):
        event = current_event(context)
        active = _other_active_runs(context)
        if active:
            message += (
                f"\nRun {active[0]} of this partition is still going and holds it: wait for it to end "
                "(or stop it in the UI); do not unlock."
            )
        else:
            message += (
                "\nNo run of this partition is going: a killed run left it behind. Release it with: "
                f"manager-pipeline unlock {event.source} {event.environment} {exc.lock['ID']}"
            )
    # The description reaches the event log, the UI, the failure report and the CLI: redacted here.
    return Failure(description=redact_text(message))


def _other_active_runs(context: OpExecutionContext) -> list[str]:
    """Runs of this run's partition, other than this one, that the instance says are going."""
    key = context.partition_key
    runs = context.instance.get_runs(
        RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING], tags={"dagster/partition": key})
    )
    return [run.run_id for run in runs if run.run_id != context.run_id and _worker_alive(run.tags.get(WORKER_TAG))]


def _worker_alive(worker: str | None) -> bool:
    """Whether the process of a run is still there; one on another host is taken to be."""
    host, _, pid = (worker or "").rpartition(":")
    if not pid.isdigit() or host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def redacted_metadata(metadata: dict) -> dict:
    """Run metadata with every known secret masked (text, markdown and JSON values)."""
    cleaned = {}
    for key, value in metadata.items():
        if isinstance(value, str):
            value = redact_text(value)
        elif isinstance(value, MarkdownMetadataValue):
            value = MetadataValue.md(redact_text(value.md_str or ""))
        elif isinstance(value, JsonMetadataValue):
            value = MetadataValue.json(redact(value.data))
        elif isinstance(value, TextMetadataValue):
            value = MetadataValue.text(redact_text(value.text))
        cleaned[key] = value
    return cleaned


@op(description="Read the source's variables file at the event's commit.")
def fetch_variables(
    context: OpExecutionContext, manager: ManagerConfigResource, sources: SourcesResource, feedback: FeedbackResource
) -> VariablesDocument:
    event = current_event(context)
    try:
        spec = manager.load().check_partition(event.source, event.environment)
        document = sources.fetch(spec, event)
    except ManagerError as exc:
        raise _failure(exc) from None
    # The commit actually read, on the run itself: the UI shows it and later stages report on it.
    resolved = {SHA_TAG: document.sha, BRANCH_TAG: document.branch}
    tags = {k: v for k, v in resolved.items() if v and k not in context.run.tags}
    # Which process works on the run: a run whose process is gone (killed) holds nothing any more.
    tags[WORKER_TAG] = f"{socket.gethostname()}:{os.getpid()}"
    context.instance.add_run_tags(context.run_id, tags)
    say(context, "fetch", f"{document.location} at {(document.sha or 'working tree')[:12]} on {document.branch}")
    if spec.repo and document.sha:
        delivery = feedback.started(spec.repo, document.sha, event.environment, context.run_id)
        if delivery.pending:
            say(context, "fetch", "GitHub did not take the pending status yet; it stays queued")
    context.add_output_metadata(
        {
            "location": document.location,
            "commit": document.sha or "(not in git)",
            "branch": document.branch or "(unknown)",
            "sha256": document.digest,
        }
    )
    return document


@op(description="Check variables.yml against the contract and resolve this environment.")
def validate(context: OpExecutionContext, manager: ManagerConfigResource, document: VariablesDocument) -> DeployConfig:
    event = current_event(context)
    try:
        environments = list(manager.load().environments)
        data = load_variables(document.text, environments, document.location)
        config = resolve(data, event.environment, event.source, document.location)
    except ManagerError as exc:
        raise _failure(exc) from None
    register_secret(config.slack_webhook)  # a source's own secret: masked by every sink from now on
    say(context, "validate", f"{config.project_name} for {config.environment} in {config.region}")
    context.add_output_metadata(
        redacted_metadata({"resolved": MetadataValue.json(config.to_tfvars()), "digest": config.digest})
    )
    return config


@op(description="Prepare the run's working directory and initialise Terraform with its state backend.")
def init(
    context: OpExecutionContext,
    manager: ManagerConfigResource,
    aws: AwsResource,
    terraform: TerraformResource,
    deploy_config: DeployConfig,
) -> Workdir:
    try:
        target = aws.target()
        target.ensure_state_bucket()
        backend = BackendSettings(
            bucket=target.state_bucket,
            region=target.state_region,
            key=state_key(deploy_config.source_name, deploy_config.environment),
            endpoint_url=target.endpoint_url,
        )
        workdir = prepare_workdir(
            terraform.workdir_for(context.run_id),
            manager.load().terraform_dir,
            deploy_config,
            backend,
            target.endpoint_url,
        )
        with terraform.session(workdir.path, target) as (runner, toolchain):
            runner.init(workdir.backend_file)
    except ManagerError as exc:
        raise _failure(exc, context) from None
    where = f"s3://{backend.bucket}/{backend.key}"
    say(
        context,
        "init",
        f"Terraform {toolchain.version}, state {where}" + (f" on {target.endpoint_url}" if target.endpoint_url else ""),
    )
    context.add_output_metadata(
        {
            "state": where,
            "terraform": toolchain.version,
            "module_digest": workdir.module_digest,
            "workdir": str(workdir.path),
        }
    )
    return workdir


@op(description="Plan, and keep the saved plan (its file, text and record) in the plan store.")
def plan(
    context: OpExecutionContext,
    manager: ManagerConfigResource,
    aws: AwsResource,
    terraform: TerraformResource,
    plans: PlanStoreResource,
    document: VariablesDocument,
    workdir: Workdir,
) -> Plan:
    event = current_event(context)
    try:
        repo = manager.load().source(event.source).repo
        with terraform.session(workdir.path, aws.target()) as (runner, toolchain):
            has_changes, result = runner.plan(workdir.plan_file)
            plan_json = runner.show_json(workdir.plan_file)
    except ManagerError as exc:
        raise _failure(exc, context) from None
    summary = summarize(plan_json)
    saved = plans.plans().save(
        workdir.plan_file,
        result.stdout,
        PlanFacts(
            source=event.source,
            environment=event.environment,
            sha=document.sha,
            branch=document.branch,
            branch_verified=document.branch_verified,
            pr=event.pr,
            author=event.author,
            repo=repo,
            variables_digest=workdir.variables_digest,
            module_digest=workdir.module_digest,
            terraform_version=toolchain.version,
            has_changes=has_changes,
            summary=summary,
            planned_outputs=planned_outputs(plan_json),
            tfvars=json.loads((workdir.path / TFVARS_FILE).read_text()),
            run_id=context.run_id,
        ),
    )
    say(context, "plan", f"{summary.line()} (plan {saved.plan_id})")
    if summary.deletions:
        say(context, "plan", f"WARNING: destroys {', '.join(summary.deletions)}")
    context.add_output_metadata(
        {
            "plan_id": saved.plan_id,
            "summary": summary.line(),
            "add": summary.add,
            "change": summary.change,
            "destroy": summary.destroy,
            "plan_sha256": saved.plan_sha256,
            "plan": MetadataValue.md("```text\n" + saved.text()[-MAX_METADATA_PLAN_CHARS:] + "\n```"),
            "planned_outputs": MetadataValue.json(saved.planned_outputs),
        }
    )
    return saved


@op(
    description="Decide what the plan becomes: applied now, awaiting approval, or a preview.",
    out={"approved": Out(Plan, is_required=False), "held": Out(Outcome, is_required=False)},
)
def approval_gate(
    context: OpExecutionContext,
    manager: ManagerConfigResource,
    inbox: InboxResource,
    plans: PlanStoreResource,
    workdir: Workdir,
    plan: Plan,
):
    event = current_event(context)
    try:
        policy = manager.load().policy(event.environment)
    except ManagerError as exc:
        raise _failure(exc) from None
    superseded_by = None
    inbox_id, ref_key = context.run.tags.get(INBOX_ID_TAG), context.run.tags.get(REF_TAG)
    if plan.repo and inbox_id and ref_key:
        # A newer delivery for this branch or pull request came in while this run was going.
        superseded_by = inbox.inbox().newer_delivery(plan.repo, ref_key, event.source, int(inbox_id))
    decision = decide(
        policy,
        event,
        plan.branch if plan.branch_verified else None,
        plan.has_changes,
        plan.plan_id,
        superseded_by,
        claimed_branch=plan.branch,
    )
    store = plans.plans()
    store.transition(plan.plan_id, decision.state, note=decision.reason)
    if decision.applies:
        refusals = apply_requirements(
            store.get(plan.plan_id),
            policy,
            ApplyFacts(
                plan_file_sha256=sha256_file(plan.plan_file),
                newest_candidate=plan.plan_id,
                module_digest=workdir.module_digest,
                variables_digest=workdir.variables_digest,
                variables_problem=None,
                accepted_approvers=(),
                now=time.time(),
            ),
        )
        if refusals:
            store.transition(plan.plan_id, PlanState.REFUSED, note="; ".join(r.reason for r in refusals)[:1000])
            raise Failure("apply refused:\n" + "\n".join(f"- {r.reason}" for r in refusals))
    say(context, "gate", decision.reason)
    metadata = {"decision": decision.state.value, "reason": decision.reason}
    if decision.applies:
        yield Output(plan, "approved", metadata=metadata)
        return
    # With no changes, what the plan shows as outputs is what the state holds.
    outputs = plan.planned_outputs if decision.outcome is OutcomeStatus.NO_CHANGES else {}
    yield Output(
        Outcome(
            event=event,
            status=decision.outcome,
            headline=decision.reason,
            plan=plan,
            outputs=outputs,
            sha=plan.sha,
            branch=plan.branch,
        ),
        "held",
        metadata=metadata,
    )


@op(description="Apply exactly the saved plan: only from `approved`, only the bytes that were planned.")
def apply(
    context: OpExecutionContext,
    aws: AwsResource,
    terraform: TerraformResource,
    plans: PlanStoreResource,
    workdir: Workdir,
    plan: Plan,
) -> Outcome:
    event = current_event(context)
    store = plans.plans()
    # Checked at the moment of use: the file handed to Terraform is the one that was planned.
    if sha256_file(plan.plan_file) != plan.plan_sha256:
        store.transition(plan.plan_id, PlanState.REFUSED, note="the plan file changed after it was planned")
        raise Failure(f"plan {plan.plan_id}: the plan file changed since it was planned; re-plan required")
    if not store.transition(plan.plan_id, PlanState.APPLYING, apply_run_id=context.run_id):
        current = store.get(plan.plan_id)
        raise Failure(
            f"plan {plan.plan_id} is {current.state.value}, not approved"
            + (f" (run {current.apply_run_id})" if current.apply_run_id else "")
            + ": it is applied once, by one run"
        )
    started = time.monotonic()
    try:
        with terraform.session(workdir.path, aws.target()) as (runner, _):
            runner.apply(plan.plan_file)
            outputs = mask_outputs(runner.outputs())
    except ManagerError as exc:
        store.transition(plan.plan_id, PlanState.FAILED, note=str(exc)[:500])
        raise _failure(exc, context) from None
    except BaseException:
        # Stopped from outside (the run terminated, Ctrl-C): the plan is never left "applying".
        store.transition(plan.plan_id, PlanState.FAILED, note="the run was stopped during the apply")
        raise
    store.transition(plan.plan_id, PlanState.APPLIED)
    elapsed = time.monotonic() - started
    say(context, "apply", f"applied plan {plan.plan_id} in {elapsed:.1f}s")
    context.add_output_metadata({"outputs": MetadataValue.json(outputs), "seconds": round(elapsed, 1)})
    return Outcome(
        event=event,
        status=OutcomeStatus.APPLIED,
        headline=f"Applied plan {plan.plan_id}.",
        plan=plan,
        outputs=outputs,
        sha=plan.sha,
        branch=plan.branch,
    )


@op(description="Report the outcome: run metadata in the UI, a report file, GitHub and Slack as the source asks.")
def feedback(
    context: OpExecutionContext,
    manager: ManagerConfigResource,
    feedback: FeedbackResource,
    deploy_config: DeployConfig,
    outcomes: list[Outcome],
) -> Outcome:
    outcome = outcomes[0]
    repo = manager.load().source(outcome.event.source).repo
    # Registers the webhook in this op's process too (ops may run in processes of their own).
    notify = NotifySettings.of(deploy_config.sections.get("notifications"), deploy_config.slack_webhook)
    published = feedback.publish(outcome, context.run_id, repo, outcome.event.pr, notify)
    say(context, "feedback", f"{outcome.status.value}: report {published.report_file}")
    if published.slack_problem:
        say(context, "feedback", f"Slack notification not sent: {published.slack_problem}")
    metadata = {
        "status": outcome.status.value,
        "report": MetadataValue.md(published.markdown),
        "report_file": MetadataValue.path(str(published.report_file)),
    }
    if repo:
        delivery = published.delivery
        say(context, "feedback", f"GitHub {repo}: {len(delivery.delivered)} sent, {delivery.pending} queued")
        metadata |= {"github_sent": len(delivery.delivered), "github_queued": delivery.pending}
    context.add_output_metadata(redacted_metadata(metadata))
    return outcome


@failure_hook(required_resource_keys={"feedback", "manager"})
def report_failure(context: HookContext) -> None:
    """A failed op still leaves a report: which stage failed and the error that says what to fix."""
    error = context.op_exception
    message = redact_text(
        error.description if isinstance(error, Failure) and error.description else f"{type(error).__name__}: {error}"
    )
    try:
        event = current_event(context)
    except Failure:
        return
    outcome = Outcome(
        event=event,
        status=OutcomeStatus.FAILED,
        headline=f"The run failed at {context.op.name}.",
        failed_stage=context.op.name,
        error=message,
    )
    try:
        repo = context.resources.manager.load().source(event.source).repo
    except ManagerError:
        repo = None
    published = context.resources.feedback.publish(outcome, context.run_id, repo, event.pr)
    context.log.error(redact_text(f"failure report: {published.report_file}"))
