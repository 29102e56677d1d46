"""Every section of variables.yml builds real infrastructure: the manager's module on moto.

One working directory and one state for the file (networking applied once). Each section in
turn: apply networking + the section, find its resources through boto3, re-plan (no changes),
apply without it and find them gone. The inputs go through the contract as a run's do
(load_variables -> resolve -> to_tfvars). Then the full extended example, in a state of its own.
"""

from __future__ import annotations

import copy
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from manager_pipeline.contract import load_variables, resolve
from manager_pipeline.terraform import BackendSettings, ensure_toolchain, state_key
from manager_pipeline.terraform.provider_server import provider_servers
from manager_pipeline.terraform.runner import TerraformRunner
from manager_pipeline.terraform.workdir import (
    ENDPOINT_OVERRIDE_FILE,
    PLAN_FILE,
    TFVARS_FILE,
    copy_module,
    endpoint_override,
    provider_aliases,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "terraform"
# The original pipeline's example, as it ships (shared/mission/upstream-variables.extended.yml).
EXTENDED = Path(__file__).resolve().parents[2] / "examples" / "original_pipeline" / "variables.extended.yml"
REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def base_document(project: str) -> dict:
    return {
        "project_name": project,
        "cloud_provider": "aws",
        "environments": {
            "staging": {
                "region": REGION,
                "instance_type": "t3.micro",
                "min_instances": 1,
                "max_instances": 3,
                "enable_monitoring": False,
                "backup_retention_days": 3,
            }
        },
        "networking": {"vpc_cidr": "10.40.0.0/16", "availability_zones": 2, "enable_nat_gateway": False},
        "tags": {"Team": "platform", "Stage": "{{ environment }}"},
    }


def tfvars_for(document: dict) -> dict:
    """What a run hands Terraform for this document's staging environment."""
    data = load_variables(json.dumps(document), list(document["environments"]))
    return resolve(data, "staging", "app").to_tfvars()


@dataclass
class Stack:
    """One working directory on one state, driven like a run drives it."""

    path: Path
    runner: TerraformRunner
    project: str
    endpoint: str
    # Without the shared provider process: one process serving two configurations of the aws
    # provider (the backup copy region's alias) mixes them up, and Terraform hangs on retries.
    solo_runner: TerraformRunner | None = None

    @property
    def name(self) -> str:
        return f"{self.project}-staging"

    def client(self, service: str, region: str = REGION):
        return boto3.client(service, endpoint_url=self.endpoint, region_name=region, **_boto_credentials())

    def apply(self, document: dict, solo: bool = False) -> dict:
        """Plan and apply ``document``; the module's outputs (values only; a null output is left out)."""
        runner = self.solo_runner if solo else self.runner
        (self.path / TFVARS_FILE).write_text(json.dumps(tfvars_for(document), indent=2, sort_keys=True))
        plan_file = self.path / PLAN_FILE
        runner.plan(plan_file)
        runner.apply(plan_file)
        return {name: output["value"] for name, output in runner.outputs().items()}

    def assert_no_changes(self, solo: bool = False) -> None:
        changed, result = (self.solo_runner if solo else self.runner).plan(self.path / PLAN_FILE)
        assert not changed, "a re-plan right after apply shows changes:\n" + "\n".join(
            line for line in result.stdout.splitlines() if line.strip().startswith(("#", "~", "+", "-", "Plan:"))
        )

    def state(self) -> list[str]:
        return self.runner._check("state list", self.runner._tf.cmd("state", "list")).stdout.split()

    def state_rm(self, *addresses: str) -> None:
        self.runner._check("state rm", self.runner._tf.cmd("state", "rm", *addresses))


def _boto_credentials() -> dict:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _open_stack(root: Path, endpoint: str, tools_dir: Path, project: str, gaps: bool = True):
    """A working directory with the module on its own state key, its provider started once."""
    bucket = f"sections-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=endpoint, region_name=REGION, **_boto_credentials()).create_bucket(Bucket=bucket)
    backend = BackendSettings(bucket=bucket, region=REGION, key=state_key(project, "staging"), endpoint_url=endpoint)
    copy_module(root, MODULE, backend, endpoint)
    if not gaps:
        # Provider settings only: every resource of the module, the stand-in's gaps included.
        (root / ENDPOINT_OVERRIDE_FILE).write_text(endpoint_override(endpoint, provider_aliases(root)))
    toolchain = ensure_toolchain(tools_dir)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(root)),
        "AWS_DEFAULT_REGION": REGION,
        **CREDENTIALS,
        **toolchain.env(),
    }
    return root, toolchain, env


