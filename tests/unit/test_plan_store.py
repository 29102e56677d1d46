"""The plan store: one record per plan, moved only by compare-and-set transitions."""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time

import pytest

from manager_pipeline.errors import ManagerError
from manager_pipeline.plans import PlanFacts, Plans, PlanState
from manager_pipeline.settings import Settings
from manager_pipeline.terraform.plan import PlanSummary


@pytest.fixture
def store(tmp_path):
    return Plans(f"sqlite:///{tmp_path / 'manager.db'}", tmp_path / "plans")


def save(store, tmp_path, source="web", environment="production"):
    plan_file = tmp_path / "plan.tfplan"
    plan_file.write_bytes(b"binary plan " + source.encode())
    facts = PlanFacts(
        source=source,
        environment=environment,
        sha="a" * 40,
        branch="main",
        pr=None,
        author="bob",
        repo="acme/web",
        variables_digest="v",
        module_digest="m",
        terraform_version="1.15.5",
        has_changes=True,
        summary=PlanSummary(to_add=("aws_vpc.main",)),
        planned_outputs={"vpc_cidr": "10.0.0.0/16"},
        tfvars={"project_name": "web"},
        run_id="run-1",
    )
    return store.save(plan_file, "Plan: 1 to add", facts)


def test_a_saved_plan_is_one_record_read_back_whole_with_private_files(store, tmp_path):
    plan = save(store, tmp_path)
    again = store.get(plan.plan_id)
    assert again == plan
    assert again.text() == "Plan: 1 to add" and again.summary.to_add == ("aws_vpc.main",)
    assert stat.S_IMODE(plan.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(plan.plan_file.stat().st_mode) == 0o600


def test_transitions_follow_the_state_machine_and_say_whether_they_happened(store, tmp_path):
    plan = save(store, tmp_path)
    assert not store.transition(plan.plan_id, PlanState.APPLYING)  # planned, not approved
    assert store.transition(plan.plan_id, PlanState.AWAITING)
    assert not store.transition(plan.plan_id, PlanState.APPLYING)  # awaiting, not approved
    assert store.transition(plan.plan_id, PlanState.APPROVED)
    assert store.transition(plan.plan_id, PlanState.APPLYING, apply_run_id="run-2")
    assert not store.transition(plan.plan_id, PlanState.APPLYING, apply_run_id="run-3")
    assert store.transition(plan.plan_id, PlanState.APPLIED)
    assert not store.transition(plan.plan_id, PlanState.FAILED)  # the loser never writes over "applied"
    final = store.get(plan.plan_id)
    assert final.state is PlanState.APPLIED and final.apply_run_id == "run-2"


def test_of_many_racing_applies_exactly_one_wins(store, tmp_path):
    plan = save(store, tmp_path)
    store.transition(plan.plan_id, PlanState.APPROVED)
    wins = []

    def race(n):
        if store.transition(plan.plan_id, PlanState.APPLYING, apply_run_id=f"run-{n}"):
            wins.append(n)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1 and store.get(plan.plan_id).apply_run_id == f"run-{wins[0]}"


def test_a_new_candidate_supersedes_the_waiting_ones_of_its_partition_only(store, tmp_path):
    old = save(store, tmp_path)
    other = save(store, tmp_path, source="api")
    store.transition(old.plan_id, PlanState.AWAITING)
    store.transition(other.plan_id, PlanState.AWAITING)
    new = save(store, tmp_path)
    store.transition(new.plan_id, PlanState.AWAITING)
    assert store.get(old.plan_id).state is PlanState.SUPERSEDED
    assert f"superseded by plan {new.plan_id}" in store.get(old.plan_id).note
    assert store.get(other.plan_id).state is PlanState.AWAITING
    assert store.newest_candidate("web", "production").plan_id == new.plan_id


# --- pruning: the files of plans that can never be applied again go; their rows stay ------------

DAY = 24 * 3600.0


def age(store, plan_id, days):
    """Set the plan's last change ``days`` ago (the row's own timestamps)."""
    from sqlalchemy import update

    from manager_pipeline.plans.store import plans_table

    with store.engine.begin() as connection:
        connection.execute(
            update(plans_table)
            .where(plans_table.c.plan_id == plan_id)
            .values(created_at=time.time() - days * DAY, changed_at=time.time() - days * DAY)
        )


class FakeRemote:
    def __init__(self):
        self.files: dict[tuple[str, str], bytes] = {}

    def put(self, plan_id, name, path):
        self.files[(plan_id, name)] = path.read_bytes()

    def get(self, plan_id, name, path):
        if (plan_id, name) not in self.files:
            return False
        path.write_bytes(self.files[(plan_id, name)])
        return True

    def delete(self, plan_id, name):
        self.files.pop((plan_id, name), None)


def test_an_old_applied_plan_loses_its_files_and_keeps_its_row_with_a_note(tmp_path):
    remote = FakeRemote()
    store = Plans(f"sqlite:///{tmp_path / 'manager.db'}", tmp_path / "plans", remote, retention_s=30 * DAY)
    plan = save(store, tmp_path)
    for state in (PlanState.APPROVED, PlanState.APPLYING, PlanState.APPLIED):
        assert store.transition(plan.plan_id, state, note="approved by alice" if state is PlanState.APPROVED else None)
    age(store, plan.plan_id, 31)
    assert store.prune().plan_ids == [plan.plan_id]
    assert not plan.directory.exists() and not any(key[0] == plan.plan_id for key in remote.files)
    kept = store.find(plan.plan_id)
    assert kept.state is PlanState.APPLIED and kept.plan_sha256 == plan.plan_sha256
    assert kept.files_pruned_at is not None and plan.files_pruned_at is None
    assert kept.summary.to_add == ("aws_vpc.main",)
    assert kept.note == "approved by alice; its files were pruned after 30 days (MANAGER_PLAN_RETENTION) on " + (
        time.strftime("%Y-%m-%d", time.gmtime())
    )
    # An apply of it is a clear refusal, never a crash and never a fetch from the remote.
    with pytest.raises(ManagerError, match=r"can never be applied: .*its files were pruned after 30 days"):
        store.get(plan.plan_id)
    assert not plan.directory.exists()
    assert store.prune().plan_ids == []  # nothing left to do: the row is marked


def test_plans_that_may_still_be_applied_or_ended_recently_are_kept_whole(store, tmp_path):
    waiting = save(store, tmp_path)
    store.transition(waiting.plan_id, PlanState.AWAITING)
    planned = save(store, tmp_path, source="api")
    refused = save(store, tmp_path, source="db")
    store.transition(refused.plan_id, PlanState.AWAITING)
    store.transition(refused.plan_id, PlanState.REFUSED, note="sha256 differs")
    age(store, waiting.plan_id, 400)
    age(store, planned.plan_id, 400)
    age(store, refused.plan_id, 29)
    assert store.prune().plan_ids == []
    for plan in (waiting, planned, refused):
        assert store.get(plan.plan_id).text() == "Plan: 1 to add"
    assert store.find(refused.plan_id).note == "sha256 differs"


def test_the_retention_counts_from_the_last_change_not_from_the_planning(store, tmp_path):
    plan = save(store, tmp_path)
    store.transition(plan.plan_id, PlanState.AWAITING)
    age(store, plan.plan_id, 40)
    store.transition(plan.plan_id, PlanState.EXPIRED)  # ended today, planned 40 days ago
    assert store.prune().plan_ids == []
    assert store.prune(now=time.time() + 31 * DAY).plan_ids == [plan.plan_id]


def test_pruning_runs_at_most_once_an_hour_per_store(store, tmp_path):
    plan = save(store, tmp_path)
    store.transition(plan.plan_id, PlanState.PREVIEW)
    now = time.time()
    assert store.prune_if_due(now) is not None
    age(store, plan.plan_id, 31)
    assert store.prune_if_due(now + 1800) is None  # not due: the plan waits for the next pass
    assert plan.plan_file.exists()
    assert store.prune_if_due(now + 3601).plan_ids == [plan.plan_id]


def test_local_copies_of_plans_pruned_elsewhere_and_old_orphan_folders_go(tmp_path):
    url = f"sqlite:///{tmp_path / 'manager.db'}"
    here, there = Plans(url, tmp_path / "here"), Plans(url, tmp_path / "there")
    plan = save(here, tmp_path)
    store_copy = tmp_path / "there" / plan.plan_id
    shutil.copytree(plan.directory, store_copy)  # the cache of another machine
    here.transition(plan.plan_id, PlanState.PREVIEW)
    age(here, plan.plan_id, 31)
    orphan, young = tmp_path / "there" / "abc123", tmp_path / "there" / "def456"
    orphan.mkdir()
    young.mkdir()
    os.utime(orphan, (time.time() - 31 * DAY,) * 2)
    assert here.prune().plan_ids == [plan.plan_id]
    assert store_copy.exists()
    there.prune()
    assert not store_copy.exists() and not orphan.exists() and young.exists()


def test_a_store_of_an_older_release_gets_its_new_columns(tmp_path):
    import sqlite3

    database = tmp_path / "old.db"
    connection = sqlite3.connect(database)
    connection.execute(
        "CREATE TABLE plan_records (plan_id VARCHAR(32) PRIMARY KEY, source VARCHAR(100) NOT NULL, "
        "environment VARCHAR(100) NOT NULL, sha VARCHAR(64), branch VARCHAR(255), branch_verified BOOLEAN NOT NULL, "
        "pr INTEGER, author VARCHAR(100), repo VARCHAR(200), created_at FLOAT NOT NULL, "
        "plan_sha256 VARCHAR(64) NOT NULL, variables_digest VARCHAR(64) NOT NULL, module_digest VARCHAR(64) NOT NULL, "
        "terraform_version VARCHAR(32) NOT NULL, has_changes BOOLEAN NOT NULL, summary TEXT NOT NULL, "
        "planned_outputs TEXT NOT NULL, tfvars TEXT NOT NULL, state VARCHAR(32) NOT NULL, run_id VARCHAR(64), "
        "apply_run_id VARCHAR(64), note TEXT)"
    )
    connection.execute(
        "INSERT INTO plan_records VALUES ('0123abcd', 'web', 'production', NULL, 'main', 1, NULL, NULL, NULL, ?, "
        "'s', 'v', 'm', '1.15.5', 1, '{}', '{}', '{}', 'applied', NULL, NULL, NULL)",
        (time.time() - 400 * DAY,),
    )
    connection.commit()
    connection.close()
    store = Plans(f"sqlite:///{database}", tmp_path / "plans")
    assert store.find("0123abcd").state is PlanState.APPLIED
    assert store.find("0123abcd").destroy is False  # older releases made no destroy plans
    # When an old row last changed is unknown: it gets the whole retention from the upgrade on.
    assert store.prune().plan_ids == []
    assert store.prune(now=time.time() + 31 * DAY).plan_ids == ["0123abcd"]


@pytest.mark.parametrize(("value", "hours"), [(None, 30 * 24), ("12h", 12), ("7d", 168), ("2", 2)])
def test_the_plan_retention_reads_like_the_workdir_retention(tmp_path, value, hours):
    env = {"MANAGER_CONFIG": str(tmp_path / "manager.yaml")}
    if value:
        env |= {"MANAGER_PLAN_RETENTION": value, "MANAGER_WORKDIR_RETENTION": value}
    settings = Settings.from_env(env)
    assert settings.plan_retention_hours == hours
    if value:
        assert settings.workdir_retention_hours == hours
    assert build_resources_plans(settings).plan_retention_hours == hours


def build_resources_plans(settings):
    from manager_pipeline.defs.resources import build_resources

    return build_resources(settings)["plans"]


@pytest.mark.parametrize("value", ["a month", "-1d", "nan", "0"])
def test_a_bad_plan_retention_is_a_one_line_error(tmp_path, value):
    """A negative or zero retention would prune every finished plan at once: refused like a typo."""
    with pytest.raises(ValueError) as error:
        Settings.from_env({"MANAGER_CONFIG": str(tmp_path / "manager.yaml"), "MANAGER_PLAN_RETENTION": value})
    assert str(error.value) == (
        f"MANAGER_PLAN_RETENTION={value!r} is not a duration: give hours or days above zero, e.g. 12h or 7d"
    )


def test_files_that_cannot_be_removed_leave_the_row_unmarked_for_the_next_pass(tmp_path):
    class BrokenRemote(FakeRemote):
        def delete(self, plan_id, name):
            raise OSError("access denied")

    store = Plans(f"sqlite:///{tmp_path / 'manager.db'}", tmp_path / "plans", BrokenRemote(), retention_s=30 * DAY)
    plan = save(store, tmp_path)
    store.transition(plan.plan_id, PlanState.PREVIEW)
    age(store, plan.plan_id, 31)
    pruned = store.prune()
    assert pruned.plan_ids == [] and pruned.problems == [
        f"the files of plan {plan.plan_id} could not be removed: access denied"
    ]
    assert plan.plan_file.exists() and store.get(plan.plan_id).note is None


def test_the_plans_command_says_which_plans_lost_their_files(tmp_path, monkeypatch, capsys):
    from manager_pipeline.cli import main

    (tmp_path / "manager.yaml").write_text("sources: []\nenvironments: {staging: {}, production: {}}\n")
    monkeypatch.setenv("MANAGER_CONFIG", str(tmp_path / "manager.yaml"))
    monkeypatch.setenv("MANAGER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    monkeypatch.delenv("MANAGER_DATABASE_URL", raising=False)
    settings = Settings.from_env()
    settings.dagster_home.mkdir(parents=True)
    store = Plans(settings.database_url, settings.plans_dir)
    old, new = save(store, tmp_path, source="old"), save(store, tmp_path, source="new")
    for plan in (old, new):
        assert store.transition(plan.plan_id, PlanState.PREVIEW)
    age(store, old.plan_id, 31)
    assert store.prune().plan_ids == [old.plan_id]
    assert main(["plans"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "preview (files pruned)" in lines[old.plan_id]
    assert "pruned" not in lines[new.plan_id] and "preview" in lines[new.plan_id]
