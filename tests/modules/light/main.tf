# A module that builds nothing in AWS: the source's own values in one terraform_data (no provider to
# start). For tests of what the manager decides around Terraform (approvals, supersession, tampered
# plans, queues), not of what terraform/ builds: those run the real module (tests/integration/sections.py).
# The variables the manager passes and this module does not declare are warnings of Terraform's, not errors.
terraform {
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

resource "terraform_data" "project" {
  input = {
    project     = var.project_name
    environment = var.environment
    region      = var.region
    tags        = var.tags
  }
}

output "project" {
  value = terraform_data.project.output.project
}
