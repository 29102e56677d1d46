"""The policy stage in real deploy runs (real Terraform on the stand-in, real checkov): a public bucket
asked for in production gives a policy-failed plan that an approval cannot move; the same in staging
applies with a warning; a custom policy (a required tag) refuses a plan without it; an engine that
times out fails the stage, never passes it."""

from __future__ import annotations

import logging
import re
import shutil

import pytest

from manager_pipeline.config.file import load_config
from manager_pipeline.defs.instance import open_instance
from manager_pipeline.defs.policy import check_policies_at_start
from manager_pipeline.defs.location import build_definitions
from manager_pipeline.plans import Plans, PlanState
from manager_pipeline.policy import installed_checkov
from tests.support import EXAMPLE_VARIABLES, REPO, approve_as, build_manager, make_source_repo, run_partition

pytestmark = pytest.mark.integration

PUBLIC_BUCKET = """
storage:
  versioning: true
  buckets:
    - name: downloads
      public: true
"""


@pytest.fixture(autouse=True)
def engine(tools_dir):
    if installed_checkov(tools_dir) is None:
        pytest.skip("checkov is not installed: `make env` (manager-pipeline setup) installs it")


def manager_with(tmp_path, moto_endpoint, tools_dir, variables: str, checks: str = ""):
    source = make_source_repo(tmp_path / "app", variables)
    manager = build_manager(tmp_path / "manager", moto_endpoint, tools_dir, {"app": source})
    text = manager.config_path.read_text()
    if checks:
        text = text.replace("    approvers: [alice, bob]\n", "    approvers: [alice, bob]\n" + checks)
    manager.write_config(text)
    return manager


def store_of(manager) -> Plans:
    settings = manager.settings()
    return Plans(settings.database_url, settings.plans_dir)


def failed_at(result) -> tuple[str, str]:
    failure = next(event for event in result.all_events if event.is_step_failure)
    return failure.step_key, failure.event_specific_data.error.message


def test_a_public_bucket_in_production_is_policy_failed_and_approval_cannot_move_it(
    tmp_path, moto_endpoint, tools_dir, github_standin
):
    manager = manager_with(tmp_path, moto_endpoint, tools_dir, EXAMPLE_VARIABLES.read_text() + PUBLIC_BUCKET)
    manager.github = github_standin
    result = run_partition(manager, "app", "production", branch="main")
    assert not result.success
    stage, message = failed_at(result)
    assert stage == "policy", message
    assert "enforced check(s) failed" in message and "aws_s3_bucket" in message
    # Traced to the variables: the section of variables.yml that builds the bucket, at its line.
    assert "variables.yml:" in message and "`storage`" in message, message
    [plan] = store_of(manager).list_plans(source="app", environment="production")
    assert plan.state is PlanState.POLICY_FAILED and plan.policy["failures"]
    # An approval cannot move it: the console approval is refused at apply, which names the checks.
    approve_as(manager, "alice", plan.plan_id, "--reason", "try to ship it anyway")
    refused = manager.cli("apply", plan.plan_id)
    assert refused.returncode == 1
    assert "failed its enforced policy checks" in refused.stderr and plan.policy["failures"][0]["check_id"] in (
        refused.stderr
    )
    assert store_of(manager).get(plan.plan_id).state is PlanState.POLICY_FAILED
    # The report says so, failures first.
    # The planning run's own report (the refused apply wrote one too).
    report = (manager.settings().reports_dir / "app" / "production" / f"{plan.run_id}.md").read_text()
    assert "### Policy" in report and "<details><summary>Terraform plan" in report, report
    assert report.index("### Policy") < report.index("<details><summary>Terraform plan")
    assert "enforced check(s) failed" in report


def test_the_same_bucket_in_staging_applies_with_a_warning(tmp_path, moto_endpoint, tools_dir):
    manager = manager_with(tmp_path, moto_endpoint, tools_dir, EXAMPLE_VARIABLES.read_text() + PUBLIC_BUCKET)
    result = run_partition(manager, "app", "staging", branch="main")
    assert result.success, failed_at(result)
    assert result.output_for_node("feedback").status.value == "applied"
    [plan] = store_of(manager).list_plans(source="app", environment="staging")
    assert plan.policy["failures"] == [] and plan.policy["warnings"]
    assert any(w["resource"].startswith("aws_s3_bucket") for w in plan.policy["warnings"])


def test_a_custom_policy_refuses_a_plan_without_the_required_tag(tmp_path, moto_endpoint, tools_dir):
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "examples" / "policies", policies)
    checks = f"    checks: {{custom_policies: {policies}}}\n"
    manager = manager_with(tmp_path, moto_endpoint, tools_dir, EXAMPLE_VARIABLES.read_text(), checks)
    result = run_partition(manager, "app", "production", branch="main")
    stage, message = failed_at(result)
    assert stage == "policy" and "CKV2_MP_1" in message and "cost_center" in message, message
    tagged = EXAMPLE_VARIABLES.read_text().replace("tags:\n", "tags:\n  cost_center: platform-42\n", 1)
    assert tagged != EXAMPLE_VARIABLES.read_text()
    again = manager_with(tmp_path / "tagged", moto_endpoint, tools_dir, tagged, checks)
    passed = run_partition(again, "app", "production", branch="main")
    assert passed.success, failed_at(passed)
    assert passed.output_for_node("feedback").status.value == "awaiting-approval"


