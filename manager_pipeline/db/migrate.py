"""Bringing the manager's database to the schema of ``db/tables.py``: Alembic, run from here.

``manager-pipeline setup`` upgrades it, and so does every process before its first use of it (the
code location when it loads, a store made without setup): ``upgraded_engine`` upgrades once per
process and database. A database of a release before migrations (tables, no ``VERSION_TABLE``)
takes the baseline revision like a new one: it adds only what is missing.

A database already at ``HEAD`` costs two small queries (is there a version table, what does it say), and
Alembic is not even imported (importing it takes a few hundred milliseconds, which every CLI command
and code-location load would pay).

Upgrades are serialized: one process migrates while the others wait on a lock (PostgreSQL's
advisory lock, SQLite's write lock), then find the database at head. All revisions of one upgrade
commit together, or not at all.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from manager_pipeline.db.engine import engine_for, sqlite_path
from manager_pipeline.errors import ManagerError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest revision in migrations/versions/: a new revision moves it (tests/unit/test_db_migrations.py
# checks that it is Alembic's head).
HEAD = "0002_source_repositories"
# Where the database keeps its revision: not Alembic's default `alembic_version`, which Dagster's own
# storage keeps when the instance shares the database (PostgreSQL).
VERSION_TABLE = "manager_alembic_version"
# The key of PostgreSQL's advisory lock held while migrating (a constant of this database's own).
_PG_LOCK_KEY = 0x6D616E61676572

_UPGRADED: set[str] = set()
_UPGRADING = threading.Lock()


class DatabaseAheadError(ManagerError):
    """The database was migrated by a newer release than this one."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the manager's migrations, on ``connection`` (no alembic.ini)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def current_revision(url: str) -> str | None:
    """The database's revision; None when it was never migrated (or, for SQLite, does not exist yet)."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None
    with engine_for(url).connect() as connection:
        return _revision(connection)


def is_migrated(url: str) -> bool:
    """Whether the database is at this release's newest revision (``manager-pipeline setup`` brings it there)."""
    return current_revision(url) == HEAD


def _lock(connection: Connection) -> None:
    """Hold the migration lock until the connection's transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
    elif connection.dialect.name == "sqlite":
        # pysqlite begins no transaction for DDL: take the write lock now, for the whole upgrade.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def upgrade(url: str) -> str | None:
    """Bring the database at ``url`` to ``HEAD`` now; the revision it was at before.

    At head it only reads the revision. A database of a newer release is refused
    (``DatabaseAheadError``): this release does not know its schema.
    """
    with engine_for(url).connect() as connection:
        before = _revision(connection)
        connection.rollback()
        if before == HEAD:
            return before
        from alembic import command

        with connection.begin():
            _lock(connection)
            # Read again under the lock: another process may have migrated meanwhile.
            before = _revision(connection)
            if before is not None and before not in _known_revisions():
                raise DatabaseAheadError(
                    f"the manager's database is at revision {before}, which this release does not know (its newest "
                    f"is {HEAD}): run the release that migrated it, or a newer one"
                )
            command.upgrade(alembic_config(connection), "head")
    return before


def upgraded_engine(url: str) -> Engine:
    """The engine of ``url``, its database upgraded first: once per process and database."""
    if url not in _UPGRADED:
        with _UPGRADING:
            if url not in _UPGRADED:
                upgrade(url)
                _UPGRADED.add(url)
    return engine_for(url)
