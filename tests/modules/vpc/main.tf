# One VPC, as terraform/ declares its main one (DNS on, the source's tags): for the tests of what the
# manager does with a resource in AWS (drift behind its back, a re-apply) where the rest of what
# terraform/ builds is not under test (that runs in tests/integration/sections.py). One resource for
# the provider to refresh instead of terraform/'s dozens, on every drift check.
# The variables the manager passes and this module does not declare are warnings of Terraform's, not errors.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
  backend "s3" {}
}

variable "project_name" {
  type = string
}

variable "environment" {
  type = string
}

variable "region" {
  type = string
}

variable "tags" {
  type    = any
  default = {}
}

provider "aws" {
  region = var.region
}

resource "aws_vpc" "main" {
  cidr_block           = "10.0.0.0/16"
  enable_dns_hostnames = true
  enable_dns_support   = true
  tags                 = merge(var.tags, { Name = "${var.project_name}-${var.environment}" })
}

output "vpc_id" {
  value = aws_vpc.main.id
}
