"""Sections that store, watch, guard, back up and queue: each applied onto networking, found through
boto3, re-planned with no changes, removed and found gone."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from manager_pipeline.errors import TerraformError
from manager_pipeline.terraform.runner import TerraformRunner
from manager_pipeline.terraform.workdir import (
    BACKEND_FILE,
    PLAN_FILE,
    TFVARS_FILE,
    BackendSettings,
    read_previous_state,
)
from tests.integration.sections import _open_stack, base_document, gone, tfvars_for, with_section

pytestmark = pytest.mark.integration


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
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    # Every bucket refuses requests without TLS and logs its access to the access-log bucket.
    access_logs = outputs["access_log_bucket_name"]
    assert access_logs == f"{stack.name}-access-logs"
    for suffix, bucket in outputs["storage_bucket_names"].items():
        [statement] = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
        assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": ["false"]}}
        logging = s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]
        assert logging == {"TargetBucket": access_logs, "TargetPrefix": f"s3/{suffix}/"}
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
    logs = stack.client("logs")
    outputs = stack.apply(
        with_section(
            stack,
            security={"allowed_cidr_blocks": ["10.0.0.0/8"], "enable_waf": True, "enable_encryption": True},
        )
    )
    # The VPC's default group admits and sends nothing.
    [default] = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [outputs["vpc_id"]]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    assert default["IpPermissions"] == [] and default["IpPermissionsEgress"] == []
    # No group of its own for the allowed networks: the load balancer's group admits them (compute).
    assert outputs.get("allowed_security_group_id") is None
    assert not [g for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] == f"{stack.name}-allowed"]
    key_id = outputs["kms_key_arn"].split("/")[-1]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    assert f"alias/{stack.name}" in {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    assert {s["Sid"] for s in policy["Statement"]} == {"AccountAdministers", "CloudWatchLogs", "CloudWatchAlarms"}
    acls = {a["Name"]: a for a in wafv2.list_web_acls(Scope="REGIONAL")["WebACLs"]}
    assert acls[stack.name]["ARN"] == outputs["web_acl_arn"]
    acl = wafv2.get_web_acl(Name=stack.name, Scope="REGIONAL", Id=acls[stack.name]["Id"])["WebACL"]
    groups = {r["Statement"]["ManagedRuleGroupStatement"]["Name"] for r in acl["Rules"]}
    assert groups == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesAnonymousIpList"}
    # The web ACL logs to its own log group, on the section's key, kept a year.
    logging = wafv2.get_logging_configuration(ResourceArn=outputs["web_acl_arn"])["LoggingConfiguration"]
    [waf_group] = logs.describe_log_groups(logGroupNamePrefix=f"aws-waf-logs-{stack.name}")["logGroups"]
    assert logging["LogDestinationConfigs"] == [waf_group["arn"].removesuffix(":*")]
    assert waf_group["retentionInDays"] == 365 and waf_group["kmsKeyId"] == outputs["kms_key_arn"]
    stack.assert_no_changes()

    stack.apply(base_document(stack.project))
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert not logs.describe_log_groups(logGroupNamePrefix=f"aws-waf-logs-{stack.name}")["logGroups"]
    assert f"alias/{stack.name}" not in {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    assert stack.name not in {a["Name"] for a in wafv2.list_web_acls(Scope="REGIONAL")["WebACLs"]}


def _read_previous_state(stack) -> str | None:
    """What each run's init does: hand the module what the partition's state holds (the copy vault's region)."""
    text = (stack.path / BACKEND_FILE).read_text()
    setting = {name: re.search(rf'^{name}\s*=\s*"([^"]*)"', text, re.M)[1] for name in ("bucket", "key", "region")}
    return read_previous_state(stack.path, stack.client("s3"), BackendSettings(**setting))


def test_backup(stack):
    backup, copy_region = stack.client("backup"), stack.client("backup", "us-west-2")
    backup_section = {"schedule": "cron(0 3 * * ? *)", "retention_days": 5, "cross_region_copy": "us-west-2"}
    assert _read_previous_state(stack) is None
    outputs = stack.apply(with_section(stack, backup=backup_section), solo=True)
    plan_id = outputs["backup_plan_id"]
    assert outputs["backup_vault_name"] == stack.name
    assert backup.describe_backup_vault(BackupVaultName=stack.name)["BackupVaultName"] == stack.name
    assert copy_region.describe_backup_vault(BackupVaultName=f"{stack.name}-copy")
    [rule] = backup.get_backup_plan(BackupPlanId=plan_id)["BackupPlan"]["Rules"]
    assert rule["ScheduleExpression"] == "cron(0 3 * * ? *)" and rule["Lifecycle"]["DeleteAfterDays"] == 5
    assert rule["CopyActions"][0]["DestinationBackupVaultArn"] == outputs["backup_copy_vault_arn"]
    assert ":us-west-2:" in outputs["backup_copy_vault_arn"]
    assert _read_previous_state(stack) == "us-west-2"
    stack.assert_no_changes(solo=True)

    # Moving the copy takes two runs (one provider configuration cannot destroy in one region and
    # create in another): the plan is refused and nothing changes.
    moved = with_section(stack, backup=backup_section | {"cross_region_copy": "eu-west-1"})
    with pytest.raises(TerraformError, match="moves the copy vault from us-west-2 to eu-west-1"):
        stack.apply(moved, solo=True)
    assert copy_region.describe_backup_vault(BackupVaultName=f"{stack.name}-copy")

    # Without the section the copy provider stays in the region of the state's copy vault: the
    # vault is destroyed there, not looked for in the main region and left behind.
    outputs = stack.apply(base_document(stack.project), solo=True)
    assert outputs.get("backup_copy_vault_arn") is None
    assert gone(lambda: backup.describe_backup_vault(BackupVaultName=stack.name), "ResourceNotFoundException")
    assert gone(lambda: backup.get_backup_plan(BackupPlanId=plan_id), "ResourceNotFoundException") or (
        "DeletionDate" in backup.get_backup_plan(BackupPlanId=plan_id)  # moto keeps deleted plans, dated
    )
    copy_vault = f"{stack.name}-copy"
    assert gone(lambda: copy_region.describe_backup_vault(BackupVaultName=copy_vault), "ResourceNotFoundException")
    assert not [address for address in stack.state() if "backup" in address]
    assert _read_previous_state(stack) is None
    stack.assert_no_changes(solo=True)


def test_backup_selection_is_planned(tmp_path, moto_endpoint, tools_dir):
    """The tag selection is in the plan; moto cannot hold it, so a stand-in run leaves it out."""
    project = f"sel{uuid.uuid4().hex[:6]}"
    root, toolchain, env = _open_stack(tmp_path / "run", moto_endpoint, tools_dir, project, gaps=False)
    runner = TerraformRunner(root, toolchain.terraform, env)
    runner.init(root / "backend.hcl")
    document = base_document(project) | {"backup": {"enabled": True}, "database": {"deletion_protection": False}}
    (root / TFVARS_FILE).write_text(json.dumps(tfvars_for(document)))
    runner._check("validate", runner._run("validate"))
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
    """What the stand-in holds of the cache: its secret, security group and subnet group (not the group itself)."""
    elasticache, ec2, secrets = stack.client("elasticache"), stack.client("ec2"), stack.client("secretsmanager")
    outputs = stack.apply(with_section(stack, features={"enable_cache": True}))
    assert outputs["cache_port"] == 6379
    [subnets] = elasticache.describe_cache_subnet_groups(CacheSubnetGroupName=f"{stack.name}-cache")["CacheSubnetGroups"]
    assert {s["SubnetIdentifier"] for s in subnets["Subnets"]} == set(outputs["private_subnet_ids"])
    # The AUTH token is in the secret only; no output holds it.
    secret = json.loads(secrets.get_secret_value(SecretId=outputs["cache_secret_arn"])["SecretString"])
    assert secret["tls"] is True and secret["port"] == 6379 and len(secret["auth_token"]) == 36
    assert secret["auth_token"] not in json.dumps(stack.runner.outputs())
    stack.assert_no_changes()

    # moto 5.2.5 has no DeleteCacheSubnetGroup: Terraform would wait on it. Out of the state with it.
    stack.state_rm("aws_elasticache_subnet_group.features[0]")
    stack.apply(base_document(stack.project))
    assert not [g for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] == f"{stack.name}-cache"]
    assert "DeletedDate" in secrets.describe_secret(SecretId=outputs["cache_secret_arn"])
    pytest.skip("moto 5.2.5 cannot delete a cache subnet group: its removal is unchecked")


