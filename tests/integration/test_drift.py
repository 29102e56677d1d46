"""Drift (issue 12 #1) with real Terraform against the AWS stand-in: a resource changed behind the manager's
back (boto3 against moto) opens one drift issue on the GitHub stand-in, a re-apply closes it; a locked state
is reported, never forced; `manager-pipeline drift` checks now and says so in its exit code."""

from __future__ import annotations

import json

import pytest
from dagster import AssetRecordsFilter

from manager_pipeline.config.file import load_config
from manager_pipeline.defs.assets import INFRASTRUCTURE
from manager_pipeline.defs.drift import DRIFT_JOB, DRIFT_TAG, drift_tags
from manager_pipeline.defs.location import build_definitions
from manager_pipeline.defs.partitions import partition_key, sync_source_partitions
from manager_pipeline.drift.report import DriftStatus
from manager_pipeline.feedback import OutcomeStatus
from manager_pipeline.defs.instance import open_instance
from manager_pipeline.terraform import state_key
from tests.support import QUIET, VPC_MODULE, run_partition

pytestmark = pytest.mark.integration
# What a drift check does with a resource in AWS is under test here, not what terraform/ builds.
TERRAFORM_DIR = VPC_MODULE


def drift_check(manager, source: str = "app", environment: str = "staging"):
    """The drift_check job of one partition, executed in this process as `manager-pipeline drift` does."""
    settings = manager.settings()
    instance = open_instance(settings)
    sync_source_partitions(instance, load_config(settings.config_path))
    job = build_definitions(settings).resolve_job_def(DRIFT_JOB)
    result = job.execute_in_process(
        partition_key=partition_key(source, environment),
        instance=instance,
        tags=drift_tags(source, environment, "test"),
        run_config=QUIET,
        raise_on_error=False,
    )
    assert result.success
    return result, result.output_for_node("check_drift")


def applied_vpc(manager, **event) -> str:
    result = run_partition(manager, "app", "staging", branch="main", **event)
    assert result.success
    outcome = result.output_for_node("feedback")
    assert outcome.status is OutcomeStatus.APPLIED
    return outcome.outputs["vpc_id"]


def ec2(manager):
    return manager.client("ec2")


def drift_issues(github_standin, repo: str) -> list[dict]:
    marker = "<!-- manager-pipeline drift app/staging -->"
    return [issue for issue in github_standin.state(repo)["issues"] if marker in issue["body"]]


def test_a_change_behind_the_managers_back_opens_one_drift_issue_and_a_reapply_closes_it(
    manager, github_standin, github_source
):
    repo = github_source["name"]
    vpc = applied_vpc(manager, sha=github_source["head"])
    _, clean = drift_check(manager)
    assert clean.status is DriftStatus.NO_DRIFT and drift_issues(github_standin, repo) == []

    ec2(manager).create_tags(Resources=[vpc], Tags=[{"Key": "Owner", "Value": "set-by-hand-4471"}])
    first, found = drift_check(manager)
    assert found.status is DriftStatus.DRIFT
    assert [(r.address, r.attributes) for r in found.report.resources] == [
        ("aws_vpc.main", ("tags.Owner", "tags_all.Owner"))
    ]
    [issue] = drift_issues(github_standin, repo)
    assert issue["state"] == "open" and issue["title"] == "Infrastructure drift: app / staging"
    assert "| `aws_vpc.main` | `tags.Owner`, `tags_all.Owner` |" in issue["body"]
    assert f"/runs/{first.run_id}" in issue["body"] and "set-by-hand-4471" not in issue["body"]
    # In the UI: the run's tag, and an observation of the partition of the `infrastructure` asset.
    instance = open_instance(manager.settings())
    assert instance.get_run_by_id(first.run_id).tags[DRIFT_TAG] == "drift"
    records = instance.fetch_observations(AssetRecordsFilter(INFRASTRUCTURE, asset_partitions=["staging|app"]), 5)
    observation = records.records[0].asset_observation
    assert observation.partition == "staging|app" and observation.metadata["status"].value == "drift"

    # A later check that still finds it updates the one issue (its run link); it opens no other.
    again, _ = drift_check(manager)
    [issue] = drift_issues(github_standin, repo)
    assert f"/runs/{again.run_id}" in issue["body"] and issue["edits"] == 1 and issue["state"] == "open"

    # A partition whose state is locked: reported, not forced; the issue is left as it was.
    s3, lock = manager.s3(), state_key("app", "staging") + ".tflock"
    held = {"ID": "5e1f-held-by-hand", "Operation": "OperationTypeApply", "Info": "", "Who": "ops@elsewhere",
            "Version": "1.15.5", "Created": "2026-11-30T10:00:00Z", "Path": f"{manager.bucket}/{lock[:-7]}"}
    s3.put_object(Bucket=manager.bucket, Key=lock, Body=json.dumps(held).encode())
    locked_run, locked = drift_check(manager)
    assert locked.status is DriftStatus.LOCKED and "5e1f-held-by-hand" in locked.detail
    assert "manager-pipeline unlock app staging 5e1f-held-by-hand" in locked.detail  # how, not done
    assert json.loads(s3.get_object(Bucket=manager.bucket, Key=lock)["Body"].read()) == held
    assert instance.get_run_by_id(locked_run.run_id).tags[DRIFT_TAG] == "locked"
    [issue] = drift_issues(github_standin, repo)
    assert issue["edits"] == 1 and issue["state"] == "open"
    s3.delete_object(Bucket=manager.bucket, Key=lock)

    # A re-apply puts the tag back as declared, and closes the issue saying so.
    applied_vpc(manager, sha=github_source["head"])
    [issue] = drift_issues(github_standin, repo)
    assert issue["state"] == "closed"
    [comment] = [c for c in github_standin.state(repo)["issue_comments"] if c["issue"] == issue["number"]]
    assert "No drift any more: plan" in comment["body"] and "was applied" in comment["body"]
    _, after = drift_check(manager)
    assert after.status is DriftStatus.NO_DRIFT and len(drift_issues(github_standin, repo)) == 1


def test_drift_now_from_the_cli_path_sources_get_the_report_and_the_exit_code_says_drift(manager):
    vpc = applied_vpc(manager)
    ec2(manager).modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": False})
    ec2(manager).create_tags(Resources=[vpc], Tags=[{"Key": "Owner", "Value": "set-by-hand-9902"}])
    done = manager.cli("drift")
    assert done.returncode == 2, done.stderr
    assert done.stdout.splitlines()[:2] == [
        "staging|app: drift: 1 resource changed outside the manager: aws_vpc.main: "
        "enable_dns_hostnames, tags.Owner, tags_all.Owner",
        "production|app: no state: never applied by the manager",
    ]
    reports = sorted((manager.settings().reports_dir / "app" / "staging").glob("*.md"), key=lambda p: p.stat().st_mtime)
    report = reports[-1].read_text()
    assert report.startswith("## Drift check `app` / `staging`: drift")
    assert "| `aws_vpc.main` | `enable_dns_hostnames`, `tags.Owner`, `tags_all.Owner` |" in report
    assert "set-by-hand-9902" not in report

    wrong = manager.cli("drift", "app", "--env", "prod")
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.strip().splitlines()[-1] == (
        "error: unknown environment `prod`; did you mean `production`? (known: staging, production)"
    )
