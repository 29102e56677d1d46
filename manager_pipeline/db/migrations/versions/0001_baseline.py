"""Baseline: the six tables as the releases before migrations left them.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-12-07

Those releases made their tables with ``create_all`` and added later columns with ``ALTER TABLE``
when a store first opened the database, so a database of theirs can hold any subset of the tables,
and tables without the columns added since, but no version table. This revision therefore
makes what is missing and leaves what is there: a table that is absent is created whole, a column
or an index that is absent is added. A new database and one of an older release end at one schema.

The tables are written out here, not imported from ``db/tables.py``: this revision is what the
schema was at the baseline, whatever the registry becomes.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def _inbox() -> list[sa.SchemaItem]:
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(100), nullable=False, unique=True),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32)),
        sa.Column("repo", sa.String(200), nullable=False),
        sa.Column("sources", sa.Text, nullable=False),
        sa.Column("sha", sa.String(64)),
        sa.Column("branch", sa.String(255)),
        sa.Column("pr", sa.Integer),
        sa.Column("author", sa.String(100)),
        sa.Column("ref_key", sa.String(300), nullable=False, index=True),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("note", sa.Text),
        sa.Column("dedupe_key", sa.String(64)),
        sa.Column("runs", sa.Text),
        sa.Column("trigger_ref", sa.String(300)),
        sa.Index("ix_webhook_inbox_dedupe_key", "dedupe_key", unique=True),
    ]


def _plans() -> list[sa.SchemaItem]:
    return [
        sa.Column("plan_id", sa.String(32), primary_key=True),
        sa.Column("source", sa.String(100), nullable=False, index=True),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("sha", sa.String(64)),
        sa.Column("branch", sa.String(255)),
        sa.Column("branch_verified", sa.Boolean, nullable=False),
        sa.Column("pr", sa.Integer),
        sa.Column("author", sa.String(100)),
        sa.Column("repo", sa.String(200)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("plan_sha256", sa.String(64), nullable=False),
        sa.Column("variables_digest", sa.String(64), nullable=False),
        sa.Column("module_digest", sa.String(64), nullable=False),
        sa.Column("terraform_version", sa.String(32), nullable=False),
        sa.Column("has_changes", sa.Boolean, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("planned_outputs", sa.Text, nullable=False),
        sa.Column("tfvars", sa.Text, nullable=False),
        sa.Column("state", sa.String(32), nullable=False, index=True),
        sa.Column("run_id", sa.String(64)),
        sa.Column("apply_run_id", sa.String(64)),
        sa.Column("note", sa.Text),
        sa.Column("changed_at", sa.Float),
        sa.Column("files_pruned_at", sa.Float),
        sa.Column("destroy", sa.Boolean, nullable=False, server_default=sa.false()),
    ]


def _approvals() -> list[sa.SchemaItem]:
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plan_id", sa.String(32), nullable=False, index=True),
        sa.Column("login", sa.String(100), nullable=False),
        sa.Column("via", sa.String(32), nullable=False),
        sa.Column("origin", sa.String(100), nullable=False),
        sa.Column("accepted", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", sa.Float, nullable=False),
    ]


def _outbox() -> list[sa.SchemaItem]:
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("repo", sa.String(200), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("claimed_until", sa.Float),
        sa.Column("delivered_at", sa.Float),
        sa.Column("next_attempt_at", sa.Float),
    ]


def _handoffs() -> list[sa.SchemaItem]:
    return [
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False, index=True),
    ]


def _notes() -> list[sa.SchemaItem]:
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(100), nullable=False, unique=True),
        sa.Column("dedupe_key", sa.String(64), unique=True),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("repo", sa.String(200), nullable=False),
        sa.Column("pr", sa.Integer, nullable=False),
        sa.Column("sha", sa.String(64)),
        sa.Column("login", sa.String(100)),
        sa.Column("state", sa.String(16), nullable=False, index=True),
    ]


# Each table's columns and indexes, made anew on every call (a column belongs to one table).
TABLES = {
    "plan_records": _plans,
    "approvals": _approvals,
    "feedback_outbox": _outbox,
    "op_handoffs": _handoffs,
    "webhook_inbox": _inbox,
    "approval_notes": _notes,
}


def _add_missing(name: str, items, inspector) -> None:
    """Add the columns and indexes that a table of an older release lacks."""
    table = sa.Table(name, sa.MetaData(), *items())
    have = {column["name"] for column in inspector.get_columns(name)}
    for column in table.columns:
        if column.name not in have:
            # The column alone (the columns added since a table's first release are neither keys nor
            # unique); its index follows with the others.
            default = column.server_default.arg if column.server_default is not None else None
            op.add_column(name, sa.Column(column.name, column.type, nullable=column.nullable, server_default=default))
    if name == "plan_records" and "changed_at" not in have:
        # When older rows last changed is not known: the retention counts from this upgrade.
        op.execute(table.update().where(table.c.changed_at.is_(None)).values(changed_at=time.time()))
    indexes = {index["name"] for index in inspector.get_indexes(name)}
    for index in table.indexes:
        if index.name not in indexes:
            op.create_index(index.name, name, [column.name for column in index.columns], unique=index.unique)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present = set(inspector.get_table_names())
    for name, items in TABLES.items():
        if name in present:
            _add_missing(name, items, inspector)
        else:
            op.create_table(name, *items())


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
