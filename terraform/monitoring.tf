# monitoring: the application's log group, an alarm topic with an e-mail subscription, a CPU alarm
# on the compute section's instances or service, and a dashboard. Absent section or
# `enabled: false`: nothing. With compute of type lambda the log group is the function's own
# (compute.tf; monitoring sets its retention), there is no CPU alarm (the contract refuses
# alarm_cpu_threshold: Lambda has no CPU metric) and the dashboard shows Lambda's metrics.

locals {
  monitoring_enabled = var.monitoring == null ? false : coalesce(var.monitoring.enabled, true)
  alarm_email        = local.monitoring_enabled ? var.monitoring.alarm_email : null
  alarm_cpu          = local.monitoring_enabled ? var.monitoring.alarm_cpu_threshold : null

  # The log group ECS tasks or the Lambda function write to (null without monitoring).
  log_group_name = !local.monitoring_enabled ? null : (
    local.compute_lambda ? local.lambda_log_group_name : "/manager/${var.project_name}/${var.environment}"
  )

  # The CPU alarm watches the autoscaling group (ec2) or the ECS service (ecs).
  cpu_alarm_enabled = local.alarm_cpu != null && local.compute_lb
  cpu_dimensions = local.compute_ecs ? tomap({
    ClusterName = local.name
    ServiceName = "${local.name}-app"
    }) : tomap({
    AutoScalingGroupName = "${local.name}-app"
  })
}

resource "aws_cloudwatch_log_group" "monitoring" {
  count = local.monitoring_enabled && !local.compute_lambda ? 1 : 0

  name              = local.log_group_name
  retention_in_days = coalesce(var.monitoring.log_retention_days, 30)
  kms_key_id        = local.kms_key_arn
}

resource "aws_sns_topic" "monitoring_alarms" {
  count = local.alarm_email != null ? 1 : 0

  name = "${local.name}-alarms"
  # The key's policy lets CloudWatch alarms publish to it (security.tf).
  kms_master_key_id = local.kms_key_arn
}

resource "aws_sns_topic_subscription" "monitoring_alarm_email" {
  count = local.alarm_email != null ? 1 : 0

  topic_arn = aws_sns_topic.monitoring_alarms[0].arn
  protocol  = "email"
  endpoint  = local.alarm_email
}

resource "aws_cloudwatch_metric_alarm" "monitoring_cpu" {
  count = local.cpu_alarm_enabled ? 1 : 0

  alarm_name          = "${local.name}-cpu-high"
  alarm_description   = "Average CPU of ${local.name} above ${local.alarm_cpu}%"
  namespace           = local.compute_ecs ? "AWS/ECS" : "AWS/EC2"
  metric_name         = "CPUUtilization"
  dimensions          = local.cpu_dimensions
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.alarm_cpu
  treat_missing_data  = "missing"
  alarm_actions       = aws_sns_topic.monitoring_alarms[*].arn
  ok_actions          = aws_sns_topic.monitoring_alarms[*].arn

  # The alarm names the group or service by name: create it after them.
  depends_on = [aws_autoscaling_group.compute, aws_ecs_service.compute]
}

resource "aws_cloudwatch_dashboard" "monitoring" {
  count = local.monitoring_enabled && coalesce(var.monitoring.dashboards, false) ? 1 : 0

  dashboard_name = local.name
  dashboard_body = jsonencode({
    widgets = concat(
      local.compute_lb ? [{
        type   = "metric"
        x      = 0
        y      = 0
        width  = 12
        height = 6
        properties = {
          title   = "CPU"
          region  = var.region
          stat    = "Average"
          period  = 300
          metrics = [concat([local.compute_ecs ? "AWS/ECS" : "AWS/EC2", "CPUUtilization"], flatten([for k, v in local.cpu_dimensions : [k, v]]))]
        }
      }] : [],
      local.compute_lb ? [{
        type   = "metric"
        x      = 12
        y      = 0
        width  = 12
        height = 6
        properties = {
          title   = "Load balancer requests"
          region  = var.region
          stat    = "Sum"
          period  = 300
          metrics = [["AWS/ApplicationELB", "RequestCount", "LoadBalancer", aws_lb.compute[0].arn_suffix]]
        }
      }] : [],
      local.compute_lambda ? [{
        type   = "metric"
        x      = 0
        y      = 0
        width  = 12
        height = 6
        properties = {
          title  = "Invocations and errors"
          region = var.region
          stat   = "Sum"
          period = 300
          metrics = [
            ["AWS/Lambda", "Invocations", "FunctionName", aws_lambda_function.compute[0].function_name],
            ["AWS/Lambda", "Errors", "FunctionName", aws_lambda_function.compute[0].function_name],
            ["AWS/Lambda", "Throttles", "FunctionName", aws_lambda_function.compute[0].function_name],
          ]
        }
        }, {
        type   = "metric"
        x      = 12
        y      = 0
        width  = 12
        height = 6
        properties = {
          title   = "Duration"
          region  = var.region
          stat    = "Average"
          period  = 300
          metrics = [["AWS/Lambda", "Duration", "FunctionName", aws_lambda_function.compute[0].function_name]]
        }
      }] : [],
      [{
        type   = "log"
        x      = 0
        y      = 6
        width  = 24
        height = 6
        properties = {
          title  = "Application log"
          region = var.region
          query  = "SOURCE '${local.log_group_name}' | fields @timestamp, @message | sort @timestamp desc | limit 50"
        }
      }],
    )
  })

  depends_on = [aws_cloudwatch_log_group.monitoring, aws_cloudwatch_log_group.compute_lambda]
}
