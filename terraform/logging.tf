# logging: the partition's access-log bucket `<project>-<environment>-access-logs`, where the VPC's
# flow logs (networking.flow_logs), the load balancer's access logs and the storage buckets' server
# access logs go. It exists whenever one of them is on. SSE-S3, not KMS: load balancer access logs
# can only be delivered to SSE-S3 buckets. Logs expire after a year. Outside production a destroy
# empties it; in production its logs outlive the partition (a destroy stops at a non-empty bucket).

locals {
  flow_logs_enabled   = var.flow_logs
  logs_bucket_enabled = local.flow_logs_enabled || local.compute_lb || local.storage_enabled
  logs_bucket_name    = "${local.name}-access-logs"
  logs_retention_days = 365
  logs_elb_prefix     = "lb"
  logs_s3_prefix      = "s3"
  logs_bucket_arn     = "arn:${data.aws_partition.current.partition}:s3:::${local.logs_bucket_name}"
  account_id          = data.aws_caller_identity.current.account_id
  logs_is_production  = var.environment == "production"
}

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

# The account Elastic Load Balancing writes access logs from, in this region.
data "aws_elb_service_account" "current" {}

resource "aws_s3_bucket" "logs" {
  count = local.logs_bucket_enabled ? 1 : 0

  bucket        = local.logs_bucket_name
  force_destroy = !local.logs_is_production

  # A tag of its own: with none, aws 3.39 records null at creation and reads {} back, which a
  # refresh-only plan (the drift check) reports as a change.
  tags = {
    Name = local.logs_bucket_name
  }

  versioning {
    enabled = true
  }

  server_side_encryption_configuration {
    rule {
      apply_server_side_encryption_by_default {
        sse_algorithm = "AES256"
      }
    }
  }

  # A dynamic block, as storage.tf's rules are: aws 3.39 records a rule's tag filter as null at
  # creation and reads {} back, which a refresh-only plan reports; the drift check takes attributes
  # of dynamic blocks as the provider's own (drift/report.py), so this one opens no drift issue.
  dynamic "lifecycle_rule" {
    for_each = [local.logs_retention_days]
    content {
      id      = "expire-logs"
      enabled = true

      abort_incomplete_multipart_upload_days = 7

      expiration {
        days = lifecycle_rule.value
      }

      noncurrent_version_expiration {
        days = 30
      }
    }
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  count = local.logs_bucket_enabled ? 1 : 0

  bucket                  = aws_s3_bucket.logs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

data "aws_iam_policy_document" "logs" {
  count = local.logs_bucket_enabled ? 1 : 0

  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [local.logs_bucket_arn, "${local.logs_bucket_arn}/*"]
    # {"AWS": "*"}: every principal, as "*" is (the stand-in cannot read a bare "*").
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "LoadBalancerAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${local.logs_bucket_arn}/${local.logs_elb_prefix}/AWSLogs/${local.account_id}/*"]
    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.current.arn]
    }
  }

  statement {
    sid     = "LogDeliveryWrite"
    actions = ["s3:PutObject"]
    # Flow logs land under AWSLogs/<account>/vpcflowlogs/ at the bucket's root (a folder in the
    # destination ARN is AWS's option, which the stand-in does not take).
    resources = ["${local.logs_bucket_arn}/AWSLogs/${local.account_id}/*"]
    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-acl"
      values   = ["bucket-owner-full-control"]
    }
  }

  statement {
    sid       = "LogDeliveryAclCheck"
    actions   = ["s3:GetBucketAcl"]
    resources = [local.logs_bucket_arn]
    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }
  }

  # One statement per bucket whose access it logs, each to that bucket's own prefix.
  dynamic "statement" {
    for_each = keys(local.storage_buckets)
    content {
      sid       = "S3ServerAccessLogs${replace(title(replace(statement.value, "-", " ")), " ", "")}"
      actions   = ["s3:PutObject"]
      resources = ["${local.logs_bucket_arn}/${local.logs_s3_prefix}/${statement.value}/*"]
      principals {
        type        = "Service"
        identifiers = ["logging.s3.amazonaws.com"]
      }
      condition {
        test     = "ArnLike"
        variable = "aws:SourceArn"
        values   = ["arn:${data.aws_partition.current.partition}:s3:::${local.name}-${statement.value}"]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  count = local.logs_bucket_enabled ? 1 : 0

  bucket = aws_s3_bucket.logs[0].id
  policy = data.aws_iam_policy_document.logs[0].json

  # One bucket-level change at a time: S3 refuses a policy while the public access block is written.
  depends_on = [aws_s3_bucket_public_access_block.logs]
}

resource "aws_flow_log" "networking" {
  count = local.flow_logs_enabled ? 1 : 0

  vpc_id               = aws_vpc.main.id
  traffic_type         = "ALL"
  log_destination_type = "s3"
  log_destination      = aws_s3_bucket.logs[0].arn

  tags = {
    Name = "${local.name}-flow-logs"
  }

  depends_on = [aws_s3_bucket_policy.logs]
}