def test_features_cache_is_planned_with_tls_and_auth(tmp_path, moto_endpoint, tools_dir):
    """The Redis replication group as the plan asks AWS for it (moto cannot hold one: terraform/workdir.py STAND_IN_LEFT_OUT)."""
    project = f"rds{uuid.uuid4().hex[:6]}"
    root, toolchain, env = _open_stack(tmp_path / "run", moto_endpoint, tools_dir, project, gaps=False)
    runner = TerraformRunner(root, toolchain.terraform, env)
    runner.init(root / "backend.hcl")
    document = base_document(project) | {"features": {"enable_cache": True}, "security": {"enable_encryption": True}}
    (root / TFVARS_FILE).write_text(json.dumps(tfvars_for(document)))
    runner.plan(root / PLAN_FILE)
    plan = runner.show_json(root / PLAN_FILE)
    planned = {c["address"]: c["change"] for c in plan["resource_changes"]}
    group = planned["aws_elasticache_replication_group.features[0]"]
    after, unknown = group["after"], group["after_unknown"]
    assert after["engine"] == "redis" and after["number_cache_clusters"] == 1 and after["port"] == 6379
    assert after["transit_encryption_enabled"] is True and after["at_rest_encryption_enabled"] is True
    assert after["snapshot_retention_limit"] == 1
    # The AUTH token and the key are the ones the same plan makes: known after apply, and the token
    # is sensitive (never shown in the plan's text).
    assert unknown["auth_token"] is True and unknown["kms_key_id"] is True
    assert group["after_sensitive"]["auth_token"] is True
    secret = planned["aws_secretsmanager_secret_version.features_cache[0]"]
    assert secret["after_sensitive"]["secret_string"] is True
