"""Plans: the owner of every saved plan's files, row, state and approvals.

Files live in a folder of the instance (``<root>/<plan_id>/``, readable by the manager only)
and, when a remote is given (S3 through dagster-aws), there too, so that a plan made on one
machine is applied on another; the folder is then a cache. The row and the approvals live in
the manager's database (SQLite by default, PostgreSQL at scale).

The files of a plan that can never be applied again (a terminal state) are pruned, here and in
the remote, once its last change is older than the retention (``MANAGER_PLAN_RETENTION``); its
row stays (the audit trail: approvals, summary, sha256) and its note says the files were pruned.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Protocol

from sqlalchemy import (
    func,
    insert,
    select,
    update,
)

from manager_pipeline.db.migrate import upgraded_engine
from manager_pipeline.db.tables import approvals_table, plans_table
from manager_pipeline.errors import ManagerError
from manager_pipeline.plans.record import PLAN_FILE, POLICY_FILE, TEXT_FILE, Plan, PlanFacts
from manager_pipeline.plans.state import TRANSITIONS, PlanState, sources_of
from manager_pipeline.terraform.plan import PlanSummary

_JSON_COLUMNS = ("summary", "planned_outputs", "tfvars")
# Columns of the row that are not facts of the plan itself (kept by the store only).
_STORE_COLUMNS = ("changed_at",)

# States a plan never leaves: it can never be applied again, so its files may go after a while.
TERMINAL_STATES = frozenset(PlanState) - frozenset(TRANSITIONS)
DEFAULT_RETENTION_S = 30 * 24 * 3600.0
# Pruning runs at most this often per process and store (it is asked on every saved plan).
PRUNE_INTERVAL_S = 3600.0

_LAST_PRUNE: dict[tuple[str, str], float] = {}
_PRUNE_LOCK = threading.Lock()


def _duration(seconds: float) -> str:
    days = seconds / 86400
    if days >= 1:
        return f"{days:g} day{'' if days == 1 else 's'}"
    return f"{seconds / 3600:g} h"


@dataclass
class Pruned:
    """What one pruning pass did: the plans whose files went, and what it could not remove."""

    plan_ids: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


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
    def delete(self, plan_id: str, name: str) -> None: ...


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

    def delete(self, plan_id: str, name: str) -> None:
        # Deleting a key that is not there succeeds: pruning twice is harmless.
        self.client.delete_object(Bucket=self.bucket, Key=self._key(plan_id, name))


class Plans:
    def __init__(
        self,
        database_url: str,
        root: Path,
        remote: RemoteFiles | None = None,
        retention_s: float = DEFAULT_RETENTION_S,
    ):
        self.engine = upgraded_engine(database_url)
        self.database_url = database_url
        self.root = root
        self.remote = remote
        self.retention_s = retention_s

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
        row = {name: getattr(plan, name) for name in plans_table.c.keys() if name not in _STORE_COLUMNS}
        row["changed_at"] = plan.created_at
        row["state"] = plan.state.value
        row["summary"] = json.dumps(plan.summary.to_dict())
        row["planned_outputs"] = json.dumps(plan.planned_outputs)
        row["tfvars"] = json.dumps(plan.tfvars)
        with self.engine.begin() as connection:
            connection.execute(insert(plans_table).values(**row))
        return plan

    def attach_policy(self, plan_id: str, verdict: dict[str, Any]) -> None:
        """Keep the policy stage's verdict beside the plan's files (and in the artifact bucket)."""
        directory = self.root / plan_id
        path = directory / POLICY_FILE
        path.write_text(json.dumps(verdict, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.chmod(path, 0o600)
        if self.remote:
            self.remote.put(plan_id, POLICY_FILE, path)

    def _plan(self, row: Any) -> Plan:
        values = {name: value for name, value in dict(row).items() if name not in _STORE_COLUMNS}
        for name in _JSON_COLUMNS:
            values[name] = json.loads(values[name])
        values["summary"] = PlanSummary.from_dict(values["summary"])
        values["state"] = PlanState(values["state"])
        return Plan(directory=self.root / values["plan_id"], **values)

    def _row(self, plan_id: str) -> Any:
        if not plan_id.isalnum():
            return None
        with self.engine.connect() as connection:
            return connection.execute(select(plans_table).where(plans_table.c.plan_id == plan_id)).mappings().first()

    def find(self, plan_id: str) -> Plan | None:
        row = self._row(plan_id)
        return self._plan(row) if row else None

    def get(self, plan_id: str) -> Plan:
        """The plan, with its files on this machine (fetched from the remote when they are elsewhere).

        A plan whose files were pruned is refused here, in one line: it can never be applied."""
        row = self._row(plan_id)
        if row is None:
            raise ManagerError(f"no plan `{plan_id}`; `manager-pipeline plans` lists the plans")
        plan = self._plan(row)
        if row["files_pruned_at"] is not None:
            raise ManagerError(
                f"plan {plan_id} is {plan.state.value} and can never be applied: {plan.note}; its record "
                f"(approvals, summary, sha256) stays in `manager-pipeline plans`; re-plan with "
                f"`manager-pipeline run --source {plan.source} --env {plan.environment}`: nothing was applied"
            )
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
        values: dict[str, Any] = {"state": target.value, "changed_at": time.time()}
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
                    .values(
                        state=PlanState.SUPERSEDED.value,
                        note=f"superseded by plan {plan_id}",
                        changed_at=values["changed_at"],
                    )
                )
        return moved == 1

    # --- pruning -------------------------------------------------------------------------

    def prune_if_due(self, now: float | None = None) -> Pruned | None:
        """``prune()`` at most once per ``PRUNE_INTERVAL_S`` in this process; None when not due."""
        now = time.time() if now is None else now
        key = (self.database_url, str(self.root))
        with _PRUNE_LOCK:
            last = _LAST_PRUNE.get(key)
            if last is not None and 0 <= now - last < PRUNE_INTERVAL_S:
                return None
            # Marked before the pass: a pass that fails is not retried on every plan of the hour.
            _LAST_PRUNE[key] = now
        return self.prune(now)

    def prune(self, now: float | None = None) -> Pruned:
        """Remove the files (here and in the remote) of the plans in a terminal state whose last change
        is older than the retention; their rows stay, noted. Also drops the local copies of plans pruned
        by another machine, and folders without a row (a save cut short) older than the retention."""
        now = time.time() if now is None else now
        cutoff = now - self.retention_s
        result = Pruned()
        last_change = func.coalesce(plans_table.c.changed_at, plans_table.c.created_at)
        terminal = [state.value for state in TERMINAL_STATES]
        with self.engine.connect() as connection:
            due = connection.execute(
                select(plans_table.c.plan_id, plans_table.c.note).where(
                    plans_table.c.state.in_(terminal),
                    plans_table.c.files_pruned_at.is_(None),
                    last_change < cutoff,
                )
            ).all()
        when = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%d")
        sentence = f"its files were pruned after {_duration(self.retention_s)} (MANAGER_PLAN_RETENTION) on {when}"
        for plan_id, note in due:
            problem = self._remove_files(plan_id)
            if problem:
                result.problems.append(problem)
                continue
            with self.engine.begin() as connection:
                connection.execute(
                    update(plans_table)
                    .where(
                        plans_table.c.plan_id == plan_id,
                        plans_table.c.state.in_(terminal),
                        plans_table.c.files_pruned_at.is_(None),
                    )
                    .values(files_pruned_at=now, note=f"{note}; {sentence}" if note else sentence)
                )
            result.plan_ids.append(plan_id)
        result.problems.extend(self._sweep_local(cutoff, set(result.plan_ids)))
        return result

    def _remove_files(self, plan_id: str) -> str | None:
        """Remove one plan's files, remote first; a problem (the row is then left unmarked) or None."""
        try:
            if self.remote:
                for name in (PLAN_FILE, TEXT_FILE):
                    self.remote.delete(plan_id, name)
            directory = self.root / plan_id
            if directory.is_dir() and not directory.is_symlink():
                shutil.rmtree(directory)
        except Exception as exc:  # noqa: BLE001 - any failure: keep the row unmarked, try next time
            return f"the files of plan {plan_id} could not be removed: {exc}"
        return None

    def _sweep_local(self, cutoff: float, done: set[str]) -> list[str]:
        """Local folders whose plan was pruned elsewhere, or that have no row and are old."""
        try:
            folders = {
                entry.name: entry
                for entry in (self.root.iterdir() if self.root.is_dir() else ())
                if entry.name.isalnum() and entry.name not in done and entry.is_dir() and not entry.is_symlink()
            }
        except OSError as exc:
            return [f"cannot list {self.root}: {exc.strerror or exc}"]
        if not folders:
            return []
        pruned, known = set(), set()
        names = sorted(folders)
        with self.engine.connect() as connection:
            for start in range(0, len(names), 500):
                chunk = names[start : start + 500]
                for plan_id, pruned_at in connection.execute(
                    select(plans_table.c.plan_id, plans_table.c.files_pruned_at).where(plans_table.c.plan_id.in_(chunk))
                ):
                    known.add(plan_id)
                    if pruned_at is not None:
                        pruned.add(plan_id)
        problems = []
        for name, entry in folders.items():
            try:
                if name in pruned or (name not in known and entry.stat().st_mtime < cutoff):
                    shutil.rmtree(entry)
            except OSError as exc:
                problems.append(f"the folder {entry} could not be removed: {exc.strerror or exc}")
        return problems

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
