# Generated from the variables.yml schema by `manager-pipeline schema --terraform`; do not edit.
# The optional sections of variables.yml, as validated: null when a source leaves one out.

variable "compute" {
  description = "How the application runs: behind a load balancer (ec2, ecs), or as a Lambda function."
  type        = object({
    type                      = optional(string)
    instance_type             = optional(string)
    ami_id                    = optional(string)
    key_name                  = optional(string)
    user_data_script          = optional(string)
    container_port            = optional(number)
    cpu                       = optional(number)
    memory                    = optional(number)
    timeout                   = optional(number)
    desired_count             = optional(number)
    health_check_path         = optional(string)
    deletion_protection       = optional(bool)
    read_only_root_filesystem = optional(bool)
    image                     = optional(string)
  })
  default     = null
}

variable "database" {
  description = "A relational database in the private subnets; its master password is generated and kept in Secrets Manager, never in variables or outputs. IAM database authentication is on beside it, the engine's logs go to CloudWatch Logs, PostgreSQL logs schema changes and statements slower than 1 s (with engine_version given), and with the environment's enable_monitoring it reports enhanced monitoring every 60 s."
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
  description = "Object storage: the main bucket and any extra ones, encrypted, TLS only, their access logged to the bucket `<project_name>-<environment>-access-logs`."
  type        = object({
    bucket_name     = optional(string)
    versioning      = optional(bool)
    encryption      = optional(string)
    public          = optional(bool)
    buckets         = optional(list(object({
      name       = optional(string)
      versioning = optional(bool)
      public     = optional(bool)
    })))
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
  description = "Logs, alarms (to alarm_email) and a dashboard."
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
    ssl_policy          = optional(string)
    unrestricted_egress = optional(bool)
    enable_encryption   = optional(bool)
  })
  default     = null
}

variable "features" {
  description = "Feature flags; each builds its resources when true."
  type        = object({
    enable_queue = optional(bool)
    enable_cache = optional(bool)
  })
  default     = null
}

variable "scaling" {
  description = "Target-tracking autoscaling of compute between the environment's min and max (ec2, ecs)."
  type        = object({
    target_cpu_utilization    = optional(number)
    target_memory_utilization = optional(number)
    scale_in_cooldown         = optional(number)
    scale_out_cooldown        = optional(number)
  })
  default     = null
}

variable "backup" {
  description = "AWS Backup of this source's resources (vault, plan, selection by tags)."
  type        = object({
    enabled           = optional(bool)
    schedule          = optional(string)
    retention_days    = optional(number)
    cross_region_copy = optional(string)
  })
  default     = null
}

variable "notifications" {
  description = "Who hears about deployments: an SNS topic for the e-mails, Slack, and GitHub."
  type        = object({
    emails        = optional(list(string))
    slack_channel = optional(string)
    on_success    = optional(bool)
    on_failure    = optional(bool)
  })
  default     = null
}

variable "custom" {
  description = "Free-form settings for the platform team's own modules (var.custom); not checked."
  type        = any
  default     = null
}
