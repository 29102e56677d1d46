"""The deploy job on real Terraform against a moto server, run through a real Dagster instance."""

from __future__ import annotations

import hashlib
import json

import pytest
from dagster import DagsterInstance

from manager_pipeline.feedback import OutcomeStatus
from tests.support import LIGHT_MODULE, REPO, commit_all, git, run_partition

pytestmark = pytest.mark.integration


def test_plan_apply_then_replan_shows_no_changes_and_state_is_under_partition_key(manager):
    first = run_partition(manager, "app", "staging")
    assert first.success
    applied = first.output_for_node("feedback")
    assert applied.status is OutcomeStatus.APPLIED
    assert applied.plan.summary.add > 0 and applied.plan.summary.destroy == 0
    assert applied.outputs["vpc_id"].startswith("vpc-")
    assert applied.outputs["vpc_cidr"] == "10.20.0.0/16"

    state = manager.s3().get_object(Bucket=manager.bucket, Key="app/staging/terraform.tfstate")
    document = json.loads(state["Body"].read())
    assert document["outputs"]["vpc_id"]["value"] == applied.outputs["vpc_id"]
    vpcs = {r["type"] for r in document["resources"]}
    assert {"aws_vpc", "aws_subnet", "aws_internet_gateway", "aws_route_table"} <= vpcs

    second = run_partition(manager, "app", "staging")
    assert second.success
    again = second.output_for_node("feedback")
    assert again.status is OutcomeStatus.NO_CHANGES
    assert not again.plan.has_changes
    assert again.outputs["vpc_id"] == applied.outputs["vpc_id"]
    # The apply op was skipped, and the run's report says why.
    assert second.output_for_node("approval_gate", "held").status is OutcomeStatus.NO_CHANGES
    report = (manager.dagster_home / "reports" / "app" / "staging" / f"{second.run_id}.md").read_text()
    assert "No changes." in report and applied.outputs["vpc_id"] in report


def test_production_stops_after_plan_awaiting_approval(manager):
    result = run_partition(manager, "app", "production")
    assert result.success
    outcome = result.output_for_node("feedback")
    assert outcome.status is OutcomeStatus.AWAITING_APPROVAL
    assert f"awaiting approval: plan {outcome.plan.plan_id}" in outcome.headline
    # Nothing was applied: no state object exists for the partition.
    listed = manager.s3().list_objects_v2(Bucket=manager.bucket, Prefix="app/production/")
    assert listed.get("KeyCount", 0) == 0
    # The plan is kept with what a later apply must check.
    artifact = outcome.plan
    assert hashlib.sha256(artifact.plan_file.read_bytes()).hexdigest() == artifact.plan_sha256
    assert artifact.summary.add > 0 and artifact.variables_digest and artifact.module_digest


def test_feature_branch_and_pull_request_only_plan(manager, source_repo):
    manager.use_module(LIGHT_MODULE)  # which runs may apply is under test, not what terraform/ builds
    git(source_repo, "checkout", "-q", "-b", "feature")
    branch = run_partition(manager, "app", "staging")
    assert branch.output_for_node("feedback").status is OutcomeStatus.PLAN_ONLY
    assert "branch `feature`" in branch.output_for_node("feedback").headline
    git(source_repo, "checkout", "-q", "main")
    pr = run_partition(manager, "app", "staging", pr=7)
    assert pr.output_for_node("feedback").status is OutcomeStatus.PLAN_ONLY
    assert manager.s3().list_objects_v2(Bucket=manager.bucket, Prefix="app/").get("KeyCount", 0) == 0


def test_variables_at_a_given_commit_are_used(manager, source_repo):
    manager.use_module(LIGHT_MODULE)  # which commit's variables are read is under test
    variables = source_repo / "infra" / "variables.yml"
    old_sha = git(source_repo, "rev-parse", "HEAD")
    variables.write_text(variables.read_text().replace("10.20.0.0/16", "10.30.0.0/16"))
    commit_all(source_repo, "move the vpc")
    result = run_partition(manager, "app", "staging", sha=old_sha, plan_only=True)
    assert result.success
    config = result.output_for_node("validate")
    assert config.vpc_cidr == "10.20.0.0/16"
    assert result.output_for_node("plan").sha == old_sha