def test_a_custom_policy_that_goes_bad_leaves_the_last_good_one_in_force(tmp_path, moto_endpoint, tools_dir, caplog):
    """The platform team breaks its policy file: start-up and the run say where; the plan is still checked
    against the last good policy (the required tag), never passed unchecked."""
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "examples" / "policies", policies)
    checks = f"    checks: {{custom_policies: {policies}}}\n"
    manager = manager_with(tmp_path, moto_endpoint, tools_dir, EXAMPLE_VARIABLES.read_text(), checks)
    kept = manager.settings().kept_policies_dir / "production" / "custom" / "cost_center_tag.yaml"
    # Start-up (the code location loading) keeps the good policy before any run.
    build_definitions(manager.settings())
    assert kept.read_text() == (policies / "cost_center_tag.yaml").read_text()
    (policies / "cost_center_tag.yaml").write_text("metadata:\n  id: CKV2_MP_1\n  name: [unclosed\n")
    caplog.set_level(logging.WARNING, logger="manager_pipeline")
    instance = open_instance(manager.settings())
    result = run_partition(manager, "app", "production", instance=instance, branch="main")
    started = [r.getMessage() for r in caplog.records if "last good policy" in r.getMessage()]
    assert started and "cost_center_tag.yaml:" in started[0], caplog.text
    stage, message = failed_at(result)
    assert stage == "policy" and "CKV2_MP_1" in message and "cost_center" in message, message
    logs = "\n".join(
        entry.user_message for entry in instance.all_logs(result.run_id) if entry.level >= logging.WARNING
    )
    assert re.search(r"cost_center_tag\.yaml:\d+:\d+", logs) and "last good policy" in logs, logs
    [plan] = store_of(manager).list_plans(source="app", environment="production")
    assert plan.state is PlanState.POLICY_FAILED


def test_start_up_names_each_bad_policy_setting_at_its_line(tmp_path, moto_endpoint, tools_dir):
    checks = "    checks:\n      warn: [CKV_AWS_99999]\n"
    manager = manager_with(tmp_path, moto_endpoint, tools_dir, EXAMPLE_VARIABLES.read_text(), checks)
    warnings = check_policies_at_start(load_config(manager.config_path), manager.settings())
    placed = [w for w in warnings if re.search(r"manager\.yaml:\d+:\d+: .*no check has the id CKV_AWS_99999", w)]
    assert placed, warnings
    # Nothing good was kept for production before: its policy stage would fail, and start-up says so.
    assert any("no good policy of production was kept" in w for w in warnings), warnings


def test_an_engine_that_times_out_fails_the_stage(tmp_path, moto_endpoint, tools_dir):
    checks = "    checks: {timeout_s: 0.01}\n"
    manager = manager_with(tmp_path, moto_endpoint, tools_dir, EXAMPLE_VARIABLES.read_text(), checks)
    result = run_partition(manager, "app", "production", branch="main")
    stage, message = failed_at(result)
    assert stage == "policy" and "did not finish within" in message, message
    [plan] = store_of(manager).list_plans(source="app", environment="production")
    # Never passed: the plan did not reach the gate.
    assert plan.state is PlanState.PLANNED


def test_validate_manager_names_each_bad_policy_setting_at_its_line(tmp_path, moto_endpoint, tools_dir):
    checks = (
        "    checks:\n"
        "      warn: [CKV_AWS_99999]\n"
        "      skips:\n"
        "        - {check: CKV_AWS_20, resources: [aws_s3_bucket.x]}\n"
    )
    manager = manager_with(tmp_path, moto_endpoint, tools_dir, EXAMPLE_VARIABLES.read_text(), checks)
    broken = manager.cli("validate", "--manager")
    assert broken.returncode != 0
    assert "`reason` is required" in broken.stderr and "manager.yaml:" in broken.stderr, broken.stderr
    manager.write_config(manager.config_path.read_text().replace(", resources: [aws_s3_bucket.x]}", ", reason: ok}"))
    unknown = manager.cli("validate", "--manager")
    assert unknown.returncode == 1 and "no check has the id CKV_AWS_99999" in unknown.stderr, unknown.stderr
    assert re.search(r"manager.yaml:\d+:\d+", unknown.stderr), unknown.stderr
    manager.write_config(manager.config_path.read_text().replace("CKV_AWS_99999", "CKV_AWS_144"))
    done = manager.cli("validate", "--manager")
    assert done.returncode == 0, done.stderr
    assert "production: policy checks enforce, 1 skip(s)" in done.stdout and "reviewed skip(s)" in done.stdout
