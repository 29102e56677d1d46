"""The durable inbox: every accepted delivery, written before the receiver answers.

A delivery is stored once: by its id, and by what it asks for (``dedupe_key``: repository, ref
or pull request, commits), so a signed body replayed under a new id is a duplicate too.

A row's state says what became of it, and the dispatch sensor works on states, never on an id
cursor (on PostgreSQL a lower id can commit after a higher one):

- ``received``: pending; the sensor claims pending rows (``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL; on SQLite a transaction, and a state check on the write);
- ``waiting``: a pull request from a fork or an author without write access, until a
  maintainer's ``/plan`` comment (a row of its own, ``released``) makes it pending again;
- ``dispatching``: its run requests were handed to Dagster (``runs``); re-requested (the run key
  makes that harmless) until the runs are seen, then ``dispatched``;
- ``superseded`` by a newer delivery, or ``ignored``, with the reason in ``note``.

Possible approvals (a submitted approving review, a `/approve` comment) are not deliveries to
dispatch: each is an approval note, a row of ``approval_notes`` (stored once, by delivery id and by
review or comment), ``noted`` until the approval sensor has looked at the pull request's plans
(``done``). A note is never an approval: the sensor asks GitHub.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from manager_pipeline.db.engine import count_by
from manager_pipeline.db.migrate import upgraded_engine
from manager_pipeline.db.tables import inbox_table, notes_table
from manager_pipeline.intake.webhooks import ApprovalNote, Delivery

NOTED, LOOKED = "noted", "done"

PENDING, WAITING, DISPATCHING, DISPATCHED, RELEASED, IGNORED = (
    "received",
    "waiting",
    "dispatching",
    "dispatched",
    "released",
    "ignored",
)

# row id -> (state, note) or (state, note, [(source, environment), ...] requested)
Marks = dict[int, tuple]


@dataclass(frozen=True)
class NotedApproval:
    """An approval note not looked at yet: its row id and what it names."""

    id: int
    repo: str
    pr: int
    sha: str | None
    received_at: float


@dataclass(frozen=True)
class InboxEvent:
    id: int
    delivery: Delivery
    state: str
    note: str | None = None
    runs: tuple[tuple[str, str], ...] = ()


def _sources_json(delivery: Delivery) -> str:
    """The row's `sources`: a list of names; with the one environment a delivery plans, an object."""
    if delivery.environment is None:
        return json.dumps(list(delivery.sources))
    return json.dumps({"sources": list(delivery.sources), "environment": delivery.environment})


def _sources(text: str) -> tuple[str, ...]:
    value = json.loads(text)
    return tuple(value["sources"] if isinstance(value, dict) else value)


def _environment(text: str) -> str | None:
    value = json.loads(text)
    return value.get("environment") if isinstance(value, dict) else None


_WRITE_LOCK = threading.Lock()
_INSERT = insert(inbox_table)


def _event(row) -> InboxEvent:
    return InboxEvent(
        id=row["id"],
        delivery=Delivery(
            delivery_id=row["delivery_id"],
            event=row["event"],
            action=row["action"],
            repo=row["repo"],
            sources=_sources(row["sources"]),
            sha=row["sha"],
            branch=row["branch"],
            pr=row["pr"],
            author=row["author"],
            dedupe_key=row["dedupe_key"],
            trigger_ref=row["trigger_ref"],
            environment=_environment(row["sources"]),
        ),
        state=row["state"],
        note=row["note"],
        runs=tuple(tuple(run) for run in json.loads(row["runs"] or "[]")),
    )


