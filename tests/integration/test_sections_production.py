"""What production gets that the section stand-ins (staging) do not apply: the plan of the full
example for production, the whole module (the stand-in's gaps included), read from its JSON."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

from manager_pipeline.contract import load_variables, resolve
from manager_pipeline.terraform.runner import TerraformRunner
from manager_pipeline.terraform.workdir import PLAN_FILE, TFVARS_FILE
from tests.integration.sections import REPO, _open_stack

pytestmark = pytest.mark.integration

FULL = REPO / "examples" / "variables.full.yml"


def _plan(root, runner, document: dict, environment: str) -> dict:
    data = load_variables(json.dumps(document), list(document["environments"]))
    (root / TFVARS_FILE).write_text(json.dumps(resolve(data, environment, "app").to_tfvars()))
    runner.plan(root / PLAN_FILE)
    return {c["address"]: c["change"] for c in runner.show_json(root / PLAN_FILE)["resource_changes"]}


def test_production_plan_protects_logs_and_encrypts(tmp_path, moto_endpoint, tools_dir):
    document = yaml.safe_load(FULL.read_text())
    document["project_name"] = f"prd{uuid.uuid4().hex[:6]}"
    root, toolchain, env = _open_stack(tmp_path / "run", moto_endpoint, tools_dir, document["project_name"], gaps=False)
    runner = TerraformRunner(root, toolchain.terraform, env)
    runner.init(root / "backend.hcl")
    planned = _plan(root, runner, document, "production")
    after = {address: change["after"] for address, change in planned.items()}
    unknown = {address: change["after_unknown"] for address, change in planned.items()}

    # The load balancer: deletion protection in production, invalid headers dropped, access logs on.
    lb = after["aws_lb.compute[0]"]
    assert lb["enable_deletion_protection"] is True and lb["drop_invalid_header_fields"] is True
    assert lb["access_logs"][0]["enabled"] is True and lb["access_logs"][0]["prefix"] == "lb"
    assert after["aws_lb_listener.compute_https[0]"]["ssl_policy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    # Flow logs of all traffic to the access-log bucket, which a production destroy does not empty.
    flow = after["aws_flow_log.networking[0]"]
    assert flow["traffic_type"] == "ALL" and flow["log_destination_type"] == "s3"
    assert after["aws_s3_bucket.logs[0]"]["force_destroy"] is False
    # No public addresses by default; the VPC's default group is the module's (test_security: closed).
    assert all(after[f"aws_subnet.public[{i}]"]["map_public_ip_on_launch"] is False for i in range(3))
    assert "aws_default_security_group.main" in planned
    # The database: enhanced monitoring (production's enable_monitoring), IAM auth, its logs exported.
    db = after["aws_db_instance.database[0]"]
    assert db["monitoring_interval"] == 60 and unknown["aws_db_instance.database[0]"]["monitoring_role_arn"] is True
    assert "aws_iam_role.database_monitoring[0]" in planned
    assert db["iam_database_authentication_enabled"] is True
    assert db["enabled_cloudwatch_logs_exports"] == ["postgresql", "upgrade"]
    parameters = {p["name"]: p["value"] for p in after["aws_db_parameter_group.database[0]"]["parameter"]}
    assert parameters == {"log_statement": "ddl", "log_min_duration_statement": "1000", "rds.force_ssl": "1"}
    assert after["aws_db_parameter_group.database[0]"]["family"] == "postgres16"
    # Topics, queues, log groups and vaults on the security section's keys (made by the same plan).
    for address, attribute in [
        ("aws_sns_topic.monitoring_alarms[0]", "kms_master_key_id"),
        ("aws_sns_topic.notifications[0]", "kms_master_key_id"),
        ("aws_sqs_queue.features[0]", "kms_master_key_id"),
        ("aws_cloudwatch_log_group.monitoring[0]", "kms_key_id"),
        ("aws_cloudwatch_log_group.security_waf[0]", "kms_key_id"),
        ("aws_backup_vault.backup[0]", "kms_key_arn"),
        ("aws_backup_vault.backup_copy[0]", "kms_key_arn"),
        ("aws_secretsmanager_secret.database[0]", "kms_key_id"),
    ]:
        assert unknown[address][attribute] is True, address
    assert "aws_kms_key.backup_copy[0]" in planned and "aws_kms_key.security[0]" in planned
    assert after["aws_wafv2_web_acl_logging_configuration.security[0]"] is not None

    # Staging of the same file: the load balancer may be deleted, a destroy empties the log bucket.
    planned = _plan(root, runner, document, "staging")
    assert planned["aws_lb.compute[0]"]["after"]["enable_deletion_protection"] is False
    assert planned["aws_s3_bucket.logs[0]"]["after"]["force_destroy"] is True
    assert planned["aws_db_instance.database[0]"]["after"]["monitoring_interval"] == 0
    assert "aws_iam_role.database_monitoring[0]" not in planned
