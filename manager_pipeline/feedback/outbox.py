"""A durable outbox for feedback to GitHub: written first, delivered when GitHub answers.

Items of one repository are delivered in the order they were written; an item that fails
blocks the later ones of its repository until it goes through, so a stale status never
overtakes a newer one. An item is claimed before delivery (with a lease, in case the
claimer dies), so two deliverers never send the same item at once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Float, Integer, String, Table, Text, insert, select, update

from manager_pipeline.database import engine_for, metadata

LEASE_SECONDS = 120.0

outbox_table = Table(
    "feedback_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),
    Column("repo", String(200), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("run_id", String(64)),
    Column("state", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("claimed_until", Float),
    Column("delivered_at", Float),
)


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


class Outbox:
    def __init__(self, url: str):
        self.engine = engine_for(url, outbox_table)

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
        query = select(outbox_table).where(outbox_table.c.state != "delivered").order_by(outbox_table.c.id).limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [
            StoredItem(
                id=row["id"],
                item=FeedbackItem(row["repo"], row["kind"], json.loads(row["payload"])),
                state=row["state"],
                attempts=row["attempts"],
                last_error=row["last_error"],
                claimed_until=row["claimed_until"],
            )
            for row in rows
        ]

    def claim(self, item_id: int) -> bool:
        now = time.time()
        with self.engine.begin() as connection:
            result = connection.execute(
                update(outbox_table)
                .where(outbox_table.c.id == item_id)
                .where(
                    (outbox_table.c.state == "pending")
                    | ((outbox_table.c.state == "delivering") & (outbox_table.c.claimed_until < now))
                )
                .values(state="delivering", claimed_until=now + LEASE_SECONDS)
            )
        return result.rowcount == 1

    def delivered(self, item_id: int) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(outbox_table)
                .where(outbox_table.c.id == item_id)
                .values(state="delivered", delivered_at=time.time(), attempts=outbox_table.c.attempts + 1)
            )

    def failed(self, item_id: int, error: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(outbox_table)
                .where(outbox_table.c.id == item_id)
                .values(
                    state="pending", last_error=error[:2000], claimed_until=None, attempts=outbox_table.c.attempts + 1
                )
            )
