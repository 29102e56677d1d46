"""A database of the releases before migrations upgrades in place, on SQLite and on PostgreSQL.

Those releases made each table with ``create_all`` when a store first opened the database, and
three stores then added the columns of later releases with ``ALTER TABLE``; none kept a revision.
The tables below are theirs (the last release's definitions, ``git show cfff03b:manager_pipeline/...``);
``older`` drops the columns the ``ALTER TABLE``s added, as a database made before them and not
opened since holds them.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    inspect,
    select,
    text,
)

from manager_pipeline.db import migrate
from manager_pipeline.db.engine import engine_for
from manager_pipeline.db.tables import metadata as registry
from manager_pipeline.feedback.outbox import Outbox
from manager_pipeline.handoff.values import DatabaseStash
from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.intake.webhooks import Delivery
from manager_pipeline.plans.state import PlanState
from manager_pipeline.plans.store import ApprovalRecord, Plans
from tests.integration.conftest import own_database

pytestmark = pytest.mark.integration

DAY = 86400.0
# The columns the releases' ALTER TABLEs added, by table.
ADDED = {
    "plan_records": ("changed_at", "files_pruned_at", "destroy"),
    "feedback_outbox": ("next_attempt_at",),
    "webhook_inbox": ("dedupe_key", "runs", "trigger_ref"),
}


def previous_schema(older: bool) -> MetaData:
    """The tables as the last release before migrations made them (``older``: without the added columns)."""
    metadata = MetaData()

    def table(name: str, *columns: Column) -> Table:
        dropped = ADDED.get(name, ()) if older else ()
        return Table(name, metadata, *(column for column in columns if column.name not in dropped))

    table(
        "plan_records",
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
        Column("changed_at", Float),
        Column("files_pruned_at", Float),
        Column("destroy", Boolean, nullable=False, default=False),
    )
    table(
        "approvals",
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("plan_id", String(32), nullable=False, index=True),
        Column("login", String(100), nullable=False),
        Column("via", String(32), nullable=False),
        Column("origin", String(100), nullable=False),
        Column("accepted", Boolean, nullable=False),
        Column("reason", Text),
        Column("at", Float, nullable=False),
    )
    table(
        "feedback_outbox",
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
    table(
        "op_handoffs",
        Column("key", String(512), primary_key=True),
        Column("body", LargeBinary, nullable=False),
        Column("created_at", Float, nullable=False, index=True),
    )
    inbox = table(
        "webhook_inbox",
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
        Column("runs", Text),
        Column("trigger_ref", String(300)),
    )
    if not older:
        Index("ix_webhook_inbox_dedupe_key", inbox.c.dedupe_key, unique=True)
    table(
        "approval_notes",
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
    return metadata


PLAN_ROW = {
    "plan_id": "0123abcd",
    "source": "web",
    "environment": "production",
    "branch": "main",
    "branch_verified": True,
    "pr": 7,
    "created_at": time.time() - 400 * DAY,
    "plan_sha256": "s" * 64,
    "variables_digest": "v" * 64,
    "module_digest": "m" * 64,
    "terraform_version": "1.15.5",
    "has_changes": True,
    "summary": '{"add": 1, "change": 0, "destroy": 0}',
    "planned_outputs": "{}",
    "tfvars": "{}",
    "state": "awaiting-approval",
}


def fill(url: str, metadata: MetaData) -> None:
    """The previous release's tables, with a row in each (as its stores wrote them)."""
    engine = create_engine(url)
    tables = metadata.tables
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(tables["plan_records"]).values(**PLAN_ROW))
        connection.execute(
            insert(tables["approvals"]).values(
                plan_id="0123abcd", login="alice", via="review", origin="review:1", accepted=True, at=time.time()
            )
        )
        connection.execute(
            insert(tables["feedback_outbox"]).values(
                created_at=time.time(), repo="acme/web", kind="status", payload="{}", state="pending", attempts=0
            )
        )
        connection.execute(insert(tables["op_handoffs"]).values(key="run/op/out", body=b"kept", created_at=time.time()))
        connection.execute(
            insert(tables["webhook_inbox"]).values(
                delivery_id="old-1",
                received_at=time.time(),
                event="push",
                repo="acme/web",
                sources='["web"]',
                sha="a" * 40,
                branch="main",
                ref_key="branch:main",
                state="dispatched",
            )
        )
        connection.execute(
            insert(tables["approval_notes"]).values(
                delivery_id="note-1",
                received_at=time.time(),
                event="pull_request_review",
                repo="acme/web",
                pr=7,
                state="noted",
            )
        )
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'manager.db'}"
        return
    with own_database() as name:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        engine_for(f"postgresql://postgres@127.0.0.1:5432/{name}").dispose()


