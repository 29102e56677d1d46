output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.main.id
}

output "vpc_cidr" {
  description = "CIDR block of the VPC."
  value       = aws_vpc.main.cidr_block
}

output "availability_zones" {
  description = "Availability zones the subnets are spread over."
  value       = local.azs
}

output "public_subnet_ids" {
  description = "IDs of the public subnets, one per availability zone."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "IDs of the private subnets, one per availability zone."
  value       = aws_subnet.private[*].id
}

output "nat_gateway_id" {
  description = "ID of the NAT gateway, or null when disabled."
  value       = one(aws_nat_gateway.main[*].id)
}

output "vpn_gateway_id" {
  description = "ID of the VPN gateway, or null when disabled."
  value       = one(aws_vpn_gateway.main[*].id)
}

# --- Sections of variables.yml: null where a section is absent. Never the database password. ---

output "load_balancer_dns_name" {
  description = "DNS name of the application's load balancer (compute)."
  value       = one(aws_lb.compute[*].dns_name)
}

output "target_group_arn" {
  description = "ARN of the load balancer's target group (compute)."
  value       = one(aws_lb_target_group.compute[*].arn)
}

output "app_security_group_id" {
  description = "Security group of the instances, tasks or function (compute)."
  value       = local.app_security_group_id
}

output "autoscaling_group_name" {
  description = "Name of the autoscaling group (compute type ec2)."
  value       = one(aws_autoscaling_group.compute[*].name)
}

output "ecs_cluster_name" {
  description = "Name of the ECS cluster (compute type ecs)."
  value       = one(aws_ecs_cluster.compute[*].name)
}

output "ecs_service_name" {
  description = "Name of the ECS service (compute type ecs)."
  value       = one(aws_ecs_service.compute[*].name)
}

output "lambda_function_name" {
  description = "Name of the Lambda function (compute type lambda)."
  value       = one(aws_lambda_function.compute[*].function_name)
}

output "lambda_function_arn" {
  description = "ARN of the Lambda function (compute type lambda)."
  value       = one(aws_lambda_function.compute[*].arn)
}

output "lambda_role_arn" {
  description = "ARN of the Lambda function's execution role (compute type lambda)."
  value       = one(aws_iam_role.compute_lambda[*].arn)
}

output "database_endpoint" {
  description = "Address of the database (instance, or Aurora cluster writer)."
  value       = local.database_address
}

output "database_port" {
  description = "Port of the database."
  value       = local.database_port
}

output "database_username" {
  description = "Master user name of the database."
  value       = local.database_enabled ? local.database_username : null
}

output "database_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the database's master credentials."
  value       = one(aws_secretsmanager_secret.database[*].arn)
}

output "storage_bucket_name" {
  description = "Name of the main bucket (storage)."
  value       = local.storage_enabled ? aws_s3_bucket.storage[local.storage_main_suffix].bucket : null
}

output "storage_bucket_names" {
  description = "Names of all buckets (storage), by their suffix."
  value       = local.storage_enabled ? { for suffix, bucket in aws_s3_bucket.storage : suffix => bucket.bucket } : null
}

output "log_group_name" {
  description = "Name of the application's CloudWatch log group (monitoring; with lambda, the function's own)."
  value = local.monitoring_enabled ? one(concat(
    aws_cloudwatch_log_group.monitoring[*].name,
    aws_cloudwatch_log_group.compute_lambda[*].name,
  )) : null
}

output "alarm_topic_arn" {
  description = "ARN of the SNS topic alarms notify (monitoring.alarm_email)."
  value       = one(aws_sns_topic.monitoring_alarms[*].arn)
}

output "cpu_alarm_name" {
  description = "Name of the CPU alarm (monitoring.alarm_cpu_threshold)."
  value       = one(aws_cloudwatch_metric_alarm.monitoring_cpu[*].alarm_name)
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard (monitoring.dashboards)."
  value       = one(aws_cloudwatch_dashboard.monitoring[*].dashboard_name)
}

output "kms_key_arn" {
  description = "ARN of the KMS key (security.enable_encryption)."
  value       = local.kms_key_arn
}

output "web_acl_arn" {
  description = "ARN of the WAFv2 web ACL (security.enable_waf)."
  value       = one(aws_wafv2_web_acl.security[*].arn)
}

output "scaling_policy_names" {
  description = "Names of the target-tracking policies (scaling)."
  value = local.scaling_enabled ? concat(
    aws_autoscaling_policy.scaling_cpu[*].name,
    aws_autoscaling_policy.scaling_memory[*].name,
    [for policy in aws_appautoscaling_policy.scaling : policy.name],
  ) : null
}

output "backup_vault_name" {
  description = "Name of the AWS Backup vault (backup)."
  value       = one(aws_backup_vault.backup[*].name)
}

output "backup_plan_id" {
  description = "ID of the AWS Backup plan (backup)."
  value       = one(aws_backup_plan.backup[*].id)
}

output "backup_copy_vault_arn" {
  description = "ARN of the vault backups are copied to (backup.cross_region_copy)."
  value       = one(aws_backup_vault.backup_copy[*].arn)
}

output "notifications_topic_arn" {
  description = "ARN of the SNS topic for deployment notices (notifications.emails)."
  value       = one(aws_sns_topic.notifications[*].arn)
}

output "queue_url" {
  description = "URL of the SQS queue (features.enable_queue); the id of an aws_sqs_queue is its URL."
  value       = one(aws_sqs_queue.features[*].id)
}

output "dead_letter_queue_url" {
  description = "URL of the queue's dead-letter queue (features.enable_queue)."
  value       = one(aws_sqs_queue.features_dead_letter[*].id)
}

output "cache_endpoint" {
  description = "Address of the Redis node (features.enable_cache); clients connect with TLS and its AUTH token."
  value       = local.cache_address
}

output "cache_port" {
  description = "Port of the Redis node (features.enable_cache)."
  value       = local.feature_cache ? 6379 : null
}

output "cache_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the Redis AUTH token (features.enable_cache)."
  value       = one(aws_secretsmanager_secret.features_cache[*].arn)
}

output "access_log_bucket_name" {
  description = "Name of the bucket flow logs, load balancer and bucket access logs go to."
  value       = one(aws_s3_bucket.logs[*].bucket)
}
