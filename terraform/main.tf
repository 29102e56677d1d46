# The manager's root module: every source repo's infrastructure is an instance of it.
# Inputs arrive as typed variables from the validated variables.yml of one source and
# environment (written by the manager as *.auto.tfvars.json); the state backend is
# configured per source and environment at init time.

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 3.39"
    }
  }

  backend "s3" {}
}

locals {
  name = "${var.project_name}-${var.environment}"

  # The manager's own tags come last so a source repo cannot overwrite them.
  tags = merge(var.tags, {
    Project     = var.project_name
    Environment = var.environment
    Source      = var.source_name
    ManagedBy   = "manager-pipeline"
  })
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}
