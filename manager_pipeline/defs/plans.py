"""Stage: what a plan becomes - the deploy run's gate, the approval sensor, and the apply_plan job's
load and check of a saved plan (all through plans/)."""

from dataclasses import replace
from pathlib import Path

from dagster import (
    DefaultSensorStatus,
    Failure,
    MetadataValue,
    OpExecutionContext,
    Out,
    Output,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    op,
    sensor,
)

from manager_pipeline.config.request import ResolvedRequest
from manager_pipeline.contract import DeployConfig
from manager_pipeline.defs.assets import APPROVED, plan_materialization
from manager_pipeline.defs.assets import check as asset_check
from manager_pipeline.defs.partitions import partition_key
from manager_pipeline.defs.resources import (
    FeedbackResource,
    GitHubResource,
    InboxResource,
    ManagerConfigResource,
    PlanStoreResource,
    SourcesResource,
)
from manager_pipeline.defs.stage import APPLY_JOB, config_or_skip, current_event, failure_for, say
from manager_pipeline.destroy.inputs import recorded_source
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import PLAN_ID_TAG
from manager_pipeline.feedback import LocalReportSink, Outcome
from manager_pipeline.feedback.trigger_status import trigger_tags
from manager_pipeline.github.approvals import GitHubApprovals
from manager_pipeline.intake.dispatch import INBOX_ID_TAG, REF_TAG
from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.pipeline import check_apply, current_variables, gate
from manager_pipeline.pipeline.gate import ApplyRefused
from manager_pipeline.plans import Plan, PlanState
from manager_pipeline.defs.audit import audit
from manager_pipeline.plans.waiting import FULL_POLL_S, ApprovalCursor, approval_tick
from manager_pipeline.redact import redact_text
from manager_pipeline.terraform import (
    Workdir,
    module_digest,
)


@op(
    description="Decide what the plan becomes: applied now, awaiting approval, or a preview.",
    out={"approved": Out(Plan, is_required=False), "held": Out(Outcome, is_required=False)},
)
def approval_gate(
    context: OpExecutionContext,
    inbox: InboxResource,
    plans: PlanStoreResource,
    request: ResolvedRequest,
    workdir: Workdir,
    plan: Plan,
):
    # The policy the run started under, not whatever manager.yaml says by now.
    event, policy = request.event, request.policy
    superseded_by = None
    inbox_id, ref_key = context.run.tags.get(INBOX_ID_TAG), context.run.tags.get(REF_TAG)
    if plan.repo and inbox_id and ref_key:
        # A newer delivery for this branch or pull request came in while this run was going.
        # A trigger repository's deliveries are stored under the application repository.
        repo = event.trigger_repo or plan.repo
        superseded_by = inbox.inbox().newer_delivery(repo, ref_key, event.source, int(inbox_id))
    key = context.partition_key
    try:
        result = gate(policy, event, plan, workdir, plans.plans(), superseded_by)
    except ManagerError as exc:
        context.log_event(plan_materialization(plan, PlanState.REFUSED.value, str(exc)))
        context.log_event(asset_check(APPROVED, key, False, str(exc)))
        raise failure_for(exc) from None
    decision = result.decision
    say(context, "gate", decision.reason)
    # The partition's newest plan, as the gate left it: the asset's partition shows it, amber while it waits.
    context.log_event(plan_materialization(plan, decision.state.value, decision.reason))
    waiting = decision.state is PlanState.AWAITING
    context.log_event(asset_check(APPROVED, key, not waiting, decision.reason, warn=True))
    metadata = {"decision": decision.state.value, "reason": decision.reason}
    if result.approved is not None:
        yield Output(result.approved, "approved", metadata=metadata)
        return
    yield Output(result.held, "held", metadata=metadata)


@op(description="Load the saved plan the run was started for (tag manager/plan-id).")
def load_plan(context: OpExecutionContext, plans: PlanStoreResource) -> Plan:
    event = current_event(context)
    plan_id = context.run.tags.get(PLAN_ID_TAG)
    if not plan_id:
        raise Failure("an apply run needs the tag manager/plan-id: the plan to apply")
    try:
        plan = plans.plans().get(plan_id)
    except ManagerError as exc:
        raise Failure(str(exc)) from None
    if (plan.source, plan.environment) != (event.source, event.environment):
        raise Failure(f"plan {plan_id} is for {plan.source}/{plan.environment}, not this partition")
    # A plan a trigger repository's push made reports to that repository's commit too.
    planned_by = context.instance.get_run_by_id(plan.run_id) if plan.run_id else None
    inherited = trigger_tags(planned_by.tags) if planned_by else {}
    if inherited:
        context.instance.add_run_tags(context.run_id, inherited)
    say(context, "load", f"plan {plan_id}: {plan.summary.line()} (commit {(plan.sha or '?')[:12]})")
    context.add_output_metadata({"plan_id": plan_id, "summary": plan.summary.line()})
    return plan


