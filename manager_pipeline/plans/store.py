"""Plans: the owner of every saved plan's files, row, state and approvals.

Files live in a folder of the instance (``<root>/<plan_id>/``, readable by the manager only)
and, when a remote is given (S3 through dagster-aws), there too, so that a plan made on one
machine is applied on another; the folder is then a cache. The row and the approvals live in
the manager's database (SQLite by default, PostgreSQL at scale).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol

from sqlalchemy import Boolean, Column, Float, Integer, String, Table, Text, insert, select, update

from manager_pipeline.database import engine_for, metadata
from manager_pipeline.errors import ManagerError
from manager_pipeline.plans.record import PLAN_FILE, TEXT_FILE, Plan, PlanFacts
from manager_pipeline.plans.state import PlanState, sources_of
from manager_pipeline.terraform.plan import PlanSummary

plans_table = Table(
    "plan_records",
    metadata,
    Column("plan_id", String(32), primary_key=True),
    Column("source", String(100), nullable=False, index=True),
    Column("environment", String(100), nullable=False),
    Column("sha", String(64)),
    Column("branch", String(255)),
    Column("branch_verified", Boolean, nullable=False),
    Column("pr", Integer),
    Column("author", String(100)),
    Column("repo", String(200)),
    Column("created_at", Float, nullable=False),
    Column("plan_sha256", String(64), nullable=False),
    Column("variables_digest", String(64), nullable=False),
    Column("module_digest", String(64), nullable=False),
    Column("terraform_version", String(32), nullable=False),
    Column("has_changes", Boolean, nullable=False),
    Column("summary", Text, nullable=False),
    Column("planned_outputs", Text, nullable=False),
    Column("tfvars", Text, nullable=False),
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

_JSON_COLUMNS = ("summary", "planned_outputs", "tfvars")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ApprovalRecord:
    plan_id: str
    login: str
    via: str
    origin: str
    accepted: bool
    reason: str | None
    at: float


class RemoteFiles(Protocol):
    """Where plan files are kept besides the local folder (S3 when PLAN_ARTIFACT_BUCKET is set)."""

    def put(self, plan_id: str, name: str, path: Path) -> None: ...
    def get(self, plan_id: str, name: str, path: Path) -> bool: ...


class S3PlanFiles:
    """Plan files in an S3 bucket under ``plans/<plan_id>/``."""

    def __init__(self, client: Any, bucket: str, prefix: str = "plans"):
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    def _key(self, plan_id: str, name: str) -> str:
        return f"{self.prefix}/{plan_id}/{name}"

    def put(self, plan_id: str, name: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self._key(plan_id, name))

    def get(self, plan_id: str, name: str, path: Path) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.download_file(self.bucket, self._key(plan_id, name), str(path))
        except ClientError:
            return False
        return True


class Plans:
    def __init__(self, database_url: str, root: Path, remote: RemoteFiles | None = None):
        self.engine = engine_for(database_url, plans_table)
        engine_for(database_url, approvals_table)
        self.root = root
        self.remote = remote

    # --- files and the row -------------------------------------------------------------

    def save(self, plan_file: Path, text: str, facts: PlanFacts) -> Plan:
        """Keep a new plan (state ``planned``): its files first, then its row."""
        plan_id = secrets.token_hex(6)
        directory = self.root / plan_id
        try:
            # Plan files hold the values Terraform was given: the manager's eyes only.
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            directory.mkdir(mode=0o700)
            shutil.copyfile(plan_file, directory / PLAN_FILE)
            (directory / TEXT_FILE).write_text(text, encoding="utf-8")
            for name in (PLAN_FILE, TEXT_FILE):
                os.chmod(directory / name, 0o600)
        except OSError as exc:
            # A file cut short (a full disk) is never kept: no row points at it, and the folder goes.
            shutil.rmtree(directory, ignore_errors=True)
            raise ManagerError(
                f"cannot save the plan in {self.root}: {exc.strerror or exc}; free space there (or fix its "
                "permissions) and run again: nothing was applied"
            ) from None
        if self.remote:
            for name in (PLAN_FILE, TEXT_FILE):
                self.remote.put(plan_id, name, directory / name)
        plan = Plan(
            plan_id=plan_id,
            created_at=time.time(),
            plan_sha256=sha256_file(directory / PLAN_FILE),
            state=PlanState.PLANNED,
            directory=directory,
            **facts.__dict__,
        )
        row = {name: getattr(plan, name) for name in plans_table.c.keys()}
        row["state"] = plan.state.value
        row["summary"] = json.dumps(plan.summary.to_dict())
        row["planned_outputs"] = json.dumps(plan.planned_outputs)
        row["tfvars"] = json.dumps(plan.tfvars)
        with self.engine.begin() as connection:
            connection.execute(insert(plans_table).values(**row))
        return plan

    def _plan(self, row: Any) -> Plan:
        values = dict(row)
        for name in _JSON_COLUMNS:
            values[name] = json.loads(values[name])
        values["summary"] = PlanSummary.from_dict(values["summary"])
        values["state"] = PlanState(values["state"])
        return Plan(directory=self.root / values["plan_id"], **values)

    def find(self, plan_id: str) -> Plan | None:
        if not plan_id.isalnum():
            return None
        with self.engine.connect() as connection:
            row = connection.execute(select(plans_table).where(plans_table.c.plan_id == plan_id)).mappings().first()
        return self._plan(row) if row else None

    def get(self, plan_id: str) -> Plan:
        """The plan, with its files on this machine (fetched from the remote when they are elsewhere)."""
        plan = self.find(plan_id)
        if plan is None:
            raise ManagerError(f"no plan `{plan_id}`; `manager-pipeline plans` lists the plans")
        if not plan.plan_file.is_file() and self.remote:
            plan.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            for name in (PLAN_FILE, TEXT_FILE):
                self.remote.get(plan_id, name, plan.directory / name)
        return plan

    def list_plans(
        self, state: PlanState | str | None = None, source: str | None = None, environment: str | None = None
    ) -> list[Plan]:
        query = select(plans_table).order_by(plans_table.c.created_at)
        if state:
            query = query.where(plans_table.c.state == PlanState(state).value)
        if source:
            query = query.where(plans_table.c.source == source)
        if environment:
            query = query.where(plans_table.c.environment == environment)
        with self.engine.connect() as connection:
            return [self._plan(row) for row in connection.execute(query).mappings()]

    def newest_candidate(self, source: str, environment: str) -> Plan | None:
        candidates = [p for p in self.list_plans(source=source, environment=environment) if p.candidate]
        return candidates[-1] if candidates else None

    # --- state ---------------------------------------------------------------------------

    def transition(
        self,
        plan_id: str,
        target: PlanState,
        note: str | None = None,
        apply_run_id: str | None = None,
        expected: Iterable[PlanState] | None = None,
    ) -> bool:
        """Move a plan to ``target`` if it is in a state that may (or in ``expected``); False if it was not.

        A plan that becomes a candidate (awaiting approval, or approved to apply) supersedes the
        older candidates of its partition that still wait: approvals never carry over."""
        allowed = sources_of(target) if expected is None else frozenset(expected) & sources_of(target)
        values: dict[str, Any] = {"state": target.value}
        if note is not None:
            values["note"] = note
        if apply_run_id:
            values["apply_run_id"] = apply_run_id
        with self.engine.begin() as connection:
            moved = connection.execute(
                update(plans_table)
                .where(plans_table.c.plan_id == plan_id, plans_table.c.state.in_([s.value for s in allowed]))
                .values(**values)
            ).rowcount
            if moved and target in (PlanState.AWAITING, PlanState.APPROVED):
                plan = connection.execute(
                    select(plans_table.c.source, plans_table.c.environment, plans_table.c.created_at).where(
                        plans_table.c.plan_id == plan_id
                    )
                ).first()
                connection.execute(
                    update(plans_table)
                    .where(
                        plans_table.c.source == plan.source,
                        plans_table.c.environment == plan.environment,
                        plans_table.c.plan_id != plan_id,
                        plans_table.c.created_at <= plan.created_at,
                        plans_table.c.state.in_([PlanState.AWAITING.value, PlanState.APPROVED.value]),
                    )
                    .values(state=PlanState.SUPERSEDED.value, note=f"superseded by plan {plan_id}")
                )
        return moved == 1

    # --- approvals -----------------------------------------------------------------------

    def record_approval(self, approval: ApprovalRecord) -> bool:
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