def schema_diff(url: str) -> list:
    with engine_for(url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": migrate.VERSION_TABLE})
        return compare_metadata(context, registry)


@pytest.mark.parametrize("older", [True, False], ids=["before-the-added-columns", "last-release"])
def test_a_database_of_the_release_before_migrations_upgrades_in_place(url, tmp_path, older):
    fill(url, previous_schema(older))
    assert migrate.current_revision(url) is None and not migrate.is_migrated(url)

    assert migrate.upgrade(url) is None  # it had no revision
    assert migrate.current_revision(url) == migrate.HEAD and migrate.is_migrated(url)
    assert schema_diff(url) == []
    indexes = {index["name"] for index in inspect(engine_for(url)).get_indexes("webhook_inbox")}
    assert "ix_webhook_inbox_dedupe_key" in indexes

    # Every row kept, and every store works on them.
    plans = Plans(url, tmp_path / "plans")
    plan = plans.find("0123abcd")
    assert plan.state is PlanState.AWAITING and plan.pr == 7 and plan.destroy is False
    assert [a.login for a in plans.approvals("0123abcd")] == ["alice"]
    assert plans.record_approval(ApprovalRecord("0123abcd", "bob", "comment", "comment:2", True, None, time.time()))
    assert plans.transition("0123abcd", PlanState.SUPERSEDED, note="replaced")
    if older:
        # When an old row last changed is unknown: it gets the whole retention from the upgrade on.
        with plans.engine.connect() as connection:
            [changed_at] = connection.execute(select(registry.tables["plan_records"].c.changed_at)).scalars()
        assert changed_at > time.time() - 60

    outbox = Outbox(url)
    [old] = outbox.due()
    assert old.item.repo == "acme/web" and old.next_attempt_at is None and outbox.claim(old.id)
    outbox.failed(old.id, "GitHub is down")
    assert outbox.get(old.id).next_attempt_at is not None

    stash = DatabaseStash(url)
    assert stash.get("run/op/out") == b"kept"
    stash.put("run/op/new", b"new")
    assert stash.get("run/op/new") == b"new"

    inbox = Inbox(url)
    assert [event.delivery.delivery_id for event in inbox.after(0, 10)] == ["old-1"]
    assert inbox.note_states() == {"noted": 1}
    delivery = Delivery("new-1", "push", None, "acme/web", ("web",), sha="b" * 40, branch="main", dedupe_key="k1")
    assert inbox.add(delivery)[1]
    # The dedupe key is unique (its index made by the upgrade where the release had not made it yet).
    assert inbox.add(Delivery("new-2", "push", None, "acme/web", ("web",), dedupe_key="k1")) == (None, False)

    # Upgrading again changes nothing.
    assert migrate.upgrade(url) == migrate.HEAD
    assert migrate.is_migrated(url) and schema_diff(url) == []


def test_a_new_database_is_made_whole_and_agrees_with_the_registry(url):
    assert migrate.upgrade(url) is None
    assert migrate.is_migrated(url)
    assert set(inspect(engine_for(url)).get_table_names()) == set(registry.tables) | {migrate.VERSION_TABLE}
    assert schema_diff(url) == []


def test_a_database_the_dagster_instance_shares_keeps_both_revisions(url):
    """Dagster's storage keeps its revision in Alembic's default table; the manager's is its own."""
    with engine_for(url).begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('29b539ebc72a')"))
    assert migrate.current_revision(url) is None
    migrate.upgrade(url)
    assert migrate.is_migrated(url)
    with engine_for(url).connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "29b539ebc72a"


def test_a_database_at_head_is_checked_without_importing_alembic(tmp_path):
    """Every process checks its database when it starts: at head that is one query, without Alembic."""
    url = f"sqlite:///{tmp_path / 'manager.db'}"
    migrate.upgrade(url)
    probe = (
        "import sys; from manager_pipeline.db.migrate import upgraded_engine; "
        f"upgraded_engine({url!r}); print('alembic' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "False\n"