@op(
    description="Refuse the apply unless the plan is untouched, newest, current, approved and young enough.",
    out={"request": Out(ResolvedRequest), "deploy_config": Out(DeployConfig)},
)
def check_plan(
    context: OpExecutionContext,
    manager: ManagerConfigResource,
    sources: SourcesResource,
    plans: PlanStoreResource,
    github: GitHubResource,
    feedback: FeedbackResource,
    plan: Plan,
):
    store = plans.plans()
    try:
        # The one read of manager.yaml in an apply run. A destroy plan is judged as one, whatever the run's
        # tags say, and its source may have left manager.yaml.
        event = replace(current_event(context), destroy=plan.destroy)
        request = ResolvedRequest.resolve(manager.load(), event, recorded_source(plan) if plan.destroy else None)
    except ManagerError as exc:
        raise failure_for(exc) from None
    approvals = GitHubApprovals(github.client()) if github.configured and plan.repo else None
    # A destroy removes what its variables built; what the source holds now (if anything) does not matter.
    current = (
        (None, None)
        if plan.destroy
        else current_variables(
            sources.fetch, request.source, request.environments, plan.source, plan.environment, plan.branch
        )
    )
    try:
        checked = check_apply(
            plan,
            request.policy,
            store,
            approvals,
            module_digest(request.terraform_dir),
            current,
            audit=lambda plan, new: audit(context.instance, plan, new),
        )
    except ApplyRefused as exc:
        context.log_event(asset_check(APPROVED, context.partition_key, False, str(exc)))
        now = store.get(plan.plan_id)
        context.log_event(plan_materialization(now, now.state.value, "apply refused: " + "; ".join(exc.reasons)))
        if plan.run_id:
            here = f"run [{context.run_id[:8]}]({feedback.run_url(context.run_id)})"
            reasons = "; ".join(exc.reasons)
            LocalReportSink(Path(feedback.reports_dir)).note(
                plan.source, plan.environment, plan.run_id, f"an apply of plan `{plan.plan_id}` was refused in {here}: {reasons}"
            )
        raise Failure(redact_text(str(exc)), metadata={"reasons": MetadataValue.json(exc.reasons)}) from None
    approvers = ", ".join(checked.approvers) or "policy"
    context.log_event(asset_check(APPROVED, context.partition_key, True, f"approved by {approvers}"))
    say(context, "check", f"plan {plan.plan_id} approved by {approvers}; applying")
    yield Output(request, "request", metadata={"manager.yaml sha256": request.manager_digest})
    yield Output(checked.deploy_config, "deploy_config", metadata={"approvers": MetadataValue.json(checked.approvers)})


def approval_sensor(interval: int = 1, full_poll_s: float = FULL_POLL_S):
    @sensor(
        name="approve_plans",
        job_name=APPLY_JOB,
        minimum_interval_seconds=interval,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Reads approvals of plans waiting for them (pull request reviews, `/approve <env>` comments, "
            "console approvals), records each decision, and starts the apply of a plan once its policy is met. "
            f"Every {full_poll_s:g} s it asks GitHub about every waiting plan; in between, only about the plans "
            "of pull requests a webhook said were reviewed or commented `/approve` on."
        ),
    )
    def approve_plans(
        context: SensorEvaluationContext,
        manager: ManagerConfigResource,
        plans: PlanStoreResource,
        github: GitHubResource,
    ):
        config = config_or_skip(manager)
        if isinstance(config, SkipReason):
            return config
        # The notes live in the manager's database, beside the plans (the inbox's table).
        inbox = Inbox(plans.database_url)
        notes = inbox.noted_approvals()
        tick = approval_tick(
            plans.plans(),
            config,
            notes,
            ApprovalCursor.from_json(context.cursor),
            approvals_for=lambda: GitHubApprovals(github.client()) if github.configured else None,
            audit=lambda plan, new: audit(context.instance, plan, new),
            full_poll_s=full_poll_s,
        )
        inbox.approvals_looked_at([note.id for note in notes])
        if notes:
            pairs = sorted({f"{note.repo}#{note.pr}" for note in notes})
            context.log.info(
                f"approval notes for {', '.join(pairs)}: reviewed {tick.reviewed} waiting plan(s)"
                + (" (full poll)" if tick.full else "")
            )
        context.update_cursor(tick.cursor.to_json())
        if tick.problems:
            context.log.warning("; ".join(tick.problems))
        if not tick.to_apply:
            return SkipReason(tick.summary())
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=f"apply:{plan.plan_id}",
                    partition_key=partition_key(plan.source, plan.environment),
                    tags=plan.apply_tags("approval"),
                )
                for plan in tick.to_apply
            ]
        )

    return approve_plans