@pytest.fixture(scope="module")
def stack(tmp_path_factory, moto_endpoint, tools_dir):
    project = f"sec{uuid.uuid4().hex[:6]}"
    root, toolchain, env = _open_stack(tmp_path_factory.mktemp("sections") / "run", moto_endpoint, tools_dir, project)
    with provider_servers(toolchain.mirror_providers, env) as reattach:
        runner = TerraformRunner(root, toolchain.terraform, env | reattach)
        solo = TerraformRunner(root, toolchain.terraform, env)
        solo.init(root / "backend.hcl")  # installs the provider too, for runs without the shared process
        setup = Stack(path=root, runner=runner, project=project, endpoint=moto_endpoint, solo_runner=solo)
        outputs = setup.apply(base_document(project))
        assert outputs["vpc_id"].startswith("vpc-")
        # Absent sections: no resources, null outputs.
        assert all(outputs.get(name) is None for name in ("storage_bucket_name", "log_group_name", "database_endpoint"))
        yield setup


def with_section(stack: Stack, **sections) -> dict:
    document = base_document(stack.project)
    document.update(copy.deepcopy(sections))
    return document


def gone(call, *codes: str) -> bool:
    """True when ``call`` fails with one of the not-found ``codes``."""
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"] in codes
    return False


def test_storage(stack):
    s3 = stack.client("s3")
    outputs = stack.apply(
        with_section(
            stack,
            storage={
                "bucket_name": "data",
                "versioning_enabled": True,
                "buckets": [{"name": "logs"}, {"name": "site", "public": True}],
                "lifecycle_rules": [
                    {"name": "expire-tmp", "prefix": "tmp/", "expiration_days": 30},
                    {
                        "id": "archive",
                        "transition_days": 60,
                        "transition_storage_class": "GLACIER",
                        "noncurrent_version_expiration_days": 10,
                    },
                ],
            },
        )
    )
    main = f"{stack.name}-data"
    assert outputs["storage_bucket_name"] == main
    assert outputs["storage_bucket_names"] == {"data": main, "logs": f"{stack.name}-logs", "site": f"{stack.name}-site"}
    assert s3.get_bucket_versioning(Bucket=main)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=main)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=main)["Rules"]}
    assert rules["expire-tmp"]["Expiration"]["Days"] == 30 and rules["expire-tmp"]["Status"] == "Enabled"
    assert rules["archive"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 10
    assert rules["archive"]["Transitions"] == [{"Days": 60, "StorageClass": "GLACIER"}]
    assert s3.get_public_access_block(Bucket=main)["PublicAccessBlockConfiguration"]["BlockPublicAcls"] is True
    assert gone(lambda: s3.get_public_access_block(Bucket=f"{stack.name}-site"), "NoSuchPublicAccessBlockConfiguration")
    stack.assert_no_changes()

    outputs = stack.apply(base_document(stack.project))
    assert outputs.get("storage_bucket_name") is None
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert not names & {main, f"{stack.name}-logs", f"{stack.name}-site"}


def test_notifications(stack):
    sns = stack.client("sns")
    outputs = stack.apply(
        with_section(
            stack,
            notifications={
                "email_list": ["ops@example.com", "dev@example.com"],
                "slack_webhook": "https://hooks.slack.com/services/T/B/X",
            },
        )
    )
    topic = outputs["notifications_topic_arn"]
    assert topic.endswith(f":{stack.name}-deployments")
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert sorted(s["Endpoint"] for s in subscriptions) == ["dev@example.com", "ops@example.com"]
    # The webhook is the manager's secret: it never reaches Terraform.
    assert "hooks.slack.com" not in (stack.path / TFVARS_FILE).read_text()
    stack.assert_no_changes()

    outputs = stack.apply(base_document(stack.project))
    assert outputs.get("notifications_topic_arn") is None
    assert topic not in {t["TopicArn"] for t in sns.list_topics()["Topics"]}


def test_monitoring(stack):
    logs, sns, cloudwatch = stack.client("logs"), stack.client("sns"), stack.client("cloudwatch")
    outputs = stack.apply(
        with_section(
            stack,
            monitoring={
                "enable_cloudwatch": True,
                "log_retention_days": 14,
                "alarm_email": "ops@example.com",
                "dashboards": True,
            },
        )
    )
    group = f"/manager/{stack.project}/staging"
    assert outputs["log_group_name"] == group
    [found] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert found["retentionInDays"] == 14
    topic = outputs["alarm_topic_arn"]
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["Endpoint"] for s in subscriptions] == ["ops@example.com"]
    assert cloudwatch.get_dashboard(DashboardName=stack.name)["DashboardName"] == stack.name
    stack.assert_no_changes()

    stack.apply(base_document(stack.project))
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    assert topic not in {t["TopicArn"] for t in sns.list_topics()["Topics"]}
    assert gone(lambda: cloudwatch.get_dashboard(DashboardName=stack.name), "ResourceNotFound", "InvalidParameterInput")


