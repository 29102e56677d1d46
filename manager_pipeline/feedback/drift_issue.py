"""The drift issue of a partition on its source repository: outbox items, and how delivery sends them.

One open issue per source and environment, found again by its hidden marker: a drift check that
finds drift opens it or updates its body; a check that finds none, or a successful apply, closes it
with a comment. Both go through the outbox (a GitHub outage loses nothing) and both are safe to
repeat: an update to the same body writes nothing, a close finds no open issue the second time.
A repository with issues turned off (GitHub answers 410) gets none; the drift stays in the UI.
"""

from __future__ import annotations

from typing import Any, Protocol

from manager_pipeline.drift import DriftCheck, issue_body, issue_marker, issue_title, resolved_comment
from manager_pipeline.feedback.outbox import FeedbackItem
from manager_pipeline.feedback.redact import redact
from manager_pipeline.github.client import GitHubError, Issue

OPENED = "drift_issue"
RESOLVED = "drift_resolved"
_ISSUES_OFF = 410


class GitHubIssues(Protocol):
    """What the drift issue needs of ``GitHubClient``."""

    def open_issues(self, repo: str) -> list[Issue]: ...
    def create_issue(self, repo: str, title: str, body: str) -> int: ...
    def edit_issue(self, repo: str, number: int, body: str | None = None, state: str | None = None) -> None: ...
    def create_issue_comment(self, repo: str, number: int, body: str) -> None: ...


def opened(repo: str, check: DriftCheck, run_url: str) -> FeedbackItem:
    """Open (or update) the partition's drift issue with what the check found."""
    payload = {
        "marker": issue_marker(check.source, check.environment),
        "title": issue_title(check.source, check.environment),
        "body": issue_body(check, run_url),
    }
    return FeedbackItem(repo, OPENED, redact(payload))


def resolved(repo: str, source: str, environment: str, why: str, run_url: str) -> FeedbackItem:
    """Close the partition's drift issue, if one is open, saying why."""
    payload = {"marker": issue_marker(source, environment), "comment": resolved_comment(why, run_url)}
    return FeedbackItem(repo, RESOLVED, redact(payload))


def _open_issue(github: GitHubIssues, repo: str, marker: str) -> Issue | None:
    return next((issue for issue in github.open_issues(repo) if marker in issue.body), None)


def send(github: GitHubIssues, repo: str, kind: str, payload: dict[str, Any]) -> None:
    try:
        issue = _open_issue(github, repo, payload["marker"])
        if kind == OPENED:
            if issue is None:
                github.create_issue(repo, payload["title"], payload["body"])
            elif issue.body != payload["body"]:
                github.edit_issue(repo, issue.number, body=payload["body"])
        elif issue is not None:
            github.create_issue_comment(repo, issue.number, payload["comment"])
            github.edit_issue(repo, issue.number, state="closed")
    except GitHubError as exc:
        if exc.status != _ISSUES_OFF:
            raise
