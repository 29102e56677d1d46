"""The manager's own small tables (feedback outbox, ...), beside the Dagster instance.

SQLite in ``DAGSTER_HOME`` by default; ``MANAGER_DATABASE_URL`` (a SQLAlchemy URL, e.g.
``postgresql://...``) for a production deployment shared by many processes.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine

metadata = MetaData()


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    engine = create_engine(url, future=True)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    metadata.create_all(engine)
    return engine
