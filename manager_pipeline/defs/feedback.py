"""Stage: feedback - the report, GitHub and Slack at the end of a run, the failure hook, and the
sensor that delivers what GitHub did not take."""

from dataclasses import replace
from pathlib import Path

from dagster import (
    DefaultSensorStatus,
    Failure,
    HookContext,
    MetadataValue,
    OpExecutionContext,
    SensorEvaluationContext,
    SkipReason,
    failure_hook,
    op,
    sensor,
)

from manager_pipeline.config.request import ResolvedRequest
from manager_pipeline.contract import DeployConfig
from manager_pipeline.defs.resources import FeedbackResource, PlanStoreResource
from manager_pipeline.defs.stage import current_event, failure_annotations, redacted_metadata, say
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import OUTCOME_TAG
from manager_pipeline.feedback import LocalReportSink, Outcome, OutcomeStatus
from manager_pipeline.plans import PlanState
from manager_pipeline.feedback.slack import NotifySettings
from manager_pipeline.feedback.trigger_status import with_trigger
from manager_pipeline.redact import redact_text


@op(description="Report the outcome: run metadata in the UI, a report file, GitHub and Slack as the source asks.")
def feedback(
    context: OpExecutionContext,
    feedback: FeedbackResource,
    plans: PlanStoreResource,
    request: ResolvedRequest,
    deploy_config: DeployConfig,
    outcomes: list[Outcome],
) -> Outcome:
    # The trigger repository's commit as the run's tags hold it now (a release's is recorded on the way).
    tags = context.instance.get_run_by_id(context.run_id).tags
    outcome = replace(outcomes[0], event=with_trigger(outcomes[0].event, tags))
    repo = request.repo
    # Registers the webhook in this op's process too (ops may run in processes of their own).
    notify = NotifySettings.of(deploy_config.sections.get("notifications"), deploy_config.slack_webhook)
    published = feedback.publish(outcome, context.run_id, repo, outcome.event.pr, notify)
    # What came of the run, on its row in the Runs page (not a plain green "Success").
    context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: outcome.status.value})
    _note_earlier_reports(feedback, plans, outcome, context.run_id)
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


def _note_earlier_reports(feedback: FeedbackResource, plans: PlanStoreResource, outcome: Outcome, run_id: str) -> None:
    """The reports of earlier runs whose plan this run changed say so: the plan applied (or failed) by this
    apply run, and the waiting plans this run's newer plan superseded."""
    plan = outcome.plan
    if plan is None:
        return
    sink = LocalReportSink(Path(feedback.reports_dir))
    here = f"run [{run_id[:8]}]({feedback.run_url(run_id)})"
    if plan.run_id and plan.run_id != run_id:
        sink.note(plan.source, plan.environment, plan.run_id, f"plan `{plan.plan_id}` is {outcome.status.value} in {here}.")
    superseded = f"superseded by plan {plan.plan_id}"
    for older in plans.plans().list_plans(state=PlanState.SUPERSEDED, source=plan.source, environment=plan.environment):
        if older.note == superseded and older.run_id and older.run_id != run_id:
            line = f"plan `{older.plan_id}` was superseded by the newer plan `{plan.plan_id}` of {here}."
            sink.note(older.source, older.environment, older.run_id, line)


@failure_hook(required_resource_keys={"feedback", "manager", "plans"})
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
    # A plan its policy refused is reported with the plan: the pull request's comment shows both.
    made = []
    if context.op.name == "policy":
        try:
            store = context.resources.plans.plans()
            made = [p for p in store.list_plans(source=event.source, environment=event.environment)
                    if p.run_id == context.run_id]
        except ManagerError:
            made = []
    outcome = Outcome(
        event=event,
        status=OutcomeStatus.FAILED,
        headline=f"The run failed at {context.op.name}.",
        plan=made[-1] if made else None,
        failed_stage=context.op.name,
        error=message,
        annotations=failure_annotations(error),
    )
    try:
        repo = context.resources.manager.load().source(event.source).repo
    except ManagerError:
        repo = None
    context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: OutcomeStatus.FAILED.value})
    published = context.resources.feedback.publish(outcome, context.run_id, repo, event.pr)
    context.log.error(redact_text(f"failure report: {published.report_file}"))


def feedback_delivery_sensor(interval: int = 15):
    @sensor(
        name="deliver_feedback",
        minimum_interval_seconds=interval,
        default_status=DefaultSensorStatus.RUNNING,
        description="Sends the feedback that GitHub did not take during its run, in order, once each.",
    )
    def deliver_feedback(context: SensorEvaluationContext, feedback: FeedbackResource):
        outbox = feedback.outbox()
        dead = outbox.count_dead()
        # Dead items hold nothing back, but stay in sight (the sensor's tick in the UI) until re-queued.
        parked = f"; {dead} dead (`manager-pipeline feedback --dead` lists them)" if dead else ""
        if not outbox.undelivered(limit=1):
            return SkipReason("nothing waiting for GitHub" + parked)
        report = feedback.deliver()
        return SkipReason(f"sent {len(report.delivered)} feedback item(s); {report.pending} still waiting{parked}")

    return deliver_feedback