def test_security(stack):
    ec2, kms, wafv2 = stack.client("ec2"), stack.client("kms"), stack.client("wafv2")
    outputs = stack.apply(
        with_section(
            stack,
            security={"allowed_cidr_blocks": ["10.0.0.0/8"], "enable_waf": True, "enable_encryption": True},
        )
    )
    [group] = ec2.describe_security_groups(GroupIds=[outputs["allowed_security_group_id"]])["SecurityGroups"]
    assert sorted(p["FromPort"] for p in group["IpPermissions"]) == [80, 443]
    assert all([r["CidrIp"] for r in p["IpRanges"]] == ["10.0.0.0/8"] for p in group["IpPermissions"])
    key_id = outputs["kms_key_arn"].split("/")[-1]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    assert f"alias/{stack.name}" in {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    acls = {a["Name"]: a for a in wafv2.list_web_acls(Scope="REGIONAL")["WebACLs"]}
    assert acls[stack.name]["ARN"] == outputs["web_acl_arn"]
    stack.assert_no_changes()

    stack.apply(base_document(stack.project))
    assert gone(lambda: ec2.describe_security_groups(GroupIds=[group["GroupId"]]), "InvalidGroup.NotFound")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert f"alias/{stack.name}" not in {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    assert stack.name not in {a["Name"] for a in wafv2.list_web_acls(Scope="REGIONAL")["WebACLs"]}


def test_backup(stack):
    backup, copy_region = stack.client("backup"), stack.client("backup", "us-west-2")
    backup_section = {"schedule": "cron(0 3 * * ? *)", "retention_days": 5, "cross_region_copy": "us-west-2"}
    outputs = stack.apply(with_section(stack, backup=backup_section), solo=True)
    assert outputs["backup_vault_name"] == stack.name
    assert backup.describe_backup_vault(BackupVaultName=stack.name)["BackupVaultName"] == stack.name
    assert copy_region.describe_backup_vault(BackupVaultName=f"{stack.name}-copy")
    [rule] = backup.get_backup_plan(BackupPlanId=outputs["backup_plan_id"])["BackupPlan"]["Rules"]
    assert rule["ScheduleExpression"] == "cron(0 3 * * ? *)" and rule["Lifecycle"]["DeleteAfterDays"] == 5
    assert rule["CopyActions"][0]["DestinationBackupVaultArn"] == outputs["backup_copy_vault_arn"]
    assert ":us-west-2:" in outputs["backup_copy_vault_arn"]
    stack.assert_no_changes(solo=True)

    stack.apply(base_document(stack.project), solo=True)
    assert gone(lambda: backup.describe_backup_vault(BackupVaultName=stack.name), "ResourceNotFoundException")
    plan_id = outputs["backup_plan_id"]
    assert gone(lambda: backup.get_backup_plan(BackupPlanId=plan_id), "ResourceNotFoundException") or (
        "DeletionDate" in backup.get_backup_plan(BackupPlanId=plan_id)  # moto keeps deleted plans, dated
    )
    copy_vault = f"{stack.name}-copy"
    if not gone(lambda: copy_region.describe_backup_vault(BackupVaultName=copy_vault), "ResourceNotFoundException"):
        pytest.xfail(
            "known limitation: without the backup section the aws.backup_copy provider falls back to the main "
            "region, so the copy vault is looked for there and left behind in its own region"
        )


def test_backup_selection_is_planned(tmp_path, moto_endpoint, tools_dir):
    """The tag selection is in the plan; moto cannot hold it, so a stand-in run leaves it out."""
    project = f"sel{uuid.uuid4().hex[:6]}"
    root, toolchain, env = _open_stack(tmp_path / "run", moto_endpoint, tools_dir, project, gaps=False)
    runner = TerraformRunner(root, toolchain.terraform, env)
    runner.init(root / "backend.hcl")
    document = base_document(project) | {"backup": {"enabled": True}, "database": {"deletion_protection": False}}
    (root / TFVARS_FILE).write_text(json.dumps(tfvars_for(document)))
    runner._check("validate", runner._tf.cmd("validate"))
    changed, _ = runner.plan(root / PLAN_FILE)
    planned = {c["address"]: c for c in runner.show_json(root / PLAN_FILE)["resource_changes"]}
    selection = planned["aws_backup_selection.backup[0]"]["change"]["after"]["selection_tag"]
    assert selection == [{"type": "STRINGEQUALS", "key": "BackupPlan", "value": f"{project}/staging"}]
    assert planned["aws_db_instance.database[0]"]["change"]["after"]["tags"] == {"BackupPlan": f"{project}/staging"}
    pytest.skip("moto 5.2.5 does not implement CreateBackupSelection: the selection is planned, not applied")


def test_features_queue(stack):
    sqs = stack.client("sqs")
    outputs = stack.apply(with_section(stack, features={"enable_queue": True, "enable_cdn": False}))
    attributes = sqs.get_queue_attributes(QueueUrl=outputs["queue_url"], AttributeNames=["All"])["Attributes"]
    dead_letter = sqs.get_queue_attributes(QueueUrl=outputs["dead_letter_queue_url"], AttributeNames=["QueueArn"])
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"] == dead_letter["Attributes"]["QueueArn"]
    assert outputs.get("cache_endpoint") is None
    stack.assert_no_changes()

    outputs = stack.apply(base_document(stack.project))
    assert outputs.get("queue_url") is None
    assert not any(stack.name in url for url in sqs.list_queues().get("QueueUrls", []))


def test_features_cache(stack):
    elasticache, ec2 = stack.client("elasticache"), stack.client("ec2")
    outputs = stack.apply(with_section(stack, features={"enable_cache": True}))
    [cluster] = elasticache.describe_cache_clusters()["CacheClusters"]
    assert cluster["Engine"] == "redis" and cluster["CacheSubnetGroupName"] == f"{stack.name}-cache"
    assert outputs["cache_port"] == 6379
    stack.assert_no_changes()

    # moto 5.2.5 keeps a deleted cache cluster in `deleting` for ever and has no
    # DeleteCacheSubnetGroup: Terraform would wait on both. Out of the state with them.
    stack.state_rm("aws_elasticache_cluster.features[0]", "aws_elasticache_subnet_group.features[0]")
    stack.apply(base_document(stack.project))
    assert not [g for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] == f"{stack.name}-cache"]
    pytest.skip("moto 5.2.5 cannot delete a cache cluster or a cache subnet group: their removal is unchecked")


def test_database(stack):
    rds, secrets = stack.client("rds"), stack.client("secretsmanager")
    outputs = stack.apply(
        with_section(
            stack,
            database={
                "engine": "postgres",
                "engine_version": "15.3",
                "backup_retention_period": 5,
                "deletion_protection": False,
            },
        )
    )
    [db] = rds.describe_db_instances(DBInstanceIdentifier=f"{stack.name}-db")["DBInstances"]
    assert db["Engine"] == "postgres" and db["DBInstanceClass"] == "db.t3.micro" and db["AllocatedStorage"] == 20
    assert db["BackupRetentionPeriod"] == 5 and db["StorageEncrypted"] is True and db["MultiAZ"] is False
    assert db["DBSubnetGroup"]["DBSubnetGroupName"] == f"{stack.name}-db"
    assert outputs["database_endpoint"] == db["Endpoint"]["Address"] and outputs["database_port"] == 5432
    secret_arn = outputs["database_secret_arn"]
    secret = json.loads(secrets.get_secret_value(SecretId=secret_arn)["SecretString"])
    assert secret["host"] == db["Endpoint"]["Address"] and len(secret["password"]) == 36
    # The password is in no output.
    assert secret["password"] not in json.dumps(stack.runner.outputs())
    stack.assert_no_changes()

    outputs = stack.apply(base_document(stack.project))
    assert outputs.get("database_endpoint") is None
    assert gone(lambda: rds.describe_db_instances(DBInstanceIdentifier=f"{stack.name}-db"), "DBInstanceNotFound")
    assert "DeletedDate" in secrets.describe_secret(SecretId=secret_arn)


def test_compute_ec2_and_scaling(stack):
    elbv2, autoscaling, ec2 = stack.client("elbv2"), stack.client("autoscaling"), stack.client("ec2")
    compute = {"ami_id": "ami-0c55b159cbfafe1f0", "key_name": "deploy", "user_data_script": "#!/bin/bash\necho hi\n"}
    # Together: moto 5.2.5 takes DefaultCooldown when it creates a group but ignores it on update.
    scaling = {"cpu_threshold": 60, "memory_threshold": 75, "scale_down_cooldown": 240, "scale_up_cooldown": 90}
    outputs = stack.apply(with_section(stack, compute=compute, scaling=scaling))
    [lb] = elbv2.describe_load_balancers(Names=[f"{stack.name}-alb"])["LoadBalancers"]
    assert outputs["load_balancer_dns_name"] == lb["DNSName"]
    [listener] = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    assert listener["Port"] == 80 and listener["DefaultActions"][0]["Type"] == "forward"
    group_name = outputs["autoscaling_group_name"]
    [group] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (1, 3, 1)
    assert group["TargetGroupARNs"] == [outputs["target_group_arn"]] and group["DefaultCooldown"] == 240
    versions = ec2.describe_launch_template_versions(LaunchTemplateName=f"{stack.name}-app")["LaunchTemplateVersions"]
    assert versions[0]["LaunchTemplateData"]["ImageId"] == "ami-0c55b159cbfafe1f0"
    assert versions[0]["LaunchTemplateData"]["InstanceType"] == "t3.micro"
    policies = autoscaling.describe_policies(AutoScalingGroupName=group_name)["ScalingPolicies"]
    by_name = {p["PolicyName"]: p for p in policies}
    cpu, memory = by_name[f"{stack.name}-cpu"], by_name[f"{stack.name}-memory"]
    assert cpu["TargetTrackingConfiguration"]["TargetValue"] == 60 and cpu["EstimatedInstanceWarmup"] == 90
    assert memory["TargetTrackingConfiguration"]["CustomizedMetricSpecification"]["MetricName"] == "mem_used_percent"
    stack.assert_no_changes()

    # Without scaling; compute stays for the next test (its load balancer takes a minute to build).
    outputs = stack.apply(with_section(stack, compute=compute))
    assert outputs.get("scaling_policy_names") is None
    assert autoscaling.describe_policies(AutoScalingGroupName=group_name)["ScalingPolicies"] == []


def test_compute_ecs_and_scaling(stack):
    ecs, elbv2, autoscaling = stack.client("ecs"), stack.client("elbv2"), stack.client("application-autoscaling")
    compute = {
        "type": "ecs",
        "image": "nginx:1.27",
        "container_port": 8080,
        "health_check_path": "/health",
        "desired_count": 2,
    }
    # One policy only: moto 5.2.5 ignores PolicyNames in DescribeScalingPolicies, so a second policy
    # on the same service reads back as the first.
    outputs = stack.apply(with_section(stack, compute=compute, scaling={"target_cpu_utilization": 65}))
    [service] = ecs.describe_services(cluster=stack.name, services=[outputs["ecs_service_name"]])["services"]
    assert service["desiredCount"] == 2 and service["launchType"] == "FARGATE"
    assert service["loadBalancers"][0]["containerPort"] == 8080
    task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert (task["cpu"], task["memory"], task["networkMode"]) == ("256", "512", "awsvpc")
    assert task["containerDefinitions"][0]["image"] == "nginx:1.27"
    [target_group] = elbv2.describe_target_groups(TargetGroupArns=[outputs["target_group_arn"]])["TargetGroups"]
    assert target_group["TargetType"] == "ip" and target_group["HealthCheckPath"] == "/health"
    resource_id = f"service/{stack.name}/{outputs['ecs_service_name']}"
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[resource_id])
    [target] = targets["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 3)
    assert outputs.get("autoscaling_group_name") is None
    stack.assert_no_changes()

    outputs = stack.apply(base_document(stack.project))
    assert outputs.get("load_balancer_dns_name") is None and outputs.get("ecs_cluster_name") is None
    assert gone(lambda: elbv2.describe_load_balancers(Names=[f"{stack.name}-alb"]), "LoadBalancerNotFound")
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[resource_id])
    assert targets["ScalableTargets"] == []
    clusters = ecs.describe_clusters(clusters=[stack.name])["clusters"]
    assert all(c["status"] == "INACTIVE" for c in clusters)


