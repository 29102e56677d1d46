"""Alembic's environment: the connection comes from ``manager_pipeline.db.migrate`` (no alembic.ini).

The caller holds the connection in a transaction with the migration lock taken, so every revision
of one upgrade commits together or not at all.
"""

from alembic import context

from manager_pipeline.db.migrate import VERSION_TABLE
from manager_pipeline.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the manager's migrations through manager_pipeline.db.migrate (it passes the connection)")
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
