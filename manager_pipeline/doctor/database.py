"""The manager's database: reachable, and migrated, i.e. at this release's newest Alembic revision
(``db/migrate.py``: ``current_revision`` against ``HEAD``). Reading the revision changes nothing;
a SQLite file that is not there yet is not created."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from manager_pipeline.db.migrate import HEAD, current_revision
from manager_pipeline.doctor.result import CheckResult, failed, ok

NAME = "database"


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL too broken to show is not shown
        return "MANAGER_DATABASE_URL"


def check_database(url: str) -> CheckResult:
    """MANAGER_DATABASE_URL (or the SQLite file in DAGSTER_HOME) answers, at revision ``HEAD``."""
    shown = _shown(url)
    try:
        revision = current_revision(url)
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return failed(
            NAME, f"the manager's database does not answer ({shown}): {cause}; check it is up and MANAGER_DATABASE_URL"
        )
    except (ImportError, ValueError) as exc:
        return failed(NAME, f"MANAGER_DATABASE_URL is not usable ({type(exc).__name__}): give a SQLAlchemy URL")
    if revision is None:
        return failed(
            NAME,
            f"{shown} is not migrated (no revision; this release's is {HEAD}): run `manager-pipeline setup`, which "
            "creates and migrates it",
        )
    if revision != HEAD:
        return failed(
            NAME,
            f"{shown} is at revision {revision}, this release's is {HEAD}: run `manager-pipeline setup` to migrate it "
            "(or a newer release, if a newer one migrated it)",
        )
    return ok(NAME, f"{shown} answers, migrated (revision {HEAD})")
