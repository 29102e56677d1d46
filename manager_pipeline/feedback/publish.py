"""Where a run's outcome goes, in order: the report file, Slack when asked, then the GitHub items
(statuses or check runs, the sticky comment, notifications, a trigger commit's status) into the
outbox, which is tried at once; what GitHub does not take now waits there for the delivery sensor.

Plain functions over the sinks they are given: ``FeedbackResource`` (defs/resources.py) hands them its
outbox, its GitHub client's delivery and its URLs, and nothing here talks to the outside world by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from manager_pipeline.events import DispatchEvent
from manager_pipeline.feedback import checks, github_items, trigger_status
from manager_pipeline.feedback.delivery import DeliveryReport
from manager_pipeline.feedback.local import LocalReportSink
from manager_pipeline.feedback.outbox import Outbox
from manager_pipeline.feedback.report import render_report
from manager_pipeline.feedback.slack import NotifySettings, SlackSink, slack_message
from manager_pipeline.outcome import Outcome


@dataclass(frozen=True)
class Published:
    markdown: str
    report_file: Path
    delivery: DeliveryReport
    slack_problem: str | None = None


def publish(
    outcome: Outcome,
    run_id: str,
    run_url: str,
    *,
    reports: LocalReportSink,
    outbox: Outbox,
    deliver: Callable[[], DeliveryReport],
    repo: str | None,
    pr: int | None,
    notify: NotifySettings,
    check_runs: bool,
) -> Published:
    """Write the report; post to Slack when asked; queue a GitHub source's feedback and ``deliver`` it.

    Every text is redacted as it is made (``feedback/redact.py``): the caller registers the webhook of
    ``notify`` and the GitHub credentials first, so each sink masks them."""
    markdown = render_report(outcome, run_id, run_url, secrets=notify.secrets)
    path = reports.write(outcome.event.source, outcome.event.environment, run_id, markdown)
    slack_problem = None
    if notify.slack_webhook and notify.wants(outcome):
        message = slack_message(outcome, run_url, notify.slack_channel, notify.secrets)
        slack_problem = SlackSink().post(notify.slack_webhook, message)
    sha = outcome.sha or (outcome.plan.sha if outcome.plan else None) or outcome.event.sha
    items = (
        github_items.items_for(outcome, repo, sha, pr, run_id, run_url, notify, check_runs=check_runs)
        if repo and sha
        else []
    )
    # A run a trigger repository started tells the application commit too.
    items += trigger_status.items_for(outcome, run_url, notify.secrets)
    if not items:
        return Published(markdown, path, DeliveryReport(), slack_problem)
    outbox.add(items, run_id)
    return Published(markdown, path, deliver(), slack_problem)


def started(
    repo: str,
    sha: str,
    environment: str,
    run_id: str,
    run_url: str,
    *,
    outbox: Outbox,
    deliver: Callable[[], DeliveryReport],
    event: DispatchEvent | None,
    check_runs: bool,
) -> DeliveryReport:
    """The "in progress" feedback of a run's start: a check run (an App, ``event`` known) or a status,
    and the trigger commit's status when ``event`` came from a trigger repository."""
    if check_runs and event is not None:
        status = github_items.started(repo, sha, environment, run_url)
        items = [checks.started(status, event.source, environment, run_id, run_url, event.delivery_id)]
    else:
        items = [github_items.started(repo, sha, environment, run_url)]
    outbox.add(items + (trigger_status.started(event, run_url) if event else []), run_id)
    return deliver()
