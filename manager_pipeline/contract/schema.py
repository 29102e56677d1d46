"""The JSON Schema of variables.yml: the public API between source repos and the manager.

Typed sections are closed (an unknown key is an error that suggests the closest known one);
``custom`` is free-form. Rules JSON Schema cannot say (min <= max, CIDR ranges, tag limits,
placeholders, environments the manager knows) are checked in ``validate.py`` and described
here in each field's ``description`` so the generated documentation states them.
"""

from __future__ import annotations

from typing import Any

SCHEMA_ID = "https://github.com/manager-pipeline/manager-pipeline/schema/variables.schema.json"
PLACEHOLDER = "{{ environment }}"

_NAME = "^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$"
_REGION = "^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$"
_INSTANCE_TYPE = "^[a-z][a-z0-9-]*(\\.[a-z0-9-]+)+$"


def _obj(properties: dict[str, Any], description: str, required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "description": description,
        "additionalProperties": False,
        "properties": properties,
    }
    if required:
        schema["required"] = required
    return schema


def _int(description: str, minimum: int, maximum: int, default: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum, "maximum": maximum, "description": description}
    if default is not None:
        schema["default"] = default
    return schema


def _bool(description: str, default: bool = False) -> dict[str, Any]:
    return {"type": "boolean", "default": default, "description": description}


def _str(description: str, **rules: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **rules}


_CIDR = _str("An IPv4 CIDR block, e.g. 10.0.0.0/8.")
_EMAIL = _str("An e-mail address.", pattern="^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$")

# Annotations the manager reads beside JSON Schema's own keywords (validators ignore them):
ALIAS_OF = "x-alias-of"  # the original pipeline's name for a field: accepted, resolved to this canonical name
UNSUPPORTED = "x-unsupported"  # a flag this manager cannot build: `false` is accepted (asks for nothing)
SECRET = "x-secret"  # a value the manager uses itself and never hands to Terraform, masked everywhere
SUPPORTED_VALUES = "x-supported"  # of an enum, the values this manager builds; the others are refused as such


def _alias(canonical: str, field: dict[str, Any]) -> dict[str, Any]:
    """The original pipeline's spelling of ``canonical``: the same rules, documented as an alias."""
    return {**field, ALIAS_OF: canonical, "deprecated": True, "description": f"Alias of `{canonical}`."}


def _unsupported(description: str) -> dict[str, Any]:
    return {"type": "boolean", "default": False, UNSUPPORTED: True, "description": f"{description} Only `false`."}


ENVIRONMENT_SETTINGS = _obj(
    {
        "region": _str("AWS region name, e.g. us-east-1.", pattern=_REGION),
        "instance_type": _str(
            "EC2 instance type, e.g. t3.micro; sizes compute of type ec2.", pattern=_INSTANCE_TYPE
        ),
        "min_instances": _int("Fewest instances or tasks of compute; at most max_instances.", 0, 1000),
        "max_instances": _int("Most instances or tasks of compute; at least min_instances.", 1, 1000),
        "enable_monitoring": _bool("Detailed monitoring of compute (EC2 detailed monitoring, ECS Container Insights)."),
        "backup_retention_days": _int(
            "Days to keep database and AWS Backup backups unless their sections say otherwise (0: none).",
            0,
            35,
            default=7,
        ),
    },
    "Settings of one environment.",
    required=["region", "instance_type", "min_instances", "max_instances"],
)

