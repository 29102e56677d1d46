"""Decommissioning end to end: a destroy plan waits for approval even in auto-applying staging, applies
nothing until approved, then removes the resources from the AWS stand-in; the source's partition stays
while its state holds infrastructure and is retired after; the state before the destroy stays readable."""

from __future__ import annotations

import json
import re
import shutil

import boto3
import pytest
from botocore.exceptions import ClientError
from dagster import DeleteDynamicPartitionsRequest

from manager_pipeline.defs.instance import open_instance
from manager_pipeline.plans import Plans, PlanState
from tests.support import REPO, approve_as, run_partition, sensor_tick

pytestmark = pytest.mark.integration

STAGING_KEY = "app/staging/terraform.tfstate"


def config_text(sources: str) -> str:
    # Staging applies without approval; only its approvers may approve a destroy there.
    return (
        f"sources:{sources}\n"
        "environments:\n"
        "  staging: {auto_apply: true, approvers: [alice]}\n"
        "  production: {auto_apply: false, approvers: [alice]}\n"
        f"terraform_dir: {REPO / 'terraform'}\n"
    )


def vpc_exists(manager, vpc_id: str) -> bool:
    ec2 = boto3.client(
        "ec2",
        endpoint_url=manager.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        return bool(ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"])
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "InvalidVpcID.NotFound"
        return False


def plans_of(manager) -> list:
    settings = manager.settings()
    return Plans(settings.database_url, settings.plans_dir).list_plans(source="app")


def sync_partitions(manager):
    """One tick of the partition sync sensor against the stand-in; (its result, the source partitions after)."""
    result = sensor_tick(manager, "sync_source_partitions", "aws")
    instance = open_instance(manager.settings())
    # What the daemon does with the tick's requests.
    for request in getattr(result, "dynamic_partitions_requests", None) or []:
        if isinstance(request, DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    return result, set(instance.get_dynamic_partitions("source"))


def test_destroy_needs_approval_and_removes_the_resources_from_the_stand_in(manager, source_repo, github_standin):
    manager.github = github_standin  # vouches for the approver's own token
    manager.write_config(config_text(f"\n  - name: app\n    path: {source_repo}"))
    nothing = manager.cli("destroy", "app", "production")
    assert nothing.returncode == 0, nothing.stderr
    assert f"app/production: nothing to destroy: there is no state at s3://{manager.bucket}/app/production" in (
        nothing.stdout
    )
    assert plans_of(manager) == []

    deployed = run_partition(manager, "app", "staging")
    assert deployed.success
    vpc_id = deployed.output_for_node("feedback").outputs["vpc_id"]
    assert vpc_exists(manager, vpc_id)

    # Removing the source plans the destroy of each environment with state, then its entry goes; its
    # repository goes too: its partition stays, reported, until the destroy is applied.
    planned = manager.cli("remove-source", "app", "--destroy")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "app/production: nothing to destroy" in planned.stdout
    assert "removed source `app`" in planned.stdout and "name: app" not in manager.config_path.read_text()
    shutil.rmtree(source_repo)
    waiting, partitions = sync_partitions(manager)
    assert "app" in partitions
    assert "`manager-pipeline destroy app staging`" in waiting.skip_message
    assert f"s3://{manager.bucket}/{STAGING_KEY}" in waiting.skip_message

    plan_id = re.search(r"Destroy plan (\w+) removes \d+ resource\(s\)", planned.stdout).group(1)
    assert "  - aws_vpc.main\n" in planned.stdout and "awaiting approval: destroy plan" in planned.stdout
    record = next(plan for plan in plans_of(manager) if plan.plan_id == plan_id)
    assert record.destroy and record.state is PlanState.AWAITING
    listed = manager.cli("plans", "--source", "app").stdout
    assert re.search(rf"{plan_id} +staging\|app +awaiting-approval \(DESTROY\)", listed), listed

    unapproved = manager.cli("apply", plan_id)
    assert unapproved.returncode == 1 and "has 0 of 1 required approval(s)" in unapproved.stderr
    assert vpc_exists(manager, vpc_id)

    approved = approve_as(manager, "alice", plan_id, "--reason", "decommission app")
    assert approved.returncode == 0, approved.stderr
    # The daemon would start its apply, although the source left manager.yaml.
    requests = sensor_tick(manager, "approve_plans", "plans", "github").run_requests
    assert [(r.run_key, r.tags[".dagster/manager/destroy"]) for r in requests] == [(f"apply:{plan_id}", "true")]
    applied = manager.cli("apply", plan_id)
    assert applied.returncode == 0, applied.stderr
    assert not vpc_exists(manager, vpc_id)

    # The state is empty now, and the one before the destroy is still there, versioned.
    s3 = manager.s3()
    current = json.loads(s3.get_object(Bucket=manager.bucket, Key=STAGING_KEY)["Body"].read())
    assert current["resources"] == []
    versions = s3.list_object_versions(Bucket=manager.bucket, Prefix=STAGING_KEY)["Versions"]
    older = [
        json.loads(s3.get_object(Bucket=manager.bucket, Key=STAGING_KEY, VersionId=v["VersionId"])["Body"].read())
        for v in versions
        if v["Key"] == STAGING_KEY and not v["IsLatest"]
    ]
    assert any(vpc_id in json.dumps(state) for state in older)

    # The report of the apply lists what was destroyed.
    run_id = re.search(r"Run (\S+) finished: applied", applied.stdout).group(1)
    report = (manager.settings().reports_dir / "app" / "staging" / f"{run_id}.md").read_text()
    assert "**DESTROY: " in report and "Destroyed " in report and "`aws_vpc.main`" in report

    # Retired once its destroy applied; a second destroy has nothing to do and plans nothing.
    _, partitions = sync_partitions(manager)
    assert "app" not in partitions
    again = manager.cli("destroy", "app", "staging")
    assert again.returncode == 0, again.stderr
    assert "app/staging: nothing to destroy: its state" in again.stdout and "holds no resources" in again.stdout
    assert [plan.destroy for plan in plans_of(manager)] == [False, True]  # the deploy and the destroy only
