"""The one place that makes engines for the manager's database (``MANAGER_DATABASE_URL``).

SQLite in ``DAGSTER_HOME`` by default; a SQLAlchemy URL (e.g. ``postgresql://...``) for a
production deployment shared by many processes. An engine made here knows nothing of the schema:
the stores take theirs from ``db/migrate.py``, which upgrades the database first.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Engine

from manager_pipeline.files import private_file


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # A write is on disk when it commits: the receiver answers 202 only after that.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database, or SQLite in memory)."""
    if not url.startswith("sqlite:///") or url in ("sqlite:///", "sqlite:///:memory:"):
        return None
    return Path(url.removeprefix("sqlite:///"))


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """The engine of ``url``, one per process (its pool is shared by every store)."""
    path = sqlite_path(url)
    if path is not None:
        # It holds tfvars and plans: made owner-only before SQLite opens it (its -wal and -shm files
        # take the database file's mode).
        path.parent.mkdir(parents=True, exist_ok=True)
        private_file(path)
    if not url.startswith("sqlite"):
        return create_engine(url, future=True, pool_size=10, max_overflow=20)
    engine = create_engine(url, future=True, connect_args={"check_same_thread": False}, pool_size=10, max_overflow=20)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def count_by(engine: Engine, column) -> dict[str, int]:
    """How many rows hold each value of ``column``."""
    with engine.connect() as connection:
        rows = connection.execute(select(column, func.count()).group_by(column)).all()
    return {value: count for value, count in rows}
