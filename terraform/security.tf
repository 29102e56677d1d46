# security: who may reach the application, a web application firewall in front of its load
# balancer, and the KMS key that encrypts the storage, database and secret. Absent: nothing.

locals {
  allowed_cidr_blocks = var.security == null ? [] : coalesce(var.security.allowed_cidr_blocks, [])
  waf_enabled         = var.security == null ? false : coalesce(var.security.enable_waf, false)
  encryption_enabled  = var.security == null ? false : coalesce(var.security.enable_encryption, true)

  # The key other sections encrypt with; null without security.enable_encryption.
  kms_key_arn = one(aws_kms_key.security[*].arn)
}

# The application's security group for the allowed networks (the load balancer's own group
# admits the same blocks).
resource "aws_security_group" "security_app" {
  count = length(local.allowed_cidr_blocks) > 0 ? 1 : 0

  name        = "${local.name}-allowed"
  description = "HTTP and HTTPS from the allowed networks of ${local.name}"
  vpc_id      = aws_vpc.main.id

  ingress {
    description = "HTTP"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = local.allowed_cidr_blocks
  }

  ingress {
    description = "HTTPS"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = local.allowed_cidr_blocks
  }

  tags = {
    Name = "${local.name}-allowed"
  }
}

resource "aws_kms_key" "security" {
  count = local.encryption_enabled ? 1 : 0

  description             = "Encryption key of ${local.name}"
  enable_key_rotation     = true
  deletion_window_in_days = 7
}

resource "aws_kms_alias" "security" {
  count = local.encryption_enabled ? 1 : 0

  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.security[0].key_id
}

resource "aws_wafv2_web_acl" "security" {
  count = local.waf_enabled ? 1 : 0

  name  = local.name
  scope = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "aws-common-rule-set"
    priority = 1

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-common"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = local.name
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "security" {
  # Only in front of a load balancer (ec2, ecs): the contract refuses enable_waf with lambda.
  count = local.waf_enabled && local.compute_lb ? 1 : 0

  resource_arn = aws_lb.compute[0].arn
  web_acl_arn  = aws_wafv2_web_acl.security[0].arn
}
