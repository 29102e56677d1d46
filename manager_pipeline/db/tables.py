"""Every table of the manager's database, on one ``MetaData``: the schema the migrations build.

A change here is a change of the schema: it comes with a revision in ``db/migrations/versions/``
(``tests/unit/test_db_migrations.py`` fails while the two disagree). The stores import their table
from here and never create or alter one.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, LargeBinary, MetaData, String, Table, Text, false

metadata = MetaData()

# Plans: one row per saved plan (plans/store.py), and the approvals recorded for it.
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
    # When the state last changed (set to the upgrade's time in rows of releases before it was kept).
    Column("changed_at", Float),
    # When the plan's files were pruned (NULL while they are kept).
    Column("files_pruned_at", Float),
    # The plans of releases before destroy were never destroy plans.
    Column("destroy", Boolean, nullable=False, default=False, server_default=false()),
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

# Feedback to GitHub, written first and delivered when GitHub answers (feedback/outbox.py).
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
    Column("next_attempt_at", Float),
)

# Values handed from one op to the next across machines (handoff/values.py).
handoff_table = Table(
    "op_handoffs",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False, index=True),
)

# Accepted webhook deliveries, and the approval notes beside them (intake/inbox.py).
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
    Column("dedupe_key", String(64)),
    # JSON [[source, environment], ...]: the runs requested for a row in state `dispatching`.
    Column("runs", Text),
    # A trigger repository's delivery: the application's ref (`repo` is the application repository).
    Column("trigger_ref", String(300)),
)
Index("ix_webhook_inbox_dedupe_key", inbox_table.c.dedupe_key, unique=True)

notes_table = Table(
    "approval_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(100), nullable=False, unique=True),
    Column("dedupe_key", String(64), unique=True),
    Column("received_at", Float, nullable=False),
    Column("event", String(32), nullable=False),
    Column("repo", String(200), nullable=False),
    Column("pr", Integer, nullable=False),
    Column("sha", String(64)),
    Column("login", String(100)),
    Column("state", String(16), nullable=False, index=True),
)

# Each GitHub source's repository as GitHub knows it (intake/lifecycle.py): its id, recorded when the
# manager first reads a delivery of it, so that a rename or a transfer keeps finding it; and what GitHub
# said since (renamed or transferred to another name, the App removed, the webhook deleted).
repositories_table = Table(
    "source_repositories",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("repo_id", Integer, index=True),
    Column("full_name", String(200), nullable=False),
    # The name GitHub gave it since manager.yaml's (a rename, a transfer); NULL while they agree.
    Column("renamed_to", String(200)),
    # Why the manager cannot reach it now (NULL: it can), and the delivery that said so.
    Column("unreachable", Text),
    Column("said_by", String(140)),
    Column("changed_at", Float, nullable=False),
)
