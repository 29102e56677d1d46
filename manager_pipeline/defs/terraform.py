"""Stage: Terraform - the working directory and init, the saved plan, and the apply of exactly that plan."""

import socket
import time

from dagster import (
    Failure,
    MetadataValue,
    OpExecutionContext,
    op,
)

from manager_pipeline.contract import DeployConfig
from manager_pipeline.defs.resources import (
    AwsResource,
    PlanStoreResource,
    TerraformResource,
)
from manager_pipeline.defs.stage import MAX_METADATA_PLAN_CHARS, TerraformLines, current_event, failure_for, say
from manager_pipeline.errors import ManagerError
from manager_pipeline.feedback import Outcome, OutcomeStatus
from manager_pipeline.plans import Plan, PlanFacts, PlanState, sha256_file
from manager_pipeline.request import ResolvedRequest
from manager_pipeline.sources import VariablesDocument
from manager_pipeline.terraform import (
    BackendSettings,
    Workdir,
    mask_outputs,
    prepare_workdir,
)
from manager_pipeline.terraform.errored import keep_errored_state, push_errored_states
from manager_pipeline.terraform.workdir import portable, read_previous_state


def _here(context: OpExecutionContext, terraform: TerraformResource, target, workdir: Workdir, stage: str) -> Workdir:
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
    try:
        # The environment's own credentials (its policy's `aws:`), when it has some.
        target = aws.target(request.event.environment, request.policy.aws)
        target.ensure_state_bucket()
        backend = BackendSettings.of_partition(target, deploy_config.source_name, deploy_config.environment)
        workdir = prepare_workdir(
            terraform.workdir_for(context.run_id),
            request.terraform_dir,
            deploy_config,
            backend,
            target.endpoint_url,
        )
        # What the module takes from the state the previous run left (the backup copy vault's region).
        read_previous_state(workdir.path, target.client("s3"), backend)
        with TerraformLines(context, "init") as lines, terraform.session(workdir.path, target, lines) as (
            runner,
            toolchain,
        ):
            runner.init(workdir.backend_file)
            # What a failed apply made but could not save goes back into the state before any plan.
            source, environment = deploy_config.source_name, deploy_config.environment
            shared = terraform.shared_states(aws.target())
            pushed = push_errored_states(runner, terraform.errored_states, source, environment, shared)
    except ManagerError as exc:
        raise failure_for(exc, context) from None
    # What plan and apply take, on this machine or another: the module, the files written here, no secret.
    workdir = portable(workdir, request.terraform_dir, request.policy.aws)
    for path in pushed:
        say(context, "init", f"pushed the state a failed apply could not save ({path.name}) before planning")
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
        workdir = _here(context, terraform, target, workdir, "plan")
        with TerraformLines(context, "plan") as lines, terraform.session(workdir.path, target, lines) as (
            runner,
            toolchain,
        ):
            has_changes, result = runner.plan(workdir.plan_file, destroy=event.destroy)
            plan_json = runner.show_json(workdir.plan_file)
    except ManagerError as exc:
        raise failure_for(exc, context) from None
    facts = PlanFacts.of_plan(
        event, document, repo, workdir, toolchain.version, has_changes, plan_json, run_id=context.run_id
    )
    summary = facts.summary
    store = plans.plans()
    try:
        saved = store.save(workdir.plan_file, result.stdout, facts)
    except ManagerError as exc:  # e.g. no space left where plans are kept: said in one line
        raise failure_for(exc, context) from None
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
    try:
        target = aws.target(event.environment, workdir.access)
        workdir = _here(context, terraform, target, workdir, "apply")
    except ManagerError as exc:
        raise failure_for(exc, context) from None
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
        with TerraformLines(context, "apply") as lines, terraform.session(workdir.path, target, lines) as (
            runner,
            _,
        ):
            runner.apply(plan.plan_file)
            outputs = mask_outputs(runner.outputs())
    except ManagerError as exc:
        store.transition(plan.plan_id, PlanState.FAILED, note=str(exc)[:500])
        failure = failure_for(exc, context)
        kept = keep_errored_state(workdir.path, terraform.errored_states, event.source, event.environment)
        if kept is not None:
            where = terraform.share_kept_state(aws.target(), kept, event.source, event.environment)
            failure = Failure(
                description=f"{failure.description}; the state Terraform could not save is kept in {where}, and "
                "the next run of this partition pushes it before it plans"
            )
        raise failure from None
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
