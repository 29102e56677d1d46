"""The drift issue of a partition on its source repository: what a drift check opens, updates or closes
(kept through ``feedback/issues.py`` like every issue the manager keeps)."""

from __future__ import annotations

from manager_pipeline.drift.report import DriftCheck, issue_body, issue_marker, issue_title
from manager_pipeline.feedback import issues
from manager_pipeline.feedback.outbox import FeedbackItem

OPENED, RESOLVED = issues.OPENED, issues.RESOLVED


def opened(repo: str, check: DriftCheck, run_url: str) -> FeedbackItem:
    """Open (or update) the partition's drift issue with what the check found."""
    return issues.opened(
        repo,
        issue_marker(check.source, check.environment),
        issue_title(check.source, check.environment),
        issue_body(check, run_url),
    )


def resolved(repo: str, source: str, environment: str, why: str, run_url: str) -> FeedbackItem:
    """Close the partition's drift issue, if one is open, saying why."""
    return issues.drift_resolved(repo, source, environment, why, run_url)
