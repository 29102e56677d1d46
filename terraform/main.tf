# The manager's root module: every source repo's infrastructure is an instance of it.
# Inputs arrive as typed variables from the validated variables.yml of one source and
# environment (written by the manager as *.auto.tfvars.json); the state backend is
# configured per source and environment at init time.

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Only the major the tests run (the offline mirror's 3.39.0); .terraform.lock.hcl pins the exact
      # build. Moving to a new major: docs/setup.md, "Moving to a new provider major".
      version = "~> 3.39"
    }
  }

  backend "s3" {}
}

locals {
  name = "${var.project_name}-${var.environment}"

  manager_tags = {
    Project     = var.project_name
    Environment = var.environment
    Source      = var.source_name
    ManagedBy   = "manager-pipeline"
  }

  # The manager's own tags come last so a source repo cannot overwrite them. A source tag whose
  # key differs from one of them only in case (`project`, `environment`) is dropped too: IAM tag
  # keys are case-insensitive and IAM refuses a role tagged with both.
  tags = merge(
    { for key, value in var.tags : key => value if !contains([for own in keys(local.manager_tags) : lower(own)], lower(key)) },
    local.manager_tags,
  )
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}
