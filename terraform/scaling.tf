# scaling: target-tracking policies on the compute section's autoscaling group (ec2) or ECS
# service (ecs), on CPU and on memory. Absent: nothing (the group keeps AWS's default cooldown).
# A Lambda function scales by itself: the contract refuses a scaling section with lambda.

locals {
  scaling_enabled    = var.scaling != null && local.compute_lb
  scaling_cpu        = local.scaling_enabled ? var.scaling.target_cpu_utilization : null
  scaling_memory     = local.scaling_enabled ? var.scaling.target_memory_utilization : null
  scale_in_cooldown  = local.scaling_enabled ? coalesce(var.scaling.scale_in_cooldown, 300) : 300
  scale_out_cooldown = local.scaling_enabled ? coalesce(var.scaling.scale_out_cooldown, 300) : 300
}

# --- ec2 -------------------------------------------------------------------------------

resource "aws_autoscaling_policy" "scaling_cpu" {
  count = local.compute_ec2 && local.scaling_cpu != null ? 1 : 0

  name                      = "${local.name}-cpu"
  autoscaling_group_name    = aws_autoscaling_group.compute[0].name
  policy_type               = "TargetTrackingScaling"
  estimated_instance_warmup = local.scale_out_cooldown

  target_tracking_configuration {
    target_value = local.scaling_cpu
    predefined_metric_specification {
      predefined_metric_type = "ASGAverageCPUUtilization"
    }
  }
}

# Memory is no EC2 metric: the CloudWatch agent on the instances publishes mem_used_percent.
resource "aws_autoscaling_policy" "scaling_memory" {
  count = local.compute_ec2 && local.scaling_memory != null ? 1 : 0

  name                      = "${local.name}-memory"
  autoscaling_group_name    = aws_autoscaling_group.compute[0].name
  policy_type               = "TargetTrackingScaling"
  estimated_instance_warmup = local.scale_out_cooldown

  target_tracking_configuration {
    target_value = local.scaling_memory
    customized_metric_specification {
      namespace   = "CWAgent"
      metric_name = "mem_used_percent"
      statistic   = "Average"
      metric_dimension {
        name  = "AutoScalingGroupName"
        value = aws_autoscaling_group.compute[0].name
      }
    }
  }
}

# --- ecs -------------------------------------------------------------------------------

resource "aws_appautoscaling_target" "scaling" {
  count = local.compute_ecs && local.scaling_enabled ? 1 : 0

  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.compute[0].name}/${aws_ecs_service.compute[0].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.instances.min_instances
  max_capacity       = var.instances.max_instances
}

resource "aws_appautoscaling_policy" "scaling" {
  for_each = !(local.compute_ecs && local.scaling_enabled) ? {} : {
    for metric, target in {
      cpu    = { value = local.scaling_cpu, type = "ECSServiceAverageCPUUtilization" }
      memory = { value = local.scaling_memory, type = "ECSServiceAverageMemoryUtilization" }
    } : metric => target if target.value != null
  }

  name               = "${local.name}-${each.key}"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.scaling[0].service_namespace
  resource_id        = aws_appautoscaling_target.scaling[0].resource_id
  scalable_dimension = aws_appautoscaling_target.scaling[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = each.value.value
    scale_in_cooldown  = local.scale_in_cooldown
    scale_out_cooldown = local.scale_out_cooldown
    predefined_metric_specification {
      predefined_metric_type = each.value.type
    }
  }
}
