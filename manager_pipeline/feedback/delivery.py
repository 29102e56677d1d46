"""Deliver what the outbox holds, in order per repository, each item once."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from manager_pipeline.feedback.outbox import FeedbackItem, Outbox


class Publisher(Protocol):
    def set_status(self, repo: str, sha: str, context: str, state: str, description: str, target_url: str) -> None: ...
    def upsert_comment(self, repo: str, pr: int, key: str, parts: list[str]) -> None: ...
    def post_once(self, repo: str, pr: int | None, sha: str, marker: str, body: str) -> None: ...
    def pull_requests(self, repo: str, sha: str) -> list[int]: ...


def send(publisher: Publisher, item: FeedbackItem) -> None:
    payload = item.payload
    if item.kind == "status":
        publisher.set_status(
            item.repo,
            payload["sha"],
            payload["context"],
            payload["state"],
            payload["description"],
            payload["target_url"],
        )
    elif item.kind == "comment":
        # The pull request is looked up when the comment is sent: the run may not have known it.
        prs = [payload["pr"]] if payload.get("pr") is not None else publisher.pull_requests(item.repo, payload["sha"])
        for pr in prs:
            publisher.upsert_comment(item.repo, pr, payload["key"], payload["parts"])
    elif item.kind == "notification":
        pr = payload.get("pr")
        if pr is None:
            prs = publisher.pull_requests(item.repo, payload["sha"])
            pr = prs[0] if prs else None
        publisher.post_once(item.repo, pr, payload["sha"], payload["marker"], payload["body"])
    else:
        raise ValueError(f"unknown feedback kind {item.kind!r}")


@dataclass
class DeliveryReport:
    delivered: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    waiting: list[int] = field(default_factory=list)

    @property
    def pending(self) -> int:
        return len(self.failed) + len(self.waiting)


def deliver(outbox: Outbox, publisher: Publisher, deadline_s: float = 60.0) -> DeliveryReport:
    """Send undelivered items oldest first; a failure holds back the rest of its repository."""
    report = DeliveryReport()
    blocked: set[str] = set()
    stop = time.monotonic() + deadline_s
    for stored in outbox.undelivered():
        repo = stored.item.repo
        if repo in blocked or time.monotonic() > stop or not outbox.claim(stored.id):
            blocked.add(repo)
            report.waiting.append(stored.id)
            continue
        try:
            send(publisher, stored.item)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the item for the next attempt
            outbox.failed(stored.id, f"{type(exc).__name__}: {exc}")
            report.failed[stored.id] = str(exc)
            blocked.add(repo)
        else:
            outbox.delivered(stored.id)
            report.delivered.append(stored.id)
    return report
