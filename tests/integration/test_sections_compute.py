"""The compute section by type (EC2, ECS on Fargate, Lambda) and the scaling that goes with it."""

from __future__ import annotations

import pytest

from tests.integration.sections import REGION, base_document, gone, with_section

pytestmark = pytest.mark.integration


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
    # IMDSv2 only, one hop.
    metadata = versions[0]["LaunchTemplateData"]["MetadataOptions"]
    assert (metadata["HttpTokens"], metadata["HttpPutResponseHopLimit"]) == ("required", 1)
    # Invalid headers dropped, access logs to the access-log bucket; no deletion protection outside production.
    attributes = {
        a["Key"]: a["Value"]
        for a in elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]
    }
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["access_logs.s3.bucket"] == outputs["access_log_bucket_name"]
    assert attributes["deletion_protection.enabled"] == "false"
    # The instances reach the VPC, and HTTPS and HTTP outside it; nothing else.
    [app] = ec2.describe_security_groups(GroupIds=[outputs["app_security_group_id"]])["SecurityGroups"]
    egress = sorted((p["IpProtocol"], p.get("FromPort"), p["IpRanges"][0]["CidrIp"]) for p in app["IpPermissionsEgress"])
    assert egress == [("-1", None, "10.40.0.0/16"), ("tcp", 80, "0.0.0.0/0"), ("tcp", 443, "0.0.0.0/0")], egress
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
    assert task["containerDefinitions"][0]["readonlyRootFilesystem"] is True
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


