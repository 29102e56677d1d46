# security: who may reach the application (the load balancer's security group admits
# allowed_cidr_blocks), a web application firewall in front of its load balancer with its own log,
# and the KMS key that encrypts the storage, database, secrets, queues, topics, log groups and backup
# vault. Absent: nothing.

locals {
  waf_enabled        = var.security == null ? false : coalesce(var.security.enable_waf, false)
  encryption_enabled = var.security == null ? false : coalesce(var.security.enable_encryption, true)

  # The key other sections encrypt with; null without security.enable_encryption.
  kms_key_arn = one(aws_kms_key.security[*].arn)
}

resource "aws_kms_key" "security" {
  count = local.encryption_enabled ? 1 : 0

  description             = "Encryption key of ${local.name}"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.kms[0].json
}

# The account's own administrators, and the services that encrypt with the key on the partition's
# behalf: CloudWatch Logs (its log groups) and CloudWatch alarms (publishing to its encrypted topic).
data "aws_iam_policy_document" "kms" {
  count = local.encryption_enabled ? 1 : 0

  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
    }
  }

  statement {
    sid       = "CloudWatchAlarms"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }
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

  # Requests from anonymising services (Tor, proxies); requests from hosting providers' networks
  # are only counted, since servers calling the application come from there.
  rule {
    name     = "aws-anonymous-ip-list"
    priority = 3

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAnonymousIpList"

        excluded_rule {
          name = "HostingProviderIPList"
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  # Request patterns known to be malicious, Log4j's JNDI lookups (CVE-2021-44228) among them.
  rule {
    name     = "aws-known-bad-inputs"
    priority = 2

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-bad-inputs"
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

# WAF logs go to a log group whose name starts with aws-waf-logs- (WAF's rule for its destinations).
resource "aws_cloudwatch_log_group" "security_waf" {
  count = local.waf_enabled ? 1 : 0

  name              = "aws-waf-logs-${local.name}"
  retention_in_days = local.logs_retention_days
  kms_key_id        = local.kms_key_arn
}

resource "aws_wafv2_web_acl_logging_configuration" "security" {
  count = local.waf_enabled ? 1 : 0

  resource_arn            = aws_wafv2_web_acl.security[0].arn
  log_destination_configs = [aws_cloudwatch_log_group.security_waf[0].arn]
}
