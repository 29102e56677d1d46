"""Stage: feedback - the report, GitHub and Slack at the end of a run, the failure hook, and the
sensor that delivers what GitHub did not take."""

from dataclasses import replace

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

from manager_pipeline.contract import DeployConfig
from manager_pipeline.defs.resources import FeedbackResource
from manager_pipeline.defs.stage import current_event, redacted_metadata, say
from manager_pipeline.errors import ManagerError
from manager_pipeline.feedback import Outcome, OutcomeStatus
from manager_pipeline.feedback.redact import redact_text
from manager_pipeline.feedback.slack import NotifySettings
from manager_pipeline.feedback.trigger_status import with_trigger
from manager_pipeline.request import ResolvedRequest


@op(description="Report the outcome: run metadata in the UI, a report file, GitHub and Slack as the source asks.")
def feedback(
    context: OpExecutionContext,
    feedback: FeedbackResource,
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
