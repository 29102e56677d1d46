"""The manager's own database (plans, approvals, inbox, outbox, handed values), beside the Dagster instance.

SQLite in ``DAGSTER_HOME`` by default; ``MANAGER_DATABASE_URL`` (a SQLAlchemy URL, e.g.
``postgresql://...``) for a production deployment shared by many processes.

- ``tables.py``: every table, on one ``MetaData`` (the stores import theirs from there);
- ``migrations/``: Alembic's revisions of that schema, the first a baseline that also takes in a
  database of the releases before migrations;
- ``migrate.py``: ``upgrade``, ``is_migrated``, and ``upgraded_engine`` (what a store opens);
- ``engine.py``: the one place engines are made.
"""
