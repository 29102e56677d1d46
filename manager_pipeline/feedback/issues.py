"""Issues the manager keeps on a source repository: one open issue per hidden marker (a partition's
drift, say), opened or updated with a body, closed with a comment. Only an issue the manager opened
is its own (``by_manager``): anyone who can open an issue can type the marker. Both go through the outbox (a GitHub
outage loses nothing) and both are safe to repeat: an update to the same body writes nothing, a close
finds no open issue the second time. A repository with issues turned off (GitHub answers 410) gets none.
"""

from __future__ import annotations

from typing import Any, Protocol

from manager_pipeline.feedback.outbox import FeedbackItem
from manager_pipeline.github.client import GitHubError, Issue
from manager_pipeline.redact import redact, redact_text

# The outbox kinds (named for the first issue the manager kept: rows queued by an older manager still deliver).
OPENED = "drift_issue"
RESOLVED = "drift_resolved"
_ISSUES_OFF = 410


class GitHubIssues(Protocol):
    """What a kept issue needs of ``GitHubClient``."""

    def own_login(self) -> str: ...
    def open_issues(self, repo: str) -> list[Issue]: ...
    def create_issue(self, repo: str, title: str, body: str) -> int: ...
    def edit_issue(self, repo: str, number: int, body: str | None = None, state: str | None = None) -> None: ...
    def create_issue_comment(self, repo: str, number: int, body: str) -> None: ...


def partition_marker(kind: str, source: str, environment: str) -> str:
    """The hidden line that finds a partition's open issue of ``kind`` (``drift``) again."""
    return f"<!-- manager-pipeline {kind} {source}/{environment} -->"


def opened(repo: str, marker: str, title: str, body: str) -> FeedbackItem:
    """Open the issue ``marker`` finds (or update its body); ``body`` carries the marker."""
    return FeedbackItem(repo, OPENED, redact({"marker": marker, "title": title, "body": body}))


def resolved(repo: str, marker: str, comment: str) -> FeedbackItem:
    """Close the issue ``marker`` finds, if one is open, with ``comment``."""
    return FeedbackItem(repo, RESOLVED, redact({"marker": marker, "comment": comment}))


def drift_resolved(repo: str, source: str, environment: str, why: str, run_url: str) -> FeedbackItem:
    """Close the partition's drift issue, if one is open, saying why (a drift check found none, an apply)."""
    comment = redact_text(f"✅ No drift any more: {why}.\n\n[Run in the Dagster UI]({run_url})")
    return resolved(repo, partition_marker("drift", source, environment), comment)


def by_manager(github: GitHubIssues, login: str | None) -> bool:
    """Whether GitHub shows ``login`` (a comment's or an issue's writer) as the manager itself: a hidden
    marker is found only in what the manager wrote, never in a comment someone planted it in."""
    return login is not None and login.lower() == github.own_login().lower()


def _open_issue(github: GitHubIssues, repo: str, marker: str) -> Issue | None:
    return next(
        (issue for issue in github.open_issues(repo) if marker in issue.body and by_manager(github, issue.login)), None
    )


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
