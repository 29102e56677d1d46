"""Stage: Terraform - the working directory and init, the saved plan, and the apply of exactly that plan."""

import socket

from dagster import (
    Failure,
    MetadataValue,
    OpExecutionContext,
    op,
)

from manager_pipeline.config.request import ResolvedRequest
from manager_pipeline.contract import DeployConfig
from manager_pipeline.defs.assets import LIVE, infrastructure_materialization, plan_materialization
from manager_pipeline.defs.assets import check as asset_check
from manager_pipeline.defs.resources import (
    AwsResource,
    FeedbackResource,
    PlanStoreResource,
    TerraformResource,
)
from manager_pipeline.defs.stage import (
    DEPLOY_JOB,
    DESTROY_JOB,
    MAX_METADATA_PLAN_CHARS,
    TerraformLines,
    current_event,
    failure_for,
    redacted_metadata,
    say,
)
from manager_pipeline.errors import ManagerError
from manager_pipeline.outcome import Outcome, OutcomeStatus
from manager_pipeline.pipeline import make_plan, prepare
from manager_pipeline.pipeline.apply import ApplyFailed, apply_saved
from manager_pipeline.plans import Plan, PlanState
from manager_pipeline.policy import prestart
from manager_pipeline.redact import redact_text
from manager_pipeline.sources import VariablesDocument
from manager_pipeline.terraform import Workdir
from manager_pipeline.terraform.workdir import portable


def here(context: OpExecutionContext, terraform: TerraformResource, target, workdir: Workdir, stage: str) -> Workdir:
    """The run's working directory on this machine: init's own when init ran here, else built again in
    this machine's folder from what init handed on, and initialised (each step may run on another worker)."""
    workdir, rebuilt = terraform.workdir_here(workdir, context.run_id)
    if rebuilt:
        with TerraformLines(context, stage) as lines, terraform.session(workdir.path, target, lines) as (runner, _):
            runner.init(workdir.backend_file)
        say(context, stage, f"working directory built on {socket.gethostname()} from what init handed on")
    return workdir


@op(description="Prepare the run's working directory and initialise Terraform with its state backend.")
def init(
    context: OpExecutionContext,
    aws: AwsResource,
    terraform: TerraformResource,
    request: ResolvedRequest,
    deploy_config: DeployConfig,
) -> Workdir:
    if context.job_name in (DEPLOY_JOB, DESTROY_JOB):
        try:
            # The policy engine imports itself (seconds) while Terraform inits and plans; the policy stage takes it.
            prestart(terraform.checkov())
        except ManagerError:
            pass  # not installed: the policy stage says so
    try:
        # The environment's own credentials (its policy's `aws:`), when it has some.
        target = aws.target(request.event.environment, request.policy.aws)
        with TerraformLines(context, "init") as lines:
            prepared = prepare(
                terraform,
                target,
                terraform.workdir_for(context.run_id),
                request.terraform_dir,
                deploy_config,
                shared_target=aws.target(),
                on_line=lines,
            )
    except ManagerError as exc:
        raise failure_for(exc, context) from None
    # What plan and apply take, on this machine or another: the module, the files written here, no secret.
    workdir = portable(prepared.workdir, request.terraform_dir, request.policy.aws)
    for path in prepared.pushed:
        say(context, "init", f"pushed the state a failed apply could not save ({path.name}) before planning")
    say(
        context,
        "init",
        f"Terraform {prepared.terraform_version}, state {prepared.state}"
        + (f" on {target.endpoint_url}" if target.endpoint_url else ""),
    )
    context.add_output_metadata(
        {
            "state": prepared.state,
            "terraform": prepared.terraform_version,
            "module_digest": workdir.module_digest,
            "workdir": str(workdir.path),
        }
    )
    return workdir


