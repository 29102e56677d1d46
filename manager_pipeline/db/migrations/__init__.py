"""Alembic's migrations of the manager's database (run by ``manager_pipeline.db.migrate``)."""
