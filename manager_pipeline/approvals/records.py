"""Which plans wait for approval, and every approval or refusal given, in the manager's database."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Boolean, Column, Float, Integer, String, Table, Text, insert, select, update

from manager_pipeline.database import engine_for, metadata
from manager_pipeline.events import PLAN_ID_TAG, DispatchEvent

plans_table = Table(
    "plans",
    metadata,
    Column("plan_id", String(32), primary_key=True),
    Column("source", String(100), nullable=False, index=True),
    Column("environment", String(100), nullable=False),
    Column("sha", String(64)),
    Column("branch", String(255)),
    Column("pr", Integer),
    Column("author", String(100)),
    Column("repo", String(200)),
    Column("created_at", Float, nullable=False),
    Column("plan_sha256", String(64), nullable=False),
    # A candidate plan may be applied; previews (pull requests, plan-only runs) never are.
    Column("candidate", Boolean, nullable=False),
    Column("state", String(32), nullable=False, index=True),
    Column("run_id", String(64)),
    Column("apply_run_id", String(64)),
    Column("note", Text),
)

approvals_table = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("plan_id", String(32), nullable=False, index=True),
    Column("login", String(100), nullable=False),
    Column("via", String(32), nullable=False),
    # The GitHub review or comment id, so a source is recorded once however often it is read.
    Column("origin", String(100), nullable=False),
    Column("accepted", Boolean, nullable=False),
    Column("reason", Text),
    Column("at", Float, nullable=False),
)

AWAITING = "awaiting-approval"
APPROVED = "approved"
APPLYING = "applying"
APPLIED = "applied"
FAILED = "failed"
REFUSED = "refused"
SUPERSEDED = "superseded"
EXPIRED = "expired"
PREVIEW = "preview"


@dataclass(frozen=True)
class PlanRecord:
    plan_id: str
    source: str
    environment: str
    sha: str | None
    branch: str | None
    pr: int | None
    author: str | None
    repo: str | None
    created_at: float
    plan_sha256: str
    candidate: bool
    state: str
    run_id: str | None
    apply_run_id: str | None
    note: str | None

    def apply_tags(self, trigger: str) -> dict[str, str]:
        """The tags of a run that applies this plan: its event, and the plan's id."""
        event = DispatchEvent(
            source=self.source,
            environment=self.environment,
            sha=self.sha,
            branch=self.branch,
            pr=self.pr,
            trigger=trigger,
            author=self.author,
        )
        return event.to_tags() | {PLAN_ID_TAG: self.plan_id}


@dataclass(frozen=True)
class ApprovalRecord:
    plan_id: str
    login: str
    via: str
    origin: str
    accepted: bool
    reason: str | None
    at: float


class Records:
    def __init__(self, url: str):
        self.engine = engine_for(url, plans_table)
        engine_for(url, approvals_table)

    def add_plan(self, record: PlanRecord) -> None:
        with self.engine.begin() as connection:
            connection.execute(insert(plans_table).values(**record.__dict__))

    def plan(self, plan_id: str) -> PlanRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(plans_table).where(plans_table.c.plan_id == plan_id)).mappings().first()
        return PlanRecord(**row) if row else None

    def plans(self, state: str | None = None, source: str | None = None, environment: str | None = None):
        query = select(plans_table).order_by(plans_table.c.created_at)
        if state:
            query = query.where(plans_table.c.state == state)
        if source:
            query = query.where(plans_table.c.source == source)
        if environment:
            query = query.where(plans_table.c.environment == environment)
        with self.engine.connect() as connection:
            return [PlanRecord(**row) for row in connection.execute(query).mappings()]

    def newest_candidate(self, source: str, environment: str) -> PlanRecord | None:
        candidates = [p for p in self.plans(source=source, environment=environment) if p.candidate]
        return candidates[-1] if candidates else None

    def set_state(self, plan_id: str, state: str, note: str | None = None, apply_run_id: str | None = None) -> None:
        values = {"state": state, "note": note}
        if apply_run_id:
            values["apply_run_id"] = apply_run_id
        with self.engine.begin() as connection:
            connection.execute(update(plans_table).where(plans_table.c.plan_id == plan_id).values(**values))

    def record(self, approval: ApprovalRecord) -> bool:
        """Store an approval or refusal once per origin; False when it was already there."""
        with self.engine.begin() as connection:
            seen = connection.execute(
                select(approvals_table.c.id).where(
                    approvals_table.c.plan_id == approval.plan_id, approvals_table.c.origin == approval.origin
                )
            ).first()
            if seen:
                return False
            connection.execute(insert(approvals_table).values(**approval.__dict__))
        return True

    def approvals(self, plan_id: str) -> list[ApprovalRecord]:
        query = select(approvals_table).where(approvals_table.c.plan_id == plan_id).order_by(approvals_table.c.id)
        with self.engine.connect() as connection:
            return [
                ApprovalRecord(**{k: v for k, v in row.items() if k != "id"})
                for row in connection.execute(query).mappings()
            ]


def now() -> float:
    return time.time()