@op(description="Plan, and keep the saved plan (its file, text and record) in the plan store.")
def plan(
    context: OpExecutionContext,
    aws: AwsResource,
    terraform: TerraformResource,
    plans: PlanStoreResource,
    request: ResolvedRequest,
    document: VariablesDocument,
    workdir: Workdir,
) -> Plan:
    event, repo = request.event, request.repo
    try:
        target = aws.target(event.environment, request.policy.aws)
        workdir = here(context, terraform, target, workdir, "plan")
        store = plans.plans()
        with TerraformLines(context, "plan") as lines:
            # A plan store that cannot keep it (no space left) is said in one line too.
            saved = make_plan(terraform, target, workdir, event, document, repo, store, context.run_id, on_line=lines).plan
    except ManagerError as exc:
        raise failure_for(exc, context, document) from None
    summary = saved.summary
    say(context, "plan", f"{'DESTROY: ' if event.destroy else ''}{summary.line()} (plan {saved.plan_id})")
    try:
        # At most once an hour per process: the files of old plans that can never be applied again.
        pruned = store.prune_if_due()
    except Exception as exc:  # noqa: BLE001 - pruning old files never fails the run that planned
        cause = (str(exc) or repr(exc)).splitlines()[0]
        say(context, "plan", f"WARNING: the files of old plans were not pruned: {cause}")
    else:
        if pruned and pruned.plan_ids:
            say(context, "plan", f"pruned the files of old plans {', '.join(pruned.plan_ids)} (their records stay)")
        for problem in pruned.problems if pruned else ():
            say(context, "plan", f"WARNING: {problem}")
    if summary.deletions:
        say(context, "plan", f"WARNING: destroys {', '.join(summary.deletions)}")
    context.add_output_metadata(
        redacted_metadata({
            "plan_id": saved.plan_id,
            "summary": summary.line(),
            "add": summary.add,
            "change": summary.change,
            "destroy": summary.destroy,
            "plan_sha256": saved.plan_sha256,
            # Redacted before it is cut: a cut must never leave half a secret behind.
            "plan": MetadataValue.md("```text\n" + redact_text(saved.text())[-MAX_METADATA_PLAN_CHARS:] + "\n```"),
            "planned_outputs": MetadataValue.json(saved.planned_outputs),
        })
    )
    return saved


@op(description="Apply exactly the saved plan: only from `approved`, only the bytes that were planned.")
def apply(
    context: OpExecutionContext,
    aws: AwsResource,
    terraform: TerraformResource,
    plans: PlanStoreResource,
    feedback: FeedbackResource,
    workdir: Workdir,
    plan: Plan,
) -> Outcome:
    event = current_event(context)
    store = plans.plans()
    try:
        target = aws.target(event.environment, workdir.access)
        workdir = here(context, terraform, target, workdir, "apply")
        with TerraformLines(context, "apply") as lines:
            result = apply_saved(terraform, target, workdir, plan, store, context.run_id, on_line=lines)
    except ApplyFailed as exc:
        failure = failure_for(exc.cause, context)
        # The partition's infrastructure is now what a failed apply left: red until an apply succeeds.
        context.log_event(asset_check(LIVE, context.partition_key, False, f"plan {plan.plan_id} failed to apply: {exc}"))
        context.log_event(plan_materialization(store.get(plan.plan_id), PlanState.FAILED.value, str(exc)))
        if exc.kept is not None:
            where = terraform.share_kept_state(aws.target(), exc.kept, event.source, event.environment)
            failure = Failure(
                description=f"{failure.description}; the state Terraform could not save is kept in {where}, and "
                "the next run of this partition pushes it before it plans"
            )
        raise failure from None
    except ManagerError as exc:
        raise failure_for(exc, context) from None
    say(context, "apply", f"applied plan {plan.plan_id} in {result.seconds:.1f}s")
    key = context.partition_key
    context.log_event(infrastructure_materialization(plan, result.outputs, result.resources, feedback.run_url(context.run_id)))
    context.log_event(plan_materialization(store.get(plan.plan_id), PlanState.APPLIED.value))
    if plan.destroy:
        context.log_event(asset_check(LIVE, key, False, f"destroyed by plan {plan.plan_id}: nothing is live", warn=True))
    else:
        context.log_event(asset_check(LIVE, key, True, f"plan {plan.plan_id} applied"))
    context.add_output_metadata({"outputs": MetadataValue.json(result.outputs), "seconds": round(result.seconds, 1)})
    return Outcome(
        event=event,
        status=OutcomeStatus.APPLIED,
        headline=f"Applied plan {plan.plan_id}.",
        plan=plan,
        outputs=result.outputs,
        sha=plan.sha,
        branch=plan.branch,
    )
