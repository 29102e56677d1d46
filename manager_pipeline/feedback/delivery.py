"""Deliver what the outbox holds, in order per repository, each item once.

Every write is safe to repeat: a status is the latest for its context, a plan comment is
found again by its hidden marker and edited in place, a notification carries a marker and
is not posted twice. That is what lets the outbox retry after an outage without
duplicating anything. GitHub itself is reached through ``GitHubClient`` (``github/client.py``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Protocol

from manager_pipeline.feedback import checks, issues
from manager_pipeline.feedback import outbox as outbox_clock
from manager_pipeline.feedback.outbox import FeedbackItem, Outbox
from manager_pipeline.github.client import Comment
from manager_pipeline.redact import redact

_PART = re.compile(r"<!-- manager-pipeline:(?P<key>[^ ]+) part (?P<index>\d+)/(?P<count>\d+)")


class GitHubWrites(issues.GitHubIssues, checks.GitHubChecks, Protocol):
    """What delivery needs of ``GitHubClient`` (the drift issue's needs included)."""

    def create_status(
        self, repo: str, sha: str, context: str, state: str, description: str, target_url: str
    ) -> None: ...
    def issue_comments(self, repo: str, number: int) -> list[Comment]: ...
    def commit_comments(self, repo: str, sha: str) -> list[Comment]: ...
    def create_issue_comment(self, repo: str, number: int, body: str) -> None: ...
    def create_commit_comment(self, repo: str, sha: str, body: str) -> None: ...
    def edit_issue_comment(self, repo: str, comment_id: int, body: str) -> None: ...
    def delete_issue_comment(self, repo: str, comment_id: int) -> None: ...
    def pulls_of_commit(self, repo: str, sha: str) -> list[int]: ...


def part_index(body: str, key: str) -> int | None:
    match = _PART.search(body.split("\n", 1)[0])
    return int(match["index"]) if match and match["key"] == key else None


def upsert_comment(github: GitHubWrites, repo: str, pr: int, key: str, parts: list[str]) -> None:
    """One comment per part, found by ``key`` among the manager's own comments and edited in place;
    surplus old parts removed."""
    existing: dict[int, Comment] = {}
    for comment in github.issue_comments(repo, pr):
        index = part_index(comment.body, key) if issues.by_manager(github, comment.login) else None
        if index is not None:
            existing.setdefault(index, comment)
    for index, body in enumerate(parts, start=1):
        comment = existing.pop(index, None)
        if comment is None:
            github.create_issue_comment(repo, pr, body)
        elif comment.body != body:
            github.edit_issue_comment(repo, comment.id, body)
    for comment in existing.values():
        github.delete_issue_comment(repo, comment.id)


def post_once(github: GitHubWrites, repo: str, pr: int | None, sha: str, marker: str, body: str) -> None:
    """A comment on the pull request (or the commit) unless one of the manager's own with ``marker`` is there."""
    if pr is not None:
        if not any(marker in c.body and issues.by_manager(github, c.login) for c in github.issue_comments(repo, pr)):
            github.create_issue_comment(repo, pr, body)
        return
    if not any(marker in c.body and issues.by_manager(github, c.login) for c in github.commit_comments(repo, sha)):
        github.create_commit_comment(repo, sha, body)


def send(github: GitHubWrites, item: FeedbackItem) -> str | None:
    """Deliver one item; a line when it was delivered otherwise than asked (a check run GitHub refused,
    sent as a commit status), else None."""
    # Items are redacted when they are made; this process may know more secrets (its own token).
    payload = redact(item.payload)
    if item.kind == checks.KIND:
        return checks.send(github, FeedbackItem(item.repo, item.kind, payload))
    if item.kind == "status":
        github.create_status(
            item.repo,
            payload["sha"],
            payload["context"],
            payload["state"],
            payload["description"],
            payload["target_url"],
        )
    elif item.kind == "comment":
        # The pull request is looked up when the comment is sent: the run may not have known it.
        prs = [payload["pr"]] if payload.get("pr") is not None else github.pulls_of_commit(item.repo, payload["sha"])
        for pr in prs:
            upsert_comment(github, item.repo, pr, payload["key"], payload["parts"])
    elif item.kind == "notification":
        pr = payload.get("pr")
        if pr is None:
            prs = github.pulls_of_commit(item.repo, payload["sha"])
            pr = prs[0] if prs else None
        post_once(github, item.repo, pr, payload["sha"], payload["marker"], payload["body"])
    elif item.kind in (issues.OPENED, issues.RESOLVED):
        issues.send(github, item.repo, item.kind, payload)
    else:
        raise ValueError(f"unknown feedback kind {item.kind!r}")
    return None


@dataclass
class DeliveryReport:
    delivered: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    waiting: list[int] = field(default_factory=list)
    dead: list[int] = field(default_factory=list)  # failed for the last time in this pass: parked
    # item id -> how it was delivered otherwise than asked (a check run refused: sent as a status)
    fallbacks: dict[int, str] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return len(self.failed) + len(self.waiting)


def deliver(
    outbox: Outbox, github: GitHubWrites, deadline_s: float = 60.0, wait_for_others_s: float = 5.0
) -> DeliveryReport:
    """Send what is due, repository by repository in turn, each repository's items in order.

    An item backing off (or held by another deliverer) holds back the rest of its repository;
    a failure sets the item's next attempt and holds back the rest of its repository; an item
    failing its last attempt is parked as dead and holds back nothing. Two runs of one repository
    finish together: one that finds an item held by the other waits (up to ``wait_for_others_s``)
    for it to be sent and goes on, rather than leaving its own items to the delivery sensor."""
    report = DeliveryReport()
    stop = time.monotonic() + deadline_s
    patience = time.monotonic() + min(wait_for_others_s, deadline_s)
    while True:
        held = _pass(outbox, github, stop, report)
        if not held or time.monotonic() >= patience:
            return report
        time.sleep(0.1)


def _pass(outbox: Outbox, github: GitHubWrites, stop: float, report: DeliveryReport) -> bool:
    """One pass over what is due; whether an item was held back only by another deliverer's lease."""
    blocked: set[str] = set()
    report.waiting = []
    held = False
    for stored in outbox.due():
        repo = stored.item.repo
        if repo in blocked or time.monotonic() > stop or not stored.due(outbox_clock.now()):
            # Held by another deliverer's live lease (not backing off, not behind a failure here).
            held = held or (repo not in blocked and stored.state == "delivering")
            blocked.add(repo)
            report.waiting.append(stored.id)
            continue
        if not outbox.claim(stored.id):
            held = True  # another deliverer took it between due() and now
            blocked.add(repo)
            report.waiting.append(stored.id)
            continue
        try:
            fallback = send(github, stored.item)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the item for a later attempt
            error = redact(f"{type(exc).__name__}: {exc}")
            if outbox.failed(stored.id, error) == "dead":
                report.dead.append(stored.id)  # parked: it holds back nothing, not even in this pass
            else:
                report.failed[stored.id] = error
                blocked.add(repo)
        else:
            outbox.delivered(stored.id, note=fallback)
            report.delivered.append(stored.id)
            if fallback:
                report.fallbacks[stored.id] = fallback
    return held
