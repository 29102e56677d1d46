# storage: the main bucket `<project>-<environment>-<bucket_name>` with versioning, encryption,
# lifecycle rules and a public access block, and any extra buckets; each refuses requests without
# TLS and logs its access to the access-log bucket (logging.tf). Absent: nothing.
# aws provider 3.x: versioning, encryption and lifecycle rules are blocks of aws_s3_bucket.

locals {
  storage_enabled = var.storage != null

  # Every bucket by its suffix: the main one first, then storage.buckets[].
  storage_buckets = !local.storage_enabled ? {} : merge(
    {
      for b in coalesce(var.storage.buckets, []) : b.name => {
        main       = false
        versioning = coalesce(b.versioning, false)
        public     = coalesce(b.public, false)
      }
    },
    {
      (coalesce(var.storage.bucket_name, "storage")) = {
        main       = true
        versioning = coalesce(var.storage.versioning, false)
        public     = coalesce(var.storage.public, false)
      }
    },
  )
  storage_main_suffix = local.storage_enabled ? coalesce(var.storage.bucket_name, "storage") : null
  storage_encryption  = local.storage_enabled ? coalesce(var.storage.encryption, "aws:kms") : null
  storage_lifecycle   = local.storage_enabled ? coalesce(var.storage.lifecycle_rules, []) : []
}

resource "aws_s3_bucket" "storage" {
  for_each = local.storage_buckets

  bucket = "${local.name}-${each.key}"
  tags   = local.backup_selection_tags

  logging {
    target_bucket = aws_s3_bucket.logs[0].id
    target_prefix = "${local.logs_s3_prefix}/${each.key}/"
  }

  # S3 checks that it may write the access logs when logging is switched on.
  depends_on = [aws_s3_bucket_policy.logs]

  versioning {
    enabled = each.value.versioning
  }

  server_side_encryption_configuration {
    rule {
      apply_server_side_encryption_by_default {
        sse_algorithm = local.storage_encryption
        # aws:kms with the security section's key when there is one, else AWS's managed key.
        kms_master_key_id = local.storage_encryption == "aws:kms" ? local.kms_key_arn : null
      }
    }
  }

  dynamic "lifecycle_rule" {
    for_each = each.value.main ? local.storage_lifecycle : []
    content {
      id      = lifecycle_rule.value.id
      prefix  = lifecycle_rule.value.prefix
      enabled = coalesce(lifecycle_rule.value.enabled, true)

      dynamic "transition" {
        for_each = lifecycle_rule.value.transition_days == null ? [] : [1]
        content {
          days          = lifecycle_rule.value.transition_days
          storage_class = coalesce(lifecycle_rule.value.transition_storage_class, "STANDARD_IA")
        }
      }

      dynamic "expiration" {
        for_each = lifecycle_rule.value.expiration_days == null ? [] : [1]
        content {
          days = lifecycle_rule.value.expiration_days
        }
      }

      dynamic "noncurrent_version_expiration" {
        for_each = lifecycle_rule.value.noncurrent_version_expiration_days == null ? [] : [1]
        content {
          days = lifecycle_rule.value.noncurrent_version_expiration_days
        }
      }
    }
  }
}

resource "aws_s3_bucket_public_access_block" "storage" {
  for_each = { for suffix, b in local.storage_buckets : suffix => b if !b.public }

  bucket                  = aws_s3_bucket.storage[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

data "aws_iam_policy_document" "storage" {
  for_each = local.storage_buckets

  statement {
    sid     = "TlsOnly"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      "arn:${data.aws_partition.current.partition}:s3:::${local.name}-${each.key}",
      "arn:${data.aws_partition.current.partition}:s3:::${local.name}-${each.key}/*",
    ]
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
}

resource "aws_s3_bucket_policy" "storage" {
  for_each = local.storage_buckets

  bucket = aws_s3_bucket.storage[each.key].id
  policy = data.aws_iam_policy_document.storage[each.key].json

  # S3 refuses a policy while the bucket's public access block is being written.
  depends_on = [aws_s3_bucket_public_access_block.storage]
}
