"""A durable outbox for feedback to GitHub: written first, delivered when GitHub answers.

Items of one repository are delivered in the order they were written; an item that fails
blocks the later ones of its repository while it waits for its next attempt, so a stale
status never overtakes a newer one. A failed item is tried again after an exponentially
growing delay (``next_attempt_at``); after ``max_attempts`` it is parked as ``dead`` with its
last error, where it no longer blocks its repository, and stays visible
(``manager-pipeline feedback --dead``) until an operator re-queues it
(``manager-pipeline feedback --retry ID``). Work is picked per repository (``due``): the
first items of every repository before the second of any, so one repository's backlog
cannot starve the others. An item is claimed before delivery (with a lease, in case the
claimer dies), so two deliverers never send the same item at once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update

from manager_pipeline.db.migrate import upgraded_engine
from manager_pipeline.db.tables import outbox_table
from manager_pipeline.redact import redact_text

LEASE_SECONDS = 120.0
# Attempts before an item is parked as dead, and the delays between them: 15 s doubling up to an
# hour, so an item is given up after about four hours of failing (a GitHub outage included).
MAX_ATTEMPTS = 12
BACKOFF_SECONDS = 15.0
MAX_BACKOFF_SECONDS = 3600.0
# Items read per repository per delivery pass, and at most in all.
PER_REPO = 50
MAX_ITEMS = 5000
LIVE = ("pending", "delivering")

def now() -> float:
    """The outbox's clock (a function so tests can move it)."""
    return time.time()


@dataclass(frozen=True)
class FeedbackItem:
    """One thing to tell a repository: a status, a sticky comment or a notification."""

    repo: str
    kind: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class StoredItem:
    id: int
    item: FeedbackItem
    state: str
    attempts: int
    last_error: str | None
    claimed_until: float | None
    next_attempt_at: float | None = None
    created_at: float | None = None
    run_id: str | None = None

    def due(self, at: float) -> bool:
        """Whether a deliverer may try it at ``at`` (not backing off, not held by a live lease)."""
        if self.state == "pending":
            return self.next_attempt_at is None or self.next_attempt_at <= at
        return self.state == "delivering" and (self.claimed_until or 0) < at


