"""The plan store: one record per plan, moved only by compare-and-set transitions."""

from __future__ import annotations

import stat
import threading

import pytest

from manager_pipeline.plans import PlanFacts, Plans, PlanState
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