class Inbox:
    def __init__(self, url: str):
        self.engine = upgraded_engine(url)

    def add(self, delivery: Delivery) -> tuple[int | None, bool]:
        """(row id, True) for a new delivery; (None, False) for one already in the inbox (the same
        delivery id, or the same dedupe key: a replay under a new id)."""
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
                        sources=_sources_json(delivery),
                        sha=delivery.sha,
                        branch=delivery.branch,
                        pr=delivery.pr,
                        author=delivery.author,
                        ref_key=delivery.ref_key,
                        state=WAITING if delivery.hold else PENDING,
                        note=f"pull request {delivery.hold}" if delivery.hold else None,
                        dedupe_key=delivery.dedupe_key,
                        trigger_ref=delivery.trigger_ref,
                    )
                )
                row_id = result.inserted_primary_key[0]
                if delivery.event == "issue_comment":
                    self._release(connection, row_id, delivery)
                return row_id, True
        except IntegrityError:
            return None, False

    def _release(self, connection, row_id: int, comment: Delivery) -> None:
        """A maintainer's `/plan`: the deliveries of the pull request that wait (and came before it)
        become pending; a commit pushed after the comment waits for another one."""
        waiting = (
            (func.lower(inbox_table.c.repo) == comment.repo.lower())
            & (inbox_table.c.ref_key == comment.ref_key)
            & (inbox_table.c.state == WAITING)
            & (inbox_table.c.id < row_id)
        )
        released = connection.execute(
            update(inbox_table)
            .where(waiting)
            .values(state=PENDING, note=f"released by `/plan` of {comment.author} (delivery {comment.delivery_id})")
        ).rowcount
        state, note = (
            (RELEASED, f"released {released} waiting deliveries of pull request #{comment.pr}")
            if released
            else (IGNORED, f"nothing of pull request #{comment.pr} waits for `/plan`")
        )
        connection.execute(update(inbox_table).where(inbox_table.c.id == row_id).values(state=state, note=note))

    def last_note(self, row_id: int) -> str | None:
        with self.engine.connect() as connection:
            return connection.execute(select(inbox_table.c.note).where(inbox_table.c.id == row_id)).scalar()

    def after(self, cursor: int, limit: int) -> list[InboxEvent]:
        """Rows after id ``cursor`` in id order, whatever their state (for reading, not for dispatch)."""
        query = select(inbox_table).where(inbox_table.c.id > cursor).order_by(inbox_table.c.id).limit(limit)
        with self.engine.connect() as connection:
            return [_event(row) for row in connection.execute(query).mappings().all()]

    def claim(self, limit: int, decide: Callable[[list[InboxEvent]], Marks]) -> Marks:
        """Pending rows, oldest first, handed to ``decide``; what it returns is written to them.

        On PostgreSQL in one transaction, the rows locked ``FOR UPDATE SKIP LOCKED`` (a second
        dispatcher takes other rows, never the same). On SQLite a read and then a write that only
        changes rows still pending (a read transaction cannot become a writer once another
        connection has written)."""
        query = select(inbox_table).where(inbox_table.c.state == PENDING).order_by(inbox_table.c.id).limit(limit)
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
            with self.engine.begin() as connection:
                events = [_event(row) for row in connection.execute(query).mappings().all()]
                marks = decide(events) if events else {}
                self._write(connection, marks, only_from=PENDING)
            return marks
        with self.engine.connect() as connection:
            events = [_event(row) for row in connection.execute(query).mappings().all()]
        marks = decide(events) if events else {}
        self.mark(marks, only_from=PENDING)
        return marks

    def dispatching(self, limit: int) -> list[InboxEvent]:
        """Rows whose runs were requested but not yet seen, oldest first."""
        query = select(inbox_table).where(inbox_table.c.state == DISPATCHING).order_by(inbox_table.c.id).limit(limit)
        with self.engine.connect() as connection:
            return [_event(row) for row in connection.execute(query).mappings().all()]

    def mark(self, notes: Marks, only_from: str | None = None) -> None:
        """Set (state, note[, runs]) on rows (only on rows in state ``only_from``, when given);
        called again with the same notes it changes nothing."""
        if not notes:
            return
        with _WRITE_LOCK, self.engine.begin() as connection:
            self._write(connection, notes, only_from)

    @staticmethod
    def _write(connection, notes: Marks, only_from: str | None) -> None:
        for row_id, (state, note, *runs) in notes.items():
            values = {"state": state, "note": note}
            if runs:
                values["runs"] = json.dumps([list(run) for run in runs[0]]) if runs[0] is not None else None
            where = inbox_table.c.id == row_id
            if only_from is not None:
                where = where & (inbox_table.c.state == only_from)
            connection.execute(update(inbox_table).where(where).values(**values))

    def newer_delivery(self, repo: str, ref_key: str, source: str, after_id: int) -> str | None:
        """The id of a delivery newer than row ``after_id`` for the same source and branch or pull request."""
        query = (
            select(inbox_table.c.delivery_id, inbox_table.c.sources)
            .where(inbox_table.c.repo == repo, inbox_table.c.ref_key == ref_key, inbox_table.c.id > after_id)
            .order_by(inbox_table.c.id.desc())
        )
        with self.engine.connect() as connection:
            for delivery_id, sources in connection.execute(query):
                if source in _sources(sources):
                    return delivery_id
        return None

    def states(self) -> dict[str, int]:
        return count_by(self.engine, inbox_table.c.state)

    # --- approval notes --------------------------------------------------------------------

    def note_approval(self, note: ApprovalNote) -> bool:
        """Store a "look now" for the approval sensor; False when it is there already (the same
        delivery id, or the same review or comment under a new id)."""
        try:
            with _WRITE_LOCK, self.engine.begin() as connection:
                connection.execute(
                    insert(notes_table).values(
                        delivery_id=note.delivery_id,
                        dedupe_key=note.dedupe_key,
                        received_at=time.time(),
                        event=note.event,
                        repo=note.repo,
                        pr=note.pr,
                        sha=note.sha,
                        login=note.login,
                        state=NOTED,
                    )
                )
            return True
        except IntegrityError:
            return False

    def noted_approvals(self, limit: int = 1000) -> list[NotedApproval]:
        """Notes the approval sensor has not looked at yet, oldest first (by state, not by id: on
        PostgreSQL a lower id can commit after a higher one)."""
        query = (
            select(notes_table.c.id, notes_table.c.repo, notes_table.c.pr, notes_table.c.sha, notes_table.c.received_at)
            .where(notes_table.c.state == NOTED)
            .order_by(notes_table.c.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [NotedApproval(*row) for row in connection.execute(query).all()]

    def approvals_looked_at(self, ids: list[int]) -> None:
        if not ids:
            return
        with _WRITE_LOCK, self.engine.begin() as connection:
            connection.execute(update(notes_table).where(notes_table.c.id.in_(ids)).values(state=LOOKED))

    def note_states(self) -> dict[str, int]:
        return count_by(self.engine, notes_table.c.state)
