"""The Dagster UI tells the truth about every partition, read from the pages a real Chromium renders:
a CLI deploy of staging materializes `infrastructure` staging|app with its outputs, a production run
waits for approval visibly, drift shows on the partition, a destroy leaves it no longer live, and the
deploy job's Partitions page counts the CLI's runs. `manager-pipeline ui` binds loopback only unless
an authenticating proxy is declared, and the links the manager prints follow its --port.

Screenshots go to $UI_SCREENSHOTS when it is set (for a person to look at), else the test's tmp_path.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from manager_pipeline.aws.standin import free_port
from tests.integration.test_destroy import config_text
from tests.integration.test_ui import graphql, render
from manager_pipeline.plans import Plans, PlanState
from tests.support import BIN, VPC_MODULE, approve_as, serving_ui, wait_until

pytestmark = pytest.mark.integration
# What the UI shows of a partition is under test (a VPC to drift and destroy), not what terraform/ builds.
TERRAFORM_DIR = VPC_MODULE

LOCATION = "manager_pipeline.defs.definitions"


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("UI_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def ui(manager):
    """`manager-pipeline ui` itself: the webserver and the daemon, on a port of its own."""
    port = free_port()
    with serving_ui(manager, [str(BIN / "manager-pipeline"), "ui", "--port", str(port)], "ui.log", timeout=120) as base:
        yield base, port


def cli(manager, *args: str) -> subprocess.CompletedProcess:
    done = manager.cli(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def page(base: str, path: str, shot: Path) -> str:
    dom = render(f"{base}{path}", screenshot=shot)
    assert shot.stat().st_size > 10_000
    return dom


def test_ui_refuses_to_listen_beyond_loopback_without_a_login_in_front(manager):
    refused = manager.cli("ui", "--host", "0.0.0.0", "--port", str(free_port()))
    assert refused.returncode == 2
    assert "refusing to serve the Dagster UI on 0.0.0.0" in refused.stderr
    assert "MANAGER_UI_AUTH=proxy" in refused.stderr
    unknown = manager.env | {"MANAGER_UI_AUTH": "yes"}
    done = subprocess.run(
        [str(BIN / "manager-pipeline"), "ui", "--host", "0.0.0.0"], cwd=manager.root, env=unknown,
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2 and "MANAGER_UI_AUTH" in done.stderr


# Five Terraform runs (an apply, a production plan, a drift check, a destroy and its apply) and eight pages.
@pytest.mark.timeout(1500)
def test_every_partition_tells_its_truth_in_the_ui(manager, ui, shots, github_standin, source_repo):
    base, port = ui
    # One code server, started by `ui`, for its webserver and its daemon (neither starts one of its own).
    assert len(processes_of(manager, "api", "grpc")) == 1
    manager.github = github_standin
    manager.write_config(config_text(f"\n  - name: app\n    path: {source_repo}"))

    # A CLI deploy of staging applies; the link the CLI prints follows `ui --port`.
    deployed = cli(manager, "run", "--source", "app", "--env", "staging")
    assert f"http://localhost:{port}/runs/" in deployed.stdout, deployed.stdout
    staging = page(base, "/assets/infrastructure?view=partitions&partition=staging%7Capp", shots / "1-staging-live.png")
    assert "Materialized" in staging and "vpc_id" in staging and "live" in staging

    # The job's Partitions page counts the CLI's run.
    statuses = graphql(
        base,
        '{ partitionSetOrError(repositorySelector: {repositoryName: "__repository__", repositoryLocationName: "'
        + LOCATION
        + '"}, partitionSetName: "deploy_partition_set") { ... on PartitionSet { partitionStatusesOrError {'
        " ... on PartitionStatuses { results { partitionName runStatus } } } } } }",
    )
    results = statuses["data"]["partitionSetOrError"]["partitionStatusesOrError"]["results"]
    assert {"partitionName": "staging|app", "runStatus": "SUCCESS"} in results, results
    jobs = page(base, f"/locations/{LOCATION}/jobs/deploy/partitions", shots / "2-deploy-partitions.png")
    assert "staging|app" in jobs or "app" in jobs

    # A production run waits for approval, and says so on its row and on the partition.
    waiting = cli(manager, "run", "--source", "app", "--env", "production")
    run_id = re.search(r"/runs/([0-9a-f-]{36})", waiting.stdout).group(1)
    runs = page(base, "/runs", shots / "3-runs.png")
    assert "awaiting-approval" in runs
    plan_page = page(
        base, "/assets/terraform_plan?view=partitions&partition=production%7Capp", shots / "4-production-plan.png"
    )
    assert "awaiting-approval" in plan_page
    checks = page(base, "/assets/terraform_plan?view=checks", shots / "5-approved-check.png")
    assert "approved" in checks and "Failed" in checks
    run_page = page(base, f"/runs/{run_id}", shots / "6-production-run.png")
    assert "awaiting-approval" in run_page

    # Drift made through the stand-in shows on the partition.
    vpc = deployed_vpc(manager)
    manager.client("ec2").create_tags(Resources=[vpc], Tags=[{"Key": "Owner", "Value": "by-hand"}])
    drifted = manager.cli("drift", "app", "--env", "staging")
    assert drifted.returncode == 2, drifted.stdout + drifted.stderr
    drift = page(base, "/assets/infrastructure?view=checks", shots / "7-drift.png")
    assert "drift" in drift and "Failed" in drift

    # After a destroy applied, the partition no longer reads as live.
    planned = cli(manager, "destroy", "app", "staging")
    plan_id = re.search(r"Destroy plan (\w+) removes", planned.stdout).group(1)
    assert approve_as(manager, "alice", plan_id, "--reason", "decommission app").returncode == 0
    # The daemon `ui` runs applies it (the approval sensor starts the apply_plan run).
    settings = manager.settings()
    store = Plans(settings.database_url, settings.plans_dir)
    wait_until(lambda: store.get(plan_id).state is PlanState.APPLIED, 240, "the destroy's apply", manager.root / "ui.log")
    destroyed = page(
        base, "/assets/infrastructure?view=partitions&partition=staging%7Capp", shots / "8-staging-destroyed.png"
    )
    assert "destroyed" in destroyed and plan_id in destroyed


def deployed_vpc(manager) -> str:
    # From this manager's own state: the stand-in is shared, and other tests' VPCs carry the same tags.
    body = manager.s3().get_object(Bucket=manager.bucket, Key="app/staging/terraform.tfstate")["Body"].read()
    return json.loads(body)["outputs"]["vpc_id"]["value"]


def processes_of(manager, *argv: str) -> list[int]:
    """The pids of this manager's processes (its DAGSTER_HOME in their environment) whose command line holds
    ``argv``, in that order."""
    home, wanted = f"DAGSTER_HOME={manager.dagster_home}".encode(), "\0".join(argv).encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if wanted in (entry / "cmdline").read_bytes() and home in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return found
