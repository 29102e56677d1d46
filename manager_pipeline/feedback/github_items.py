"""What a run tells a GitHub repository, as outbox items (plain data, no GitHub calls).

Every text is redacted before it is cut (a status description to 140 characters, a plan to
the room of ten comments, a comment into parts, an over-long line), and every item once more
as a whole (``_clean``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from manager_pipeline.feedback import checks, issues
from manager_pipeline.feedback.comments import COMMENT_LIMIT, MAX_PARTS, fit_plan, split_comment
from manager_pipeline.feedback.outbox import FeedbackItem
from manager_pipeline.feedback.report import format_value, render_report
from manager_pipeline.feedback.slack import NotifySettings
from manager_pipeline.github.client import STATUS_DESCRIPTION_LIMIT
from manager_pipeline.markdown import inline_code
from manager_pipeline.outcome import Outcome, OutcomeStatus
from manager_pipeline.redact import known_secrets, redact

STATUS_CONTEXT = "manager-pipeline/{environment}"
_STATE = {
    OutcomeStatus.APPLIED: "success",
    OutcomeStatus.NO_CHANGES: "success",
    OutcomeStatus.PLAN_ONLY: "success",
    OutcomeStatus.AWAITING_APPROVAL: "pending",
    OutcomeStatus.SUPERSEDED: "success",
    OutcomeStatus.FAILED: "failure",
}


def _secrets(extra_secrets: Sequence[str] = ()) -> list[str]:
    return known_secrets(extra_secrets)


def _clean(item: FeedbackItem, extra_secrets: Sequence[str] = ()) -> FeedbackItem:
    return FeedbackItem(item.repo, item.kind, redact(item.payload, _secrets(extra_secrets)))


def status_description(description: str, extra_secrets: Sequence[str] = ()) -> str:
    """Redacted first, then cut to GitHub's limit: a secret across the cut cannot leave as a prefix."""
    description = redact(description, _secrets(extra_secrets))
    if len(description) > STATUS_DESCRIPTION_LIMIT:
        description = description[: STATUS_DESCRIPTION_LIMIT - 1] + "…"
    return description


def status(
    repo: str,
    sha: str,
    environment: str,
    state: str,
    description: str,
    target_url: str,
    extra_secrets: Sequence[str] = (),
    context: str | None = None,
) -> FeedbackItem:
    """``context``: default ``manager-pipeline/<environment>``."""
    return _clean(
        FeedbackItem(
            repo,
            "status",
            {
                "sha": sha,
                "context": context or STATUS_CONTEXT.format(environment=environment),
                "state": state,
                "description": status_description(description, extra_secrets),
                "target_url": target_url,
            },
        ),
        extra_secrets,
    )


def queued(repo: str, sha: str, environment: str, runs_url: str, context: str | None = None) -> FeedbackItem:
    """Said by the receiver the moment a delivery is stored: a run for this environment will start."""
    description = f"Queued: a {environment} run starts shortly"
    return status(repo, sha, environment, "pending", description, runs_url, context=context)


def started(repo: str, sha: str, environment: str, run_url: str, context: str | None = None) -> FeedbackItem:
    return status(repo, sha, environment, "pending", f"Planning {environment}…", run_url, context=context)


def _description(outcome: Outcome) -> str:
    plan = outcome.plan
    summary = ("DESTROY, " if plan.destroy else "") + plan.summary.line().rstrip(".") if plan else ""
    if outcome.status is OutcomeStatus.FAILED:
        first = (outcome.error or "").strip().splitlines()
        return f"Failed at {outcome.failed_stage}: {first[0] if first else 'see the run'}"
    if outcome.status is OutcomeStatus.APPLIED:
        return f"Applied plan {plan.plan_id}: {summary}" if plan else "Applied"
    if outcome.status is OutcomeStatus.NO_CHANGES:
        return "No changes"
    if outcome.status is OutcomeStatus.SUPERSEDED:
        return "Superseded by a newer change; not applied"
    if outcome.status is OutcomeStatus.AWAITING_APPROVAL:
        return f"Awaiting approval: plan {plan.plan_id} ({summary})" if plan else "Awaiting approval"
    return f"Plan {plan.plan_id}: {summary}" if plan else "Planned"


def outcome_status(
    repo: str, sha: str, outcome: Outcome, run_url: str, extra_secrets: Sequence[str] = (), context: str | None = None
) -> FeedbackItem:
    """The commit status a finished (or failed) run leaves."""
    state, description = _STATE[outcome.status], _description(outcome)
    return status(repo, sha, outcome.event.environment, state, description, run_url, extra_secrets, context)


