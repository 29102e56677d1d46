"""Issue 19 #9: what holds tfvars, plans and reports is the owner's only (folders 0700, files 0600),
whatever the umask of the process that made it, and a home made 0755 by an older manager is closed."""

from __future__ import annotations

import os
import stat

import pytest
from sqlalchemy import text

from manager_pipeline.db.engine import engine_for
from manager_pipeline.defs.instance import prepare_home
from manager_pipeline.feedback.local import LocalReportSink
from manager_pipeline.settings import Settings


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def loose_umask():
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def test_the_dagster_home_the_database_and_reports_are_the_owners_only(tmp_path, loose_umask, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    (tmp_path / "manager.yaml").write_text("sources: []\n")
    settings = Settings.from_env({"MANAGER_CONFIG": str(tmp_path / "manager.yaml"), "MANAGER_HOME": str(tmp_path / "m")})
    settings.dagster_home.mkdir(parents=True, mode=0o755)  # as an older manager left it
    home = prepare_home(settings)
    assert mode(home) == 0o700

    engine = engine_for(settings.database_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
    database = home / "manager.db"
    assert settings.database_url == f"sqlite:///{database}"
    made = [path for path in home.iterdir() if path.name.startswith("manager.db")]
    assert database in made and {path.name: mode(path) for path in made} == {path.name: 0o600 for path in made}

    report = LocalReportSink(home / "reports").write("app", "production", "run-1", "# applied\n")
    assert mode(report) == 0o600
    assert {mode(folder) for folder in (home / "reports", report.parent.parent, report.parent)} == {0o700}


def test_an_existing_database_file_is_closed_too(tmp_path, loose_umask):
    database = tmp_path / "old.db"
    database.touch(mode=0o644)
    os.chmod(database, 0o644)
    with engine_for(f"sqlite:///{database}").connect() as connection:
        connection.execute(text("SELECT 1"))
    assert mode(database) == 0o600
