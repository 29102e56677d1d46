"""The durable inbox: every accepted delivery, written before the receiver answers.

A delivery id is stored once (a repeated delivery is recognised, not stored twice). The
dispatch sensor reads the inbox in id order behind its cursor and notes on each row what
became of it: dispatched, superseded by a newer delivery, or ignored (and why).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Column, Float, Integer, String, Table, Text, insert, select, update
from sqlalchemy.exc import IntegrityError

from manager_pipeline.database import count_by, engine_for, metadata
from manager_pipeline.intake.webhooks import Delivery

inbox_table = Table(
    "webhook_inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(100), nullable=False, unique=True),
    Column("received_at", Float, nullable=False),
    Column("event", String(32), nullable=False),
    Column("action", String(32)),
    Column("repo", String(200), nullable=False),
    Column("sources", Text, nullable=False),
    Column("sha", String(64)),
    Column("branch", String(255)),
    Column("pr", Integer),
    Column("author", String(100)),
    Column("ref_key", String(300), nullable=False, index=True),
    Column("state", String(16), nullable=False, index=True),
    Column("note", Text),
)


@dataclass(frozen=True)
class InboxEvent:
    id: int
    delivery: Delivery
    state: str


_WRITE_LOCK = threading.Lock()
_INSERT = insert(inbox_table)


class Inbox:
    def __init__(self, url: str):
        self.engine = engine_for(url, inbox_table)

    def add(self, delivery: Delivery) -> tuple[int | None, bool]:
        """(row id, True) for a new delivery; (None, False) for one already in the inbox."""
        try:
            # One writer at a time in this process: SQLite's own busy wait would sleep instead.
            with _WRITE_LOCK, self.engine.begin() as connection:
                result = connection.execute(
                    insert(inbox_table).values(
                        delivery_id=delivery.delivery_id,
                        received_at=time.time(),
                        event=delivery.event,
                        action=delivery.action,
                        repo=delivery.repo,
                        sources=json.dumps(list(delivery.sources)),
                        sha=delivery.sha,
                        branch=delivery.branch,
                        pr=delivery.pr,
                        author=delivery.author,
                        ref_key=delivery.ref_key,
                        state="received",
                    )
                )
                return result.inserted_primary_key[0], True
        except IntegrityError:
            return None, False

    def after(self, cursor: int, limit: int) -> list[InboxEvent]:
        query = select(inbox_table).where(inbox_table.c.id > cursor).order_by(inbox_table.c.id).limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [
            InboxEvent(
                id=row["id"],
                delivery=Delivery(
                    delivery_id=row["delivery_id"],
                    event=row["event"],
                    action=row["action"],
                    repo=row["repo"],
                    sources=tuple(json.loads(row["sources"])),
                    sha=row["sha"],
                    branch=row["branch"],
                    pr=row["pr"],
                    author=row["author"],
                ),
                state=row["state"],
            )
            for row in rows
        ]

    def mark(self, notes: dict[int, tuple[str, str | None]]) -> None:
        """Set (state, note) on rows; called again with the same notes it changes nothing."""
        if not notes:
            return
        with self.engine.begin() as connection:
            for row_id, (state, note) in notes.items():
                connection.execute(update(inbox_table).where(inbox_table.c.id == row_id).values(state=state, note=note))

    def newer_delivery(self, repo: str, ref_key: str, source: str, after_id: int) -> str | None:
        """The id of a delivery newer than row ``after_id`` for the same source and branch or pull request."""
        query = (
            select(inbox_table.c.delivery_id, inbox_table.c.sources)
            .where(inbox_table.c.repo == repo, inbox_table.c.ref_key == ref_key, inbox_table.c.id > after_id)
            .order_by(inbox_table.c.id.desc())
        )
        with self.engine.connect() as connection:
            for delivery_id, sources in connection.execute(query):
                if source in json.loads(sources):
                    return delivery_id
        return None

    def states(self) -> dict[str, int]:
        return count_by(self.engine, inbox_table.c.state)
