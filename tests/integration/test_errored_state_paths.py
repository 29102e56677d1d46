"""Every operation that plans walks the same data path as the deploy job: a state a failed apply could
not save (kept in the partition's errored-state folder) is pushed before the drift check and the fleet
preview plan, as it is before a deploy's plan, so neither reports what the failed apply made as missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from manager_pipeline.drift.report import DriftStatus
from manager_pipeline.terraform import state_key
from tests.integration.test_drift import drift_check
from tests.support import EXAMPLE_VARIABLES, VPC_MODULE, build_manager, make_source_repo, run_partition

pytestmark = pytest.mark.integration


def keep_a_newer_state(manager) -> tuple[Path, int]:
    """What a failed apply leaves: the partition's state as Terraform had it, one serial ahead of the
    backend's, in the folder the next run pushes from. The serial it carries."""
    s3 = manager.client("s3")
    key = state_key("app", "staging")
    state = json.loads(s3.get_object(Bucket=manager.bucket, Key=key)["Body"].read())
    state["serial"] += 1
    folder = manager.settings().home / "errored-state" / "app" / "staging"
    folder.mkdir(parents=True)
    kept = folder / "1.tfstate"
    kept.write_text(json.dumps(state))
    return kept, state["serial"]


def backend_serial(manager) -> int:
    body = manager.client("s3").get_object(Bucket=manager.bucket, Key=state_key("app", "staging"))["Body"].read()
    return json.loads(body)["serial"]


@pytest.fixture
def applied(tmp_path, moto_endpoint, tools_dir):
    source = make_source_repo(tmp_path / "app", EXAMPLE_VARIABLES.read_text())
    manager = build_manager(tmp_path / "manager", moto_endpoint, tools_dir, {"app": source})
    # What is planned over the pushed state is not under test: one VPC, not all of terraform/.
    manager.use_module(VPC_MODULE)
    assert run_partition(manager, "app", "staging", branch="main").success
    return manager


def test_the_drift_check_pushes_a_kept_errored_state_before_it_plans(applied):
    kept, serial = keep_a_newer_state(applied)
    _, check = drift_check(applied)
    assert not kept.exists() and kept.with_suffix(".pushed").exists()
    assert backend_serial(applied) >= serial
    assert check.status is DriftStatus.NO_DRIFT, check.detail


def test_the_fleet_preview_pushes_a_kept_errored_state_before_it_plans(applied):
    kept, serial = keep_a_newer_state(applied)
    done = applied.cli("preview", "--source", "app", "--env", "staging")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not kept.exists() and kept.with_suffix(".pushed").exists()
    assert backend_serial(applied) >= serial
