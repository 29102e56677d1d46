"""The original pipeline's extended example, as it ships, applied to staging in a state of its own."""

from __future__ import annotations

import time
import uuid

import boto3
import pytest

from manager_pipeline.terraform.provider_server import provider_servers
from manager_pipeline.terraform.runner import TerraformRunner
from tests.integration.sections import EXTENDED, REGION, Stack, _boto_credentials, _open_stack

pytestmark = pytest.mark.integration


def test_extended_example_applies_and_replans_clean(tmp_path, moto_endpoint, tools_dir):
    """The original pipeline's full example, every section in, on a state of its own."""
    import yaml

    document = yaml.safe_load(EXTENDED.read_text())
    # Test-only changes: a project name of its own (moto is shared by the session), a database
    # that can be destroyed, and a certificate that exists (the example's ARN is a placeholder).
    project = f"ext{uuid.uuid4().hex[:6]}"
    document["project_name"] = project
    document["database"]["deletion_protection"] = False
    acm = boto3.client("acm", endpoint_url=moto_endpoint, region_name=REGION, **_boto_credentials())
    certificate = acm.request_certificate(DomainName="app.example.com")["CertificateArn"]
    document["security"]["ssl_certificate_arn"] = certificate

    root, toolchain, env = _open_stack(tmp_path / "run", moto_endpoint, tools_dir, project)
    with provider_servers(toolchain.mirror_providers, env) as reattach:
        runner = TerraformRunner(root, toolchain.terraform, env | reattach)
        runner.init(root / "backend.hcl")
        extended = Stack(path=root, runner=runner, project=project, endpoint=moto_endpoint)
        started = time.monotonic()
        outputs = extended.apply(document)
        print(f"extended example: apply {time.monotonic() - started:.1f} s, {len(extended.state())} resources")
        extended.assert_no_changes()

    name = f"{project}-staging"
    assert outputs["storage_bucket_name"] == f"{name}-my-app-storage"
    assert outputs["autoscaling_group_name"] == f"{name}-app" and outputs["load_balancer_dns_name"]
    assert outputs["database_port"] == 5432 and outputs["database_secret_arn"]
    assert outputs["log_group_name"] == f"/manager/{project}/staging" and outputs["alarm_topic_arn"]
    assert outputs["backup_vault_name"] == name and outputs.get("backup_copy_vault_arn") is None
    assert outputs["notifications_topic_arn"] and outputs["cache_port"] == 6379 and outputs.get("queue_url") is None
    assert len(outputs["scaling_policy_names"]) == 2 and outputs["kms_key_arn"]
    elbv2 = boto3.client("elbv2", endpoint_url=moto_endpoint, region_name=REGION, **_boto_credentials())
    [lb] = elbv2.describe_load_balancers(Names=[f"{name}-alb"])["LoadBalancers"]
    listeners = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    ports = sorted(listener["Port"] for listener in listeners)
    assert ports == [80, 443]