def test_compute_lambda(stack):
    lambda_, iam, logs, elbv2 = stack.client("lambda"), stack.client("iam"), stack.client("logs"), stack.client("elbv2")
    image = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/app:1.0"
    compute = {"type": "lambda", "image": image, "memory": 1024, "timeout": 60}
    monitoring = {"log_retention_days": 7, "dashboards": True}
    outputs = stack.apply(with_section(stack, compute=compute, monitoring=monitoring))
    name = outputs["lambda_function_name"]
    assert name == f"{stack.name}-app"
    function = lambda_.get_function(FunctionName=name)
    config = function["Configuration"]
    assert config["PackageType"] == "Image" and function["Code"]["ImageUri"] == image
    assert (config["MemorySize"], config["Timeout"]) == (1024, 60)
    assert config["Role"] == outputs["lambda_role_arn"] and config["FunctionArn"] == outputs["lambda_function_arn"]
    role = iam.get_role(RoleName=outputs["lambda_role_arn"].split("/")[-1])["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    policy = iam.get_role_policy(RoleName=role["RoleName"], PolicyName="lambda-execution")["PolicyDocument"]
    assert {"logs:PutLogEvents", "ec2:CreateNetworkInterface"} <= set(policy["Statement"][0]["Action"])
    # In the private subnets, in the application's security group (what the database and cache admit).
    assert sorted(config["VpcConfig"]["SubnetIds"]) == sorted(outputs["private_subnet_ids"])
    assert config["VpcConfig"]["SecurityGroupIds"] == [outputs["app_security_group_id"]]
    # Its log group is the function's own, kept as long as monitoring says; no load balancer, no CPU alarm.
    group = f"/aws/lambda/{name}"
    assert outputs["log_group_name"] == group
    [found] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert found["retentionInDays"] == 7
    assert not logs.describe_log_groups(logGroupNamePrefix=f"/manager/{stack.project}/")["logGroups"]
    assert outputs.get("load_balancer_dns_name") is None and outputs.get("cpu_alarm_name") is None
    assert gone(lambda: elbv2.describe_load_balancers(Names=[f"{stack.name}-alb"]), "LoadBalancerNotFound")
    assert outputs["dashboard_name"] == stack.name
    stack.assert_no_changes()

    outputs = stack.apply(base_document(stack.project))
    assert outputs.get("lambda_function_name") is None and outputs.get("app_security_group_id") is None
    assert gone(lambda: lambda_.get_function(FunctionName=name), "ResourceNotFoundException")
    assert gone(lambda: iam.get_role(RoleName=role["RoleName"]), "NoSuchEntity")
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []


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
