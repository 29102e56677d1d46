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
}

# The copy vault's region. Provider configurations cannot be conditional; without a copy this
# one is the main region and nothing uses it.
# KNOWN LIMITATION: a provider's configuration comes from the current inputs, also when Terraform
# destroys. Dropping cross_region_copy (or the whole section) points this provider back at the
# main region, where the copy vault is not found: it leaves the state and stays in its region.
# Until the manager remembers the previous copy region, delete that vault by hand.
provider "aws" {
  alias  = "backup_copy"
  region = coalesce(local.backup_copy_region, var.region)

  default_tags {
    tags = local.tags
  }
}

resource "aws_backup_vault" "backup" {
  count = local.backup_enabled ? 1 : 0

  name = local.name
}

resource "aws_backup_vault" "backup_copy" {
  count    = local.backup_copy_region != null ? 1 : 0
  provider = aws.backup_copy

  name = "${local.name}-copy"
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
