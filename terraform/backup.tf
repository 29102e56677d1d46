# backup: an AWS Backup vault and a daily plan over this partition's resources, optionally
# copied to a vault in another region. Absent section or `enabled: false`: nothing.

locals {
  backup_enabled     = var.backup == null ? false : coalesce(var.backup.enabled, true)
  backup_retention   = local.backup_enabled ? coalesce(var.backup.retention_days, var.instances.backup_retention_days) : null
  backup_copy_region = local.backup_enabled ? var.backup.cross_region_copy : null

  # Backup selections OR their tags, so selecting on Project and on Environment would take in
  # other projects' and environments' resources too. The resources worth backing up (database,
  # buckets) instead carry one tag naming this project and environment, only while the plan exists.
  backup_selection_tag  = { key = "BackupPlan", value = "${var.project_name}/${var.environment}" }
  backup_selection_tags = local.backup_enabled ? { (local.backup_selection_tag.key) = local.backup_selection_tag.value } : {}

  # The region of the copy vault this partition's state holds, as the previous run left it: the
  # manager reads it from the state (the vault's ARN) at init and sets it in an override file of
  # the run's copy of the module, outside the source's inputs. Null: no copy vault in the state
  # (or the module run by hand).
  backup_copy_region_in_state = null
}

# The copy vault's region. Provider configurations cannot be conditional, and Terraform destroys a
# resource through its provider's current configuration: the region the state's copy vault is in
# comes first, so a vault the inputs no longer ask for (cross_region_copy dropped or false, or no
# backup section) is destroyed in its region, not looked for in the main region and left behind.
# Without a copy vault in the state, the region the inputs name; without either, the main region,
# and nothing uses it.
provider "aws" {
  alias  = "backup_copy"
  region = coalesce(local.backup_copy_region_in_state, local.backup_copy_region, var.region)

  default_tags {
    tags = local.tags
  }
}

resource "aws_backup_vault" "backup" {
  count = local.backup_enabled ? 1 : 0

  name        = local.name
  kms_key_arn = local.kms_key_arn
}

# KMS keys are regional: the copy vault's is a key of its own in the copy region.
resource "aws_kms_key" "backup_copy" {
  count    = local.backup_copy_region != null && local.encryption_enabled ? 1 : 0
  provider = aws.backup_copy

  description             = "Backup copies of ${local.name}"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

resource "aws_backup_vault" "backup_copy" {
  count    = local.backup_copy_region != null ? 1 : 0
  provider = aws.backup_copy

  name        = "${local.name}-copy"
  kms_key_arn = one(aws_kms_key.backup_copy[*].arn)

  lifecycle {
    # One provider configuration cannot destroy the vault in one region and create one in another:
    # moving the copy takes two runs, and this plan is refused before anything changes.
    precondition {
      condition     = local.backup_copy_region_in_state == null || local.backup_copy_region_in_state == local.backup_copy_region
      error_message = "backup.cross_region_copy moves the copy vault from ${coalesce(local.backup_copy_region_in_state, "-")} to ${coalesce(local.backup_copy_region, "-")}, which one run cannot do: set cross_region_copy to false and deploy (that removes the vault in ${coalesce(local.backup_copy_region_in_state, "-")}), then name ${coalesce(local.backup_copy_region, "-")}."
    }
  }
}

resource "aws_backup_plan" "backup" {
  count = local.backup_enabled ? 1 : 0

  name = local.name

  rule {
    rule_name         = "${local.name}-scheduled"
    target_vault_name = aws_backup_vault.backup[0].name
    schedule          = coalesce(var.backup.schedule, "cron(0 5 * * ? *)")

    lifecycle {
      delete_after = local.backup_retention
    }

    dynamic "copy_action" {
      for_each = aws_backup_vault.backup_copy[*].arn
      content {
        destination_vault_arn = copy_action.value
        lifecycle {
          delete_after = local.backup_retention
        }
      }
    }
  }
}

resource "aws_iam_role" "backup" {
  count = local.backup_enabled ? 1 : 0

  name = "${local.name}-backup"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "backup.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

# What AWS Backup needs to back up and restore the database and the buckets, inline (AWS's
# managed AWSBackupServiceRolePolicyFor* policies are not on every AWS stand-in).
resource "aws_iam_role_policy" "backup" {
  count = local.backup_enabled ? 1 : 0

  name = "backup"
  role = aws_iam_role.backup[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid    = "Databases"
        Effect = "Allow"
        Action = [
          "rds:AddTagsToResource",
          "rds:ListTagsForResource",
          "rds:DescribeDBInstances",
          "rds:DescribeDBClusters",
          "rds:CreateDBSnapshot",
          "rds:CreateDBClusterSnapshot",
          "rds:DescribeDBSnapshots",
          "rds:DescribeDBClusterSnapshots",
          "rds:CopyDBSnapshot",
          "rds:CopyDBClusterSnapshot",
          "rds:DeleteDBSnapshot",
          "rds:DeleteDBClusterSnapshot",
          "rds:ModifyDBSnapshotAttribute",
          "rds:ModifyDBClusterSnapshotAttribute",
        ]
        Resource = "*"
      },
      {
        Sid    = "Buckets"
        Effect = "Allow"
        Action = [
          "s3:GetBucketTagging",
          "s3:GetInventoryConfiguration",
          "s3:PutInventoryConfiguration",
          "s3:ListBucketVersions",
          "s3:ListBucket",
          "s3:GetBucketVersioning",
          "s3:GetBucketNotification",
          "s3:PutBucketNotification",
          "s3:GetBucketLocation",
          "s3:GetBucketAcl",
          "s3:GetObjectAcl",
          "s3:GetObject",
          "s3:GetObjectVersionTagging",
          "s3:GetObjectTagging",
          "s3:GetObjectVersion",
          "s3:GetObjectVersionAcl",
          "events:DescribeRule",
          "events:EnableRule",
          "events:PutRule",
          "events:DeleteRule",
          "events:PutTargets",
          "events:RemoveTargets",
          "events:ListTargetsByRule",
          "events:DisableRule",
          "cloudwatch:GetMetricData",
          "events:ListRules",
        ]
        Resource = "*"
      },
      {
        Sid    = "VaultsAndKeys"
        Effect = "Allow"
        Action = [
          "backup:DescribeBackupVault",
          "backup:CopyIntoBackupVault",
          "tag:GetResources",
          "kms:DescribeKey",
          "kms:Decrypt",
          "kms:GenerateDataKey",
          "kms:CreateGrant",
          "kms:RetireGrant",
        ]
        Resource = "*"
      },
    ]
  })
}

resource "aws_backup_selection" "backup" {
  count = local.backup_enabled ? 1 : 0

  name         = local.name
  plan_id      = aws_backup_plan.backup[0].id
  iam_role_arn = aws_iam_role.backup[0].arn

  selection_tag {
    type  = "STRINGEQUALS"
    key   = local.backup_selection_tag.key
    value = local.backup_selection_tag.value
  }
}
