# Generated from the variables.yml schema by `manager-pipeline schema --terraform`; do not edit.
# The optional sections of variables.yml, as validated: null when a source leaves one out.

variable "compute" {
  description = "How the application runs."
  type        = object({
    type              = optional(string)
    container_port    = optional(number)
    cpu               = optional(number)
    memory            = optional(number)
    desired_count     = optional(number)
    health_check_path = optional(string)
    image             = optional(string)
  })
  default     = null
}

variable "database" {
  description = "A relational database."
  type        = object({
    engine                = optional(string)
    engine_version        = optional(string)
    instance_class        = optional(string)
    allocated_storage     = optional(number)
    multi_az              = optional(bool)
    backup_retention_days = optional(number)
    deletion_protection   = optional(bool)
  })
  default     = null
}

variable "storage" {
  description = "Object storage."
  type        = object({
    buckets         = optional(list(object({
      name       = optional(string)
      versioning = optional(bool)
      public     = optional(bool)
    })))
    versioning      = optional(bool)
    encryption      = optional(string)
    lifecycle_rules = optional(list(object({
      id                                 = optional(string)
      prefix                             = optional(string)
      enabled                            = optional(bool)
      transition_days                    = optional(number)
      transition_storage_class           = optional(string)
      expiration_days                    = optional(number)
      noncurrent_version_expiration_days = optional(number)
    })))
  })
  default     = null
}

variable "monitoring" {
  description = "Logs, metrics and alarms."
  type        = object({
    enabled             = optional(bool)
    log_retention_days  = optional(number)
    alarm_email         = optional(string)
    alarm_cpu_threshold = optional(number)
    dashboards          = optional(bool)
  })
  default     = null
}

variable "security" {
  description = "Network access and encryption."
  type        = object({
    allowed_cidr_blocks = optional(list(string))
    enable_waf          = optional(bool)
    ssl_certificate_arn = optional(string)
    enable_encryption   = optional(bool)
  })
  default     = null
}

variable "features" {
  description = "Feature flags: name -> true/false."
  type        = map(bool)
  default     = null
}

variable "scaling" {
  description = "Autoscaling."
  type        = object({
    target_cpu_utilization    = optional(number)
    target_memory_utilization = optional(number)
    scale_in_cooldown         = optional(number)
    scale_out_cooldown        = optional(number)
  })
  default     = null
}

variable "backup" {
  description = "Backups beyond each environment's retention."
  type        = object({
    enabled           = optional(bool)
    schedule          = optional(string)
    retention_days    = optional(number)
    cross_region_copy = optional(string)
  })
  default     = null
}

variable "notifications" {
  description = "Who hears about deployments."
  type        = object({
    emails        = optional(list(string))
    slack_channel = optional(string)
    on_success    = optional(bool)
    on_failure    = optional(bool)
  })
  default     = null
}

variable "custom" {
  description = "Free-form settings for the manager's modules; not checked."
  type        = any
  default     = null
}
