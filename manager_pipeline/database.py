"""The manager's own small tables (feedback outbox, ...), beside the Dagster instance.

SQLite in ``DAGSTER_HOME`` by default; ``MANAGER_DATABASE_URL`` (a SQLAlchemy URL, e.g.
``postgresql://...``) for a production deployment shared by many processes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from sqlalchemy import MetaData, Table, create_engine, event, func, select
from sqlalchemy.engine import Engine

metadata = MetaData()


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # A write is on disk when it commits: the receiver answers 202 only after that.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = (
        create_engine(url, future=True, pool_size=10, max_overflow=20)
        if not url.startswith("sqlite")
        else (create_engine(url, future=True, connect_args={"check_same_thread": False}, pool_size=10, max_overflow=20))
    )
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


_created: set[tuple[str, str]] = set()


def engine_for(url: str, table: Table) -> Engine:
    """The engine of ``url``, with ``table`` created if it is not there yet."""
    engine = _engine(url)
    if (url, table.name) not in _created:
        metadata.create_all(engine, tables=[table])
        _created.add((url, table.name))
    return engine


def count_by(engine: Engine, column) -> dict[str, int]:
    """How many rows hold each value of ``column``."""
    with engine.connect() as connection:
        rows = connection.execute(select(column, func.count()).group_by(column)).all()
    return {value: count for value, count in rows}
