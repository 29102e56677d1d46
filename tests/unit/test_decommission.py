"""Decommissioning without AWS: what a state holds, the destroy policy in every environment, the destroy
plan's record and request, and what is said when there is nothing (or no way) to destroy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from manager_pipeline.config.file import parse_config
from manager_pipeline.destroy.inputs import (
    PartitionState,
    destroy_inputs,
    last_applied_plan,
    nothing_to_destroy,
    state_addresses,
    unbuildable,
    waiting_report,
)
from manager_pipeline.defs.jobs import destroy_job
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.feedback import Outcome, OutcomeStatus
from manager_pipeline.feedback.report import render_report
from manager_pipeline.plans import ApplyFacts, Plan, PlanFacts, Plans, PlanState, apply_requirements
from manager_pipeline.plans.gate import decide
from manager_pipeline.config.request import ResolvedRequest
from manager_pipeline.terraform.plan import PlanSummary

MANAGER_YAML = """
sources:
  - name: web
    path: ../web
environments:
  staging: {auto_apply: true, approvers: [alice]}
  production: {required_approvals: 2, approvers: [alice, bob]}
"""
TFVARS = {
    "source_name": "old",
    "project_name": "old-app",
    "environment": "staging",
    "region": "us-east-1",
    "vpc_cidr": "10.0.0.0/16",
    "availability_zones": 2,
    "enable_nat_gateway": False,
    "enable_vpn": False,
    "flow_logs": True,
    "instances": {
        "instance_type": "t3.micro",
        "min_instances": 1,
        "max_instances": 2,
        "enable_monitoring": False,
        "backup_retention_days": 7,
    },
    "tags": {},
}


@pytest.fixture
def config(tmp_path):
    return parse_config(MANAGER_YAML, tmp_path / "manager.yaml")


@pytest.fixture
def store(tmp_path):
    return Plans(f"sqlite:///{tmp_path / 'manager.db'}", tmp_path / "plans")


def save(store: Plans, tmp_path: Path, destroy: bool = False, state: PlanState = PlanState.APPLIED) -> Plan:
    plan_file = tmp_path / "plan.tfplan"
    plan_file.write_bytes(b"binary plan")
    facts = PlanFacts(
        source="old",
        environment="staging",
        sha="c" * 40,
        branch="main",
        branch_verified=True,
        repo="acme/old",
        variables_digest="v",
        module_digest="m",
        terraform_version="1.15.5",
        has_changes=True,
        summary=PlanSummary(to_destroy=("aws_vpc.main",)) if destroy else PlanSummary(to_add=("aws_vpc.main",)),
        tfvars=TFVARS,
        destroy=destroy,
    )
    plan = store.save(plan_file, "Plan", facts)
    for step in {PlanState.APPLIED: (PlanState.APPROVED, PlanState.APPLYING, PlanState.APPLIED)}.get(state, (state,)):
        assert store.transition(plan.plan_id, step)
    return store.get(plan.plan_id)


def test_a_state_holds_the_addresses_of_its_managed_resources_only():
    state = {
        "resources": [
            {"mode": "managed", "type": "aws_vpc", "name": "main", "instances": [{"attributes": {}}]},
            {
                "mode": "managed",
                "type": "aws_subnet",
                "name": "public",
                "instances": [{"index_key": 1}, {"index_key": 0}],
            },
            {
                "mode": "managed",
                "module": "module.db",
                "type": "aws_db",
                "name": "x",
                "instances": [{"index_key": "a"}],
            },
            {"mode": "data", "type": "aws_availability_zones", "name": "available", "instances": [{}]},
            {"mode": "managed", "type": "aws_eip", "name": "nat", "instances": []},
        ]
    }
    assert state_addresses(state) == (
        "aws_subnet.public[0]",
        "aws_subnet.public[1]",
        "aws_vpc.main",
        'module.db.aws_db.x["a"]',
    )
    assert state_addresses(None) == state_addresses({"resources": []}) == ()


def test_a_destroy_needs_approval_in_every_environment(config):
    staging, production = config.policy("staging", destroy=True), config.policy("production", destroy=True)
    assert config.policy("staging").auto_apply and config.policy("staging").required_approvals == 0
    assert (staging.auto_apply, staging.required_approvals, staging.approvers) == (False, 1, ("alice",))
    assert (production.auto_apply, production.required_approvals) == (False, 2)
    event = DispatchEvent("web", "staging", destroy=True)
    decision = decide(staging, event, "main", True, "p1")
    assert decision.state is PlanState.AWAITING and not decision.applies
    assert "destroy plan p1 (every destroy needs approval, in staging too)" in decision.reason
    # A state that holds nothing: the destroy plan has no changes and is only a preview.
    assert decide(staging, event, "main", False, "p1").state is PlanState.PREVIEW


def test_a_destroy_plan_is_never_applied_without_approval_whatever_policy_is_passed(config, store, tmp_path):
    plan = save(store, tmp_path, destroy=True, state=PlanState.AWAITING)
    facts = ApplyFacts(
        plan_file_sha256=plan.plan_sha256,
        newest_candidate=plan.plan_id,
        module_digest="m",
        variables_digest="v",
        variables_problem=None,
        accepted_approvers=(),
        now=plan.created_at,
    )
    refusals = apply_requirements(plan, config.policy("staging"), facts)
    assert [r.reason.split(" (from")[0] for r in refusals] == [f"plan {plan.plan_id} has 0 of 1 required approval(s)"]
    approved = replace(facts, accepted_approvers=("alice",))
    assert apply_requirements(plan, config.policy("staging"), approved) == []
    stale = apply_requirements(plan, config.policy("staging"), replace(approved, module_digest="m2"))
    assert "re-plan it with `manager-pipeline destroy old staging`" in stale[0].reason


def test_a_destroy_plan_is_recorded_as_one_and_its_apply_run_says_so(store, tmp_path):
    plan = save(store, tmp_path, destroy=True, state=PlanState.AWAITING)
    assert store.find(plan.plan_id).destroy and not save(store, tmp_path).destroy
    tags = plan.apply_tags("approval")
    assert tags[".dagster/manager/destroy"] == "true"
    assert DispatchEvent.from_tags("old", "staging", tags).destroy
    assert not DispatchEvent.from_tags("old", "staging", {}).destroy


def test_a_destroy_works_from_the_last_applied_plan_even_when_the_source_left_manager_yaml(config, store, tmp_path):
    event = DispatchEvent("old", "staging", destroy=True)
    with pytest.raises(ManagerError, match="nothing to destroy for old/staging: no plan of it was applied"):
        destroy_inputs(config, store, event)
    built = save(store, tmp_path)
    save(store, tmp_path, destroy=True)  # an applied destroy never gives a later destroy its variables
    assert last_applied_plan(store, "old", "staging").plan_id == built.plan_id
    inputs = destroy_inputs(config, store, event)
    request = inputs.request
    assert (request.source.name, request.source.repo, request.policy.required_approvals) == ("old", "acme/old", 1)
    assert (inputs.document.sha, inputs.document.branch, inputs.document.branch_verified) == ("c" * 40, "main", True)
    assert inputs.deploy_config.to_tfvars() == TFVARS
    # Only a destroy may name a source that is not in manager.yaml.
    with pytest.raises(ManagerError, match="unknown source `old`"):
        ResolvedRequest.resolve(config, DispatchEvent("old", "staging"), inputs.request.source)


def test_nothing_to_destroy_and_no_way_to_destroy_are_one_line_each(config):
    where = "s3://bucket/old/staging/terraform.tfstate"
    missing = PartitionState("old", "staging", where, exists=False)
    assert nothing_to_destroy(missing, config) == (
        f"old/staging: nothing to destroy: there is no state at {where} (`old` is not a source in manager.yaml "
        "either; registered: web); nothing was planned"
    )
    emptied = PartitionState("web", "staging", where, exists=True)
    said = nothing_to_destroy(emptied, config)
    assert said == f"web/staging: nothing to destroy: its state {where} holds no resources; nothing was planned"
    holding = PartitionState("web", "staging", where, exists=True, addresses=("aws_vpc.main",))
    assert nothing_to_destroy(holding, config) is None
    problem = unbuildable(holding, None, config)
    assert "holds 1 resource(s), but no plan of web/staging was applied by this manager" in problem
    assert "`manager-pipeline run --source web --env staging`" in problem and "\n" not in problem


def test_the_partition_sync_names_what_waits_and_the_command_to_run():
    kept = [PartitionState("old", "production", "s3://b/old/production/terraform.tfstate", True, ("a.b", "c.d"))]
    report = waiting_report(kept)
    assert "`old` in production (2 resource(s) in s3://b/old/production/terraform.tfstate)" in report
    assert "`manager-pipeline destroy old production`" in report


def test_the_report_of_an_applied_destroy_lists_what_was_destroyed(store, tmp_path):
    plan = save(store, tmp_path, destroy=True)
    outcome = Outcome(event=DispatchEvent("old", "staging"), status=OutcomeStatus.APPLIED, headline="done", plan=plan)
    report = render_report(outcome)
    assert "**DESTROY: 0 to add, 0 to change, 1 to destroy**" in report
    assert "**Destroyed 1 resource(s):** `aws_vpc.main`" in report


def test_only_the_first_stage_of_a_destroy_run_reads_manager_yaml():
    job = destroy_job(["staging"])
    readers = [node.name for node in job.graph.node_defs if "manager" in node.required_resource_keys]
    assert readers == ["load_destroy"]
    assert "apply" not in {node.name for node in job.graph.node_defs}