_LIFECYCLE_RULE = _obj(
    {
        "id": _str("Name of the rule.", minLength=1, maxLength=255),
        "name": _alias("id", _str("", minLength=1, maxLength=255)),
        "prefix": _str("Object key prefix the rule applies to.", maxLength=1024),
        "enabled": _bool("Whether the rule is active.", default=True),
        "transition_days": _int("Days before objects move to transition_storage_class.", 0, 36500),
        "transition_storage_class": {
            "enum": ["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "GLACIER_IR", "DEEP_ARCHIVE"],
            "description": "Storage class objects move to.",
        },
        "expiration_days": _int("Days before objects are deleted; after any transition.", 1, 36500),
        "noncurrent_version_expiration_days": _int("Days before old versions are deleted.", 1, 36500),
    },
    "One S3 lifecycle rule of the main bucket.",
)
_BUCKET_SUFFIX = "^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$"
# Where `backup.cross_region_copy: true` copies backups: the nearest region of the same geography,
# else the nearest other one (a fixed table, so a plan never depends on anything but the file).
COPY_REGIONS = {
    "us-east-1": "us-west-2",
    "us-east-2": "us-west-2",
    "us-west-1": "us-east-1",
    "us-west-2": "us-east-1",
    "ca-central-1": "us-east-1",
    "sa-east-1": "us-east-1",
    "eu-west-1": "eu-central-1",
    "eu-west-2": "eu-west-1",
    "eu-west-3": "eu-central-1",
    "eu-central-1": "eu-west-1",
    "eu-north-1": "eu-central-1",
    "eu-south-1": "eu-central-1",
    "ap-south-1": "ap-southeast-1",
    "ap-southeast-1": "ap-southeast-2",
    "ap-southeast-2": "ap-southeast-1",
    "ap-northeast-1": "ap-northeast-3",
    "ap-northeast-2": "ap-northeast-1",
    "ap-northeast-3": "ap-northeast-1",
    "ap-east-1": "ap-southeast-1",
    "me-south-1": "eu-central-1",
    "af-south-1": "eu-west-1",
}

SECTIONS: dict[str, dict[str, Any]] = {
    "compute": _obj(
        {
            "type": {
                "enum": ["ec2", "ecs", "lambda", "eks"],
                SUPPORTED_VALUES: ["ec2", "ecs", "lambda"],
                "default": "ec2",
                "description": (
                    "Kind of compute: an autoscaling group of EC2 instances or an ECS service on Fargate, both "
                    "behind a load balancer, or a Lambda function from a container image (no load balancer; "
                    "scales by itself, so no scaling section)."
                ),
            },
            "instance_type": _str(
                "EC2 instance type of every environment (ec2), instead of environments.<name>.instance_type.",
                pattern=_INSTANCE_TYPE,
            ),
            "ami_id": _str("AMI of the instances (ec2; required there).", pattern="^ami-[0-9a-f]{8,17}$"),
            "key_name": _str("EC2 key pair for SSH (ec2).", minLength=1, maxLength=255),
            "user_data_script": _str("Script the instances run at boot (ec2).", maxLength=16384),
            "container_port": _int(
                "Port the application listens on, behind the load balancer (ec2, ecs).", 1, 65535, default=80
            ),
            "cpu": {
                "enum": [256, 512, 1024, 2048, 4096, 8192, 16384],
                "description": "Fargate CPU units of a task (ecs; 1024 = one vCPU).",
            },
            "memory": _int(
                "Memory in MiB: of a task (ecs; 512 to 122880 as cpu allows, default 512) or of the function "
                "(lambda; 128 to 10240, default 512).",
                128,
                122880,
            ),
            "timeout": _int("Seconds an invocation of the function may run (lambda; default 30).", 1, 900),
            "desired_count": _int("Instances or tasks to run normally (ec2, ecs; default: min_instances).", 0, 1000),
            "health_check_path": _str(
                "HTTP path of the load balancer's health check (ec2, ecs).", pattern="^/", default="/"
            ),
            "deletion_protection": {
                "type": "boolean",
                "description": "Refuse deletion of the load balancer (ec2, ecs; default: true in the environment "
                "named production, false elsewhere).",
            },
            "read_only_root_filesystem": _bool(
                "Run the container with a read-only root file system (ecs); false for an image that writes to it.",
                default=True,
            ),
            "image": _str(
                "Container image reference (ecs, lambda; required there). For lambda an Amazon ECR image in the "
                "environment's region: <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> (or @sha256:...).",
                minLength=1,
            ),
        },
        "How the application runs: behind a load balancer (ec2, ecs), or as a Lambda function.",
    ),
    "database": _obj(
        {
            "engine": {
                "enum": ["postgres", "mysql", "mariadb", "aurora-postgresql", "aurora-mysql"],
                "default": "postgres",
                "description": "Database engine (aurora-*: an Aurora cluster).",
            },
            "engine_version": _str('Engine version, e.g. "16.3" (quote it).', minLength=1),
            "instance_class": _str("Instance class, e.g. db.t3.micro.", pattern=_INSTANCE_TYPE, default="db.t3.micro"),
            "allocated_storage": _int("Storage in GiB (not for aurora, which grows by itself).", 5, 65536),
            "multi_az": _bool("Standby in a second availability zone."),
            "backup_retention_days": _int(
                "Days to keep automated backups (default: the environment's backup_retention_days).", 0, 35
            ),
            "backup_retention_period": _alias("backup_retention_days", _int("", 0, 35)),
            "deletion_protection": _bool("Refuse deletion of the database.", default=True),
        },
        "A relational database in the private subnets; its master password is generated and kept in "
        "Secrets Manager, never in variables or outputs. IAM database authentication is on beside it, the "
        "engine's logs go to CloudWatch Logs, PostgreSQL logs schema changes and statements slower than 1 s "
        "(with engine_version given), and with the environment's enable_monitoring it reports enhanced "
        "monitoring every 60 s.",
    ),
    "storage": _obj(
        {
            "bucket_name": _str(
                "Name of the main bucket after `<project_name>-<environment>-`.", pattern=_BUCKET_SUFFIX, default="storage"
            ),
            "versioning": _bool("Keep object versions in the main bucket."),
            "versioning_enabled": _alias("versioning", {"type": "boolean"}),
            "encryption": {
                "enum": ["AES256", "aws:kms"],
                "default": "aws:kms",
                "description": "Server-side encryption of every bucket (aws:kms: the security section's key, "
                "else AWS's managed key for S3).",
            },
            "public": _bool("Allow public reads of the main bucket (otherwise a public access block)."),
            "buckets": {
                "type": "array",
                "maxItems": 20,
                "description": "Extra buckets, each named `<project_name>-<environment>-<name>`.",
                "items": _obj(
                    {
                        "name": _str("Bucket name after the prefix.", pattern=_BUCKET_SUFFIX),
                        "versioning": _bool("Keep object versions."),
                        "public": _bool("Allow public reads."),
                    },
                    "One bucket.",
                    required=["name"],
                ),
            },
            "lifecycle_rules": {
                "type": "array",
                "maxItems": 50,
                "description": "Lifecycle rules of the main bucket.",
                "items": _LIFECYCLE_RULE,
            },
        },
        "Object storage: the main bucket and any extra ones, encrypted, TLS only, their access logged to "
        "the bucket `<project_name>-<environment>-access-logs`.",
    ),
    "monitoring": _obj(
        {
            "enabled": _bool("Build this section (false: nothing of it).", default=True),
            "enable_cloudwatch": _alias("enabled", {"type": "boolean"}),
            "log_retention_days": {
                "enum": [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653],
                "default": 30,
                "description": "Days to keep the application's log group (a CloudWatch retention value).",
            },
            "alarm_email": _EMAIL,
            "alarm_cpu_threshold": _int("CPU percent of compute that raises an alarm (ec2, ecs).", 1, 100),
            "dashboards": _bool("Create a CloudWatch dashboard."),
            "enable_xray": _unsupported("AWS X-Ray tracing."),
        },
        "Logs, alarms (to alarm_email) and a dashboard.",
    ),
    "security": _obj(
        {
            "allowed_cidr_blocks": {
                "type": "array",
                "items": _CIDR,
                "maxItems": 60,
                "description": "CIDR blocks allowed to reach the application (HTTP and HTTPS).",
            },
            "enable_waf": _bool("A WAFv2 web ACL (AWS managed common rules) in front of the load balancer (not with lambda)."),
            "enable_shield": _unsupported("AWS Shield Advanced."),
            "ssl_certificate_arn": _str(
                "ACM certificate of the load balancer's HTTPS listener (ec2, ecs).", pattern="^arn:aws[a-z-]*:acm:"
            ),
            "ssl_policy": _str(
                "TLS policy of the HTTPS listener, one of Elastic Load Balancing's ELBSecurityPolicy-* names. The "
                "default allows TLS 1.3 and 1.2 only; ELBSecurityPolicy-TLS-1-2-2017-01 adds older TLS 1.2 ciphers. "
                "One that allows TLS 1.0 or 1.1 (ELBSecurityPolicy-2016-08) fails the policy check in production.",
                pattern="^ELBSecurityPolicy-[A-Za-z0-9-]+$",
                default="ELBSecurityPolicy-TLS13-1-2-2021-06",
            ),
            "unrestricted_egress": _bool(
                "Let the application reach any port anywhere; otherwise anything inside the VPC and HTTPS and "
                "HTTP outside it."
            ),
            "enable_encryption": _bool("A KMS key for the storage, database and secret of this source.", default=True),
        },
        "Network access and encryption.",
    ),
    "features": _obj(
        {
            "enable_queue": _bool("An SQS queue with a dead-letter queue."),
            "enable_cache": _bool(
                "An ElastiCache Redis node in the private subnets, TLS in transit and an AUTH token only (the "
                "token and the endpoint in a Secrets Manager secret)."
            ),
            "enable_cdn": _unsupported("A CloudFront distribution."),
            "enable_search": _unsupported("An OpenSearch domain."),
        },
        "Feature flags; each builds its resources when true.",
    ),
    "scaling": _obj(
        {
            "target_cpu_utilization": _int("CPU percent autoscaling aims for.", 1, 100),
            "cpu_threshold": _alias("target_cpu_utilization", _int("", 1, 100)),
            "target_memory_utilization": _int("Memory percent autoscaling aims for.", 1, 100),
            "memory_threshold": _alias("target_memory_utilization", _int("", 1, 100)),
            "scale_in_cooldown": _int("Seconds between scale-ins.", 0, 86400),
            "scale_down_cooldown": _alias("scale_in_cooldown", _int("", 0, 86400)),
            "scale_out_cooldown": _int("Seconds between scale-outs (ec2: the instance warm-up).", 0, 86400),
            "scale_up_cooldown": _alias("scale_out_cooldown", _int("", 0, 86400)),
        },
        "Target-tracking autoscaling of compute between the environment's min and max (ec2, ecs).",
    ),
    "backup": _obj(
        {
            "enabled": _bool("Build this section (false: nothing of it).", default=True),
            "schedule": _str(
                "When, as an AWS cron or rate expression.", pattern="^(cron|rate)\\(.+\\)$", default="cron(0 5 * * ? *)"
            ),
            "retention_days": _int("Days to keep backups (default: the environment's backup_retention_days).", 1, 36500),
            "cross_region_copy": {
                "type": ["string", "boolean"],
                "pattern": _REGION,
                "description": (
                    "Region to copy backups to, false for none, or true (the original pipeline's switch) for the "
                    "environment's paired region: "
                    + ", ".join(f"{home} -> {paired}" for home, paired in COPY_REGIONS.items())
                    + ". A region without a pair needs its copy region named."
                ),
            },
        },
        "AWS Backup of this source's resources (vault, plan, selection by tags).",
    ),
    "notifications": _obj(
        {
            "emails": {"type": "array", "items": _EMAIL, "maxItems": 50, "description": "Who gets deployment e-mails."},
            "email_list": _alias("emails", {"type": "array", "items": _EMAIL, "maxItems": 50}),
            "slack_webhook": _str(
                "Slack incoming-webhook URL the manager posts deployments to. A secret: better kept by the manager.",
                pattern="^https://[^\\s]+$",
                **{SECRET: True},
            ),
            "slack_channel": _str("Slack channel of the webhook's posts, e.g. #deploys.", pattern="^#[a-z0-9_-]{1,80}$"),
            "on_success": _bool("Notify after a successful apply.", default=True),
            "on_failure": _bool("Notify after a failure.", default=True),
            "enable_pagerduty": _unsupported("PagerDuty alerts."),
        },
        "Who hears about deployments: an SNS topic for the e-mails, Slack, and GitHub.",
    ),
    "custom": {
        "type": "object",
        "description": "Free-form settings for the platform team's own modules (var.custom); not checked.",
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "manager-pipeline variables.yml",
    "description": "What a source repository sends the manager: its project, environments, networking and tags.",
    "type": "object",
    "additionalProperties": False,
    "required": ["project_name", "environments"],
    "properties": {
        "project_name": _str(
            "Lowercase DNS-label style name (letters, digits, '-'; 1-40 characters; starts with a letter); "
            "prefixes resource names.",
            pattern=_NAME,
        ),
        "cloud_provider": {"enum": ["aws"], "default": "aws", "description": "Only aws today."},
        "environments": {
            "type": "object",
            "description": "Settings per environment name; only environments the manager's manager.yaml knows.",
            "minProperties": 1,
            "additionalProperties": ENVIRONMENT_SETTINGS,
        },
        "networking": _obj(
            {
                "vpc_cidr": _str("Private IPv4 CIDR block of the VPC, /16 to /24.", default="10.0.0.0/16"),
                "availability_zones": _int("Availability zones to spread subnets over.", 1, 6, default=2),
                "enable_nat_gateway": _bool("Give private subnets a NAT gateway."),
                "enable_vpn": _bool("Attach a VPN gateway."),
                "flow_logs": _bool(
                    "VPC flow logs (all traffic) to the bucket `<project_name>-<environment>-access-logs`.",
                    default=True,
                ),
            },
            "The VPC.",
        ),
        "tags": {
            "type": "object",
            "description": (
                "Tags on every resource (AWS rules: at most 50 with the manager's own, keys up to 128 and values "
                f"up to 256 characters, no `aws:` prefix). A value may use {PLACEHOLDER}."
            ),
            "maxProperties": 50,
            "propertyNames": {"minLength": 1, "maxLength": 128},
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        **SECTIONS,
    },
}
