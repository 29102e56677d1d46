"""The table registry and the migrations agree; upgrades are versioned, serialized and cheap at head."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from manager_pipeline.db import migrate
from manager_pipeline.db.engine import engine_for
from manager_pipeline.db.tables import metadata
from manager_pipeline.feedback.outbox import Outbox

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'manager.db'}"


def test_head_names_the_newest_revision():
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    assert scripts.get_heads() == [migrate.HEAD]


def test_the_registry_and_the_migrations_agree(url):
    migrate.upgrade(url)
    with engine_for(url).connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"version_table": migrate.VERSION_TABLE, "compare_type": True, "compare_server_default": True},
        )
        assert compare_metadata(context, metadata) == []


def test_a_new_database_is_upgraded_to_head_once(url, tmp_path):
    assert migrate.current_revision(url) is None and not migrate.is_migrated(url)
    assert not (tmp_path / "manager.db").exists()  # asking does not make it
    assert migrate.upgrade(url) is None
    assert migrate.current_revision(url) == migrate.HEAD and migrate.is_migrated(url)
    assert migrate.upgrade(url) == migrate.HEAD


def test_a_store_made_without_setup_upgrades_its_database_first(url):
    outbox = Outbox(url)
    assert migrate.is_migrated(url) and outbox.undelivered() == []


def test_a_database_of_a_newer_release_is_refused(url):
    migrate.upgrade(url)
    with engine_for(url).begin() as connection:
        connection.execute(text(f"UPDATE {migrate.VERSION_TABLE} SET version_num = '0099_from_the_future'"))
    with pytest.raises(migrate.DatabaseAheadError, match="0099_from_the_future.*does not know"):
        migrate.upgrade(url)


def test_processes_upgrading_one_new_database_at_once_take_turns(url):
    failures = []

    def one():
        try:
            migrate.upgrade(url)
        except Exception as exc:  # noqa: BLE001 - any failure of a racer is the finding
            failures.append(exc)

    racers = [threading.Thread(target=one) for _ in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert failures == [] and migrate.is_migrated(url)
    assert set(inspect(engine_for(url)).get_table_names()) == set(metadata.tables) | {migrate.VERSION_TABLE}


def test_the_migrations_are_package_data():
    # *.py of a package is installed anyway; the template of new revisions is not, unless named.
    assert '"**/*.mako"' in (ROOT / "pyproject.toml").read_text()
    migrations = ROOT / "manager_pipeline" / "db" / "migrations"
    assert (migrations / "__init__.py").is_file() and (migrations / "versions" / "__init__.py").is_file()