def _stored(row) -> StoredItem:
    return StoredItem(
        id=row["id"],
        item=FeedbackItem(row["repo"], row["kind"], json.loads(row["payload"])),
        state=row["state"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        claimed_until=row["claimed_until"],
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        run_id=row["run_id"],
    )


class Outbox:
    def __init__(
        self,
        url: str,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_s: float = BACKOFF_SECONDS,
        max_backoff_s: float = MAX_BACKOFF_SECONDS,
    ):
        self.engine = upgraded_engine(url)
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt: doubling, capped."""
        return min(self.max_backoff_s, self.backoff_s * 2 ** max(0, attempts - 1))

    def add(self, items: list[FeedbackItem], run_id: str | None = None) -> list[int]:
        ids = []
        with self.engine.begin() as connection:
            for item in items:
                result = connection.execute(
                    insert(outbox_table).values(
                        created_at=time.time(),
                        repo=item.repo,
                        kind=item.kind,
                        payload=json.dumps(item.payload),
                        run_id=run_id,
                        state="pending",
                        attempts=0,
                    )
                )
                ids.append(result.inserted_primary_key[0])
        return ids

    def undelivered(self, limit: int = 1000) -> list[StoredItem]:
        """Items still to deliver (pending or being delivered; not dead), oldest first."""
        query = (
            select(outbox_table).where(outbox_table.c.state.in_(LIVE)).order_by(outbox_table.c.id).limit(limit)
        )
        with self.engine.connect() as connection:
            return [_stored(row) for row in connection.execute(query).mappings().all()]

    def due(self, per_repo: int = PER_REPO, limit: int = MAX_ITEMS) -> list[StoredItem]:
        """Live items picked per repository, in round-robin order: the oldest item of every
        repository, then the second of each, ...; within a repository, oldest first.

        Items backing off are included (they hold back the later ones of their repository);
        dead ones are not (they no longer do)."""
        rank = func.row_number().over(partition_by=outbox_table.c.repo, order_by=outbox_table.c.id).label("rank")
        ranked = select(outbox_table, rank).where(outbox_table.c.state.in_(LIVE)).subquery()
        query = select(ranked).where(ranked.c.rank <= per_repo).order_by(ranked.c.rank, ranked.c.id).limit(limit)
        with self.engine.connect() as connection:
            return [_stored(row) for row in connection.execute(query).mappings().all()]

    def items(self, state: str | None = None, limit: int = 1000) -> list[StoredItem]:
        """Items (of ``state``, or every one not delivered), oldest first."""
        query = select(outbox_table).order_by(outbox_table.c.id).limit(limit)
        query = query.where(outbox_table.c.state == state) if state else query.where(outbox_table.c.state != "delivered")
        with self.engine.connect() as connection:
            return [_stored(row) for row in connection.execute(query).mappings().all()]

    def get(self, item_id: int) -> StoredItem | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(outbox_table).where(outbox_table.c.id == item_id)).mappings().first()
        return _stored(row) if row else None

    def count_dead(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(
                select(func.count()).select_from(outbox_table).where(outbox_table.c.state == "dead")
            ).scalar_one()

    def claim(self, item_id: int) -> bool:
        at = now()
        with self.engine.begin() as connection:
            result = connection.execute(
                update(outbox_table)
                .where(outbox_table.c.id == item_id)
                .where(
                    (
                        (outbox_table.c.state == "pending")
                        & (outbox_table.c.next_attempt_at.is_(None) | (outbox_table.c.next_attempt_at <= at))
                    )
                    | ((outbox_table.c.state == "delivering") & (outbox_table.c.claimed_until < at))
                )
                .values(state="delivering", claimed_until=at + LEASE_SECONDS)
            )
        return result.rowcount == 1

    def delivered(self, item_id: int, note: str | None = None) -> None:
        """``note``: how it was delivered otherwise than asked (a check run sent as a status), kept as its
        last error (``checks_refused`` reads it)."""
        with self.engine.begin() as connection:
            connection.execute(
                update(outbox_table)
                .where(outbox_table.c.id == item_id)
                .values(
                    state="delivered",
                    delivered_at=time.time(),
                    attempts=outbox_table.c.attempts + 1,
                    last_error=redact_text(note)[:2000] if note else None,
                )
            )

    def first_fallback(self, run_id: str) -> int | None:
        """The id of the first item of run ``run_id`` delivered otherwise than asked (a refused check run)."""
        query = (
            select(func.min(outbox_table.c.id))
            .where(outbox_table.c.run_id == run_id, outbox_table.c.state == "delivered")
            .where(outbox_table.c.kind == "check_run", outbox_table.c.last_error.is_not(None))
        )
        with self.engine.connect() as connection:
            return connection.execute(query).scalar()

    def checks_refused(self, repo: str) -> tuple[float, str] | None:
        """(when, what GitHub said) if the last check run delivered to ``repo`` went as a commit status
        because GitHub refused it; None when it went as a check run (or none was sent)."""
        query = (
            select(outbox_table.c.delivered_at, outbox_table.c.last_error)
            .where(outbox_table.c.repo == repo, outbox_table.c.kind == "check_run", outbox_table.c.state == "delivered")
            .order_by(outbox_table.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return (row[0] or 0.0, row[1]) if row and row[1] else None

    def failed(self, item_id: int, error: str) -> str:
        """Record a failed attempt: the item backs off, or is parked as ``dead`` after the last one.

        Returns the item's new state. The error is redacted before it is cut and kept."""
        error = redact_text(error)[:2000]
        with self.engine.begin() as connection:
            attempts = connection.execute(
                select(outbox_table.c.attempts).where(outbox_table.c.id == item_id)
            ).scalar_one() + 1
            dead = attempts >= self.max_attempts
            connection.execute(
                update(outbox_table)
                .where(outbox_table.c.id == item_id)
                .values(
                    state="dead" if dead else "pending",
                    last_error=error,
                    claimed_until=None,
                    attempts=attempts,
                    next_attempt_at=None if dead else now() + self.delay(attempts),
                )
            )
        return "dead" if dead else "pending"

    def retry(self, item_id: int) -> bool:
        """Re-queue a dead (or backing-off) item for the next delivery pass, its attempts counted afresh."""
        with self.engine.begin() as connection:
            result = connection.execute(
                update(outbox_table)
                .where(outbox_table.c.id == item_id)
                .where(outbox_table.c.state.in_(("dead", "pending")))
                .values(state="pending", attempts=0, next_attempt_at=None, claimed_until=None)
            )
        return result.rowcount == 1