@dataclass(frozen=True)
class Target:
    """Where a run's comments go: the repository, its pull request (if any) and commit, and the run."""

    repo: str
    pr: int | None
    sha: str
    run_id: str
    run_url: str


def plan_comment(target: Target, outcome: Outcome, extra_secrets: Sequence[str] = ()) -> FeedbackItem:
    """The sticky plan comment of this pull request and environment (split into parts if long).

    Redacted before each cut: the plan before it is shortened, the body before it is split."""
    repo, pr, sha, run_id, run_url = target.repo, target.pr, target.sha, target.run_id, target.run_url
    event = outcome.event
    key = f"plan:{event.source}:{event.environment}"
    secrets = _secrets(extra_secrets)
    plan_text = None
    if outcome.plan is not None and outcome.plan.text_file.exists():
        room = MAX_PARTS * (COMMENT_LIMIT - 400) - len(
            render_report(outcome, run_id, run_url, plan_text="", secrets=secrets)
        )
        plan_text = fit_plan(outcome.plan.text(), room, run_url, secrets)
    body = render_report(outcome, run_id, run_url, plan_text=plan_text, secrets=secrets)
    parts = split_comment(body, key, secrets=secrets)
    return _clean(FeedbackItem(repo, "comment", {"pr": pr, "sha": sha, "key": key, "parts": parts}), extra_secrets)


def summary_comment(repo: str, pr: int, key: str, markdown: str) -> FeedbackItem:
    """A sticky comment of the pull request found by ``key`` (split into parts if long), e.g. the blast radius
    of a module change on the manager's own pull request."""
    return _clean(FeedbackItem(repo, "comment", {"pr": pr, "sha": None, "key": key, "parts": split_comment(markdown, key)}))


def notification(target: Target, outcome: Outcome, extra_secrets: Sequence[str] = ()) -> FeedbackItem:
    """The success or failure note of a run, once per run and outcome (its marker)."""
    repo, pr, sha, run_id, run_url = target.repo, target.pr, target.sha, target.run_id, target.run_url
    event = outcome.event
    secrets = _secrets(extra_secrets)
    marker = f"<!-- manager-pipeline:notify:{run_id}:{outcome.status.value} -->"
    if outcome.status is OutcomeStatus.FAILED:
        lines = [
            marker,
            f"### ❌ {event.source} / {event.environment}: failed at {outcome.failed_stage}",
            "",
            "```",
            redact((outcome.error or "").strip(), secrets),
            "```",
        ]
    else:
        lines = [marker, f"### ✅ {event.source} / {event.environment}: {outcome.headline}"]
        if outcome.outputs:
            lines += ["", "| Output | Value |", "|---|---|"]
            lines += [
                f"| {inline_code(redact(name, secrets))} | {inline_code(redact(format_value(value), secrets))} |"
                for name, value in outcome.outputs.items()
            ]
    lines += ["", f"[Run {run_id[:8]} in the Dagster UI]({run_url})"]
    return _clean(
        FeedbackItem(repo, "notification", {"pr": pr, "sha": sha, "marker": marker, "body": "\n".join(lines)}),
        extra_secrets,
    )


def items_for(
    outcome: Outcome,
    repo: str,
    sha: str,
    pr: int | None,
    run_id: str,
    run_url: str,
    notify: NotifySettings | None = None,
    check_runs: bool = False,
) -> list[FeedbackItem]:
    """Everything a finished (or failed) run tells its repository, in the order to send it.

    ``check_runs``: the manager is a GitHub App; its run's check run is completed instead of a status
    being set (``feedback/checks.py``; the status is sent if GitHub refuses it)."""
    notify = notify or NotifySettings()
    items = []
    if outcome.plan is not None:
        # Posted on the pull request of the event, or on those of the commit (none: nothing). First:
        # it is what a person waits for, and GitHub asks for a second between writes (PyGithub keeps it).
        items.append(plan_comment(Target(repo, pr, sha, run_id, run_url), outcome, notify.secrets))
    if check_runs:
        status = outcome_status(repo, sha, outcome, run_url, notify.secrets)
        items.append(checks.completed(status, outcome, run_id, run_url, notify.secrets))
    else:
        items.append(outcome_status(repo, sha, outcome, run_url, notify.secrets))
    if notify.wants(outcome):
        items.append(notification(Target(repo, pr, sha, run_id, run_url), outcome, notify.secrets))
    if outcome.status is OutcomeStatus.APPLIED:
        # An apply leaves the resources as declared: the partition's open drift issue, if any, is closed.
        applied = f"plan {outcome.plan.plan_id} was applied" if outcome.plan else "an apply succeeded"
        event = outcome.event
        items.append(issues.drift_resolved(repo, event.source, event.environment, applied, run_url))
    return [_clean(item, notify.secrets) for item in items]
