variable "source_name" {
  description = "Name of the source repository in the manager's manager.yaml."
  type        = string
}

variable "project_name" {
  description = "Project name from variables.yml; prefixes every resource name."
  type        = string
}

variable "environment" {
  description = "Environment being deployed (staging, production, ...)."
  type        = string
}

variable "region" {
  description = "AWS region of this environment."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.0.0.0/16"
}

variable "availability_zones" {
  description = "Number of availability zones to spread subnets over."
  type        = number
  default     = 2

  validation {
    condition     = var.availability_zones >= 1 && var.availability_zones <= 6
    error_message = "availability_zones must be between 1 and 6."
  }
}

variable "enable_nat_gateway" {
  description = "Give private subnets a NAT gateway (one, in the first public subnet)."
  type        = bool
  default     = false
}

variable "enable_vpn" {
  description = "Attach a VPN gateway to the VPC."
  type        = bool
  default     = false
}

variable "flow_logs" {
  description = "VPC flow logs (all traffic) to the partition's access-log bucket."
  type        = bool
  default     = true
}

variable "instances" {
  description = "Instance settings of this environment (environments.<name> in variables.yml)."
  type = object({
    instance_type         = string
    min_instances         = number
    max_instances         = number
    enable_monitoring     = bool
    backup_retention_days = number
  })
}

variable "tags" {
  description = "Tags from variables.yml, applied to every resource through default_tags."
  type        = map(string)
  default     = {}
}