def test_every_optional_section_reaches_terraform_as_typed_variables(manager, source_repo):
    (source_repo / "infra" / "variables.yml").write_text((REPO / "examples" / "variables.full.yml").read_text())
    result = run_partition(manager, "app", "production", plan_only=True)
    assert result.success, [e.message for e in result.all_events if e.is_step_failure]
    tfvars = json.loads((manager.home / "workdirs" / result.run_id / "manager.auto.tfvars.json").read_text())
    assert tfvars["database"]["engine"] == "postgres" and tfvars["custom"]["nested"] == {"deep": [1, 2, 3]}
    # NAT gateway and its EIP are planned too: the sections and networking reached the module.
    assert "aws_nat_gateway.main[0]" in result.output_for_node("plan").summary.to_add


def test_invalid_variables_fail_validate_with_a_report(manager, source_repo):
    variables = source_repo / "infra" / "variables.yml"
    variables.write_text(variables.read_text().replace("networking:", "netwroking:"))
    result = run_partition(manager, "app", "staging")
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["validate"]
    description = failures[0].step_failure_data.user_failure_data.description
    assert "unknown key `netwroking`; did you mean `networking`?" in description
    report = (manager.dagster_home / "reports" / "app" / "staging" / f"{result.run_id}.md").read_text()
    assert "failed" in report and "netwroking" in report and "validate" in report


def test_no_secret_of_the_manager_reaches_logs_tags_metadata_or_reports(manager, monkeypatch):
    secret = "ghp_SEKRET0123456789abcdefSEKRET"
    monkeypatch.setenv("GITHUB_TOKEN", secret)
    monkeypatch.setenv("MANAGER_SOME_PASSWORD", secret)
    result = run_partition(manager, "app", "staging", plan_only=True)
    assert result.success
    instance = DagsterInstance.from_config(str(manager.dagster_home))
    run = instance.get_run_by_id(result.run_id)
    seen = [json.dumps(run.tags)]
    seen += [entry.message + repr(entry.dagster_event) for entry in instance.all_logs(result.run_id)]
    seen += [
        p.read_text(errors="replace")
        for p in manager.dagster_home.rglob("*")
        if p.is_file() and p.suffix in (".md", ".txt", ".json")
    ]
    seen += [
        p.read_text(errors="replace")
        for p in (manager.home / "workdirs").rglob("*")
        if p.is_file() and p.stat().st_size < 1_000_000
    ]
    # What was searched holds the run's report and the variables Terraform got.
    report = manager.dagster_home / "reports" / "app" / "staging" / f"{result.run_id}.md"
    tfvars = manager.home / "workdirs" / result.run_id / "manager.auto.tfvars.json"
    assert report.read_text() in seen and tfvars.read_text() in seen
    assert not any(secret in text for text in seen)


def test_terraform_output_streams_into_the_run_while_the_apply_goes(manager):
    """Issue 12 #6: each line Terraform prints reaches the run's log as it comes (batched by the
    second), so a long apply is watchable; the data commands' JSON never does."""
    from manager_pipeline.defs.instance import open_instance

    result = run_partition(manager, "app", "staging")
    assert result.success
    records = [
        record
        for record in open_instance(manager.settings()).all_logs(result.run_id)
        if record.user_message.startswith("apply: terraform says")
    ]
    said = "\n".join(record.user_message for record in records)
    assert "aws_vpc.main: Creating..." in said and "Apply complete!" in said
    # Streamed: several records over the apply's seconds, the first well before the last.
    assert len(records) >= 2 and records[-1].timestamp - records[0].timestamp >= 1.0
    everything = "\n".join(r.user_message for r in open_instance(manager.settings()).all_logs(result.run_id))
    assert '"format_version"' not in everything and '"sensitive":' not in everything
