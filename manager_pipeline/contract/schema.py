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

ENVIRONMENT_SETTINGS = _obj(
    {
        "region": _str("AWS region name, e.g. us-east-1.", pattern=_REGION),
        "instance_type": _str("EC2 instance type, e.g. t3.micro.", pattern=_INSTANCE_TYPE),
        "min_instances": _int("Fewest instances; at most max_instances.", 0, 1000),
        "max_instances": _int("Most instances; at least min_instances.", 1, 1000),
        "enable_monitoring": _bool("Detailed monitoring for this environment."),
        "backup_retention_days": _int("Days to keep backups (0 turns backups off).", 0, 35, default=7),
    },
    "Settings of one environment.",
    required=["region", "instance_type", "min_instances", "max_instances"],
)

_LIFECYCLE_RULE = _obj(
    {
        "id": _str("Name of the rule.", minLength=1, maxLength=255),
        "prefix": _str("Object key prefix the rule applies to.", maxLength=1024),
        "enabled": _bool("Whether the rule is active.", default=True),
        "transition_days": _int("Days before objects move to transition_storage_class.", 0, 36500),
        "transition_storage_class": {
            "enum": ["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "GLACIER_IR", "DEEP_ARCHIVE"],
            "description": "Storage class objects move to.",
        },
        "expiration_days": _int("Days before objects are deleted.", 1, 36500),
        "noncurrent_version_expiration_days": _int("Days before old versions are deleted.", 1, 36500),
    },
    "One S3 lifecycle rule.",
    required=["id"],
)

SECTIONS: dict[str, dict[str, Any]] = {
    "compute": _obj(
        {
            "type": {"enum": ["ec2", "ecs", "lambda", "eks"], "description": "Kind of compute."},
            "container_port": _int("Port the application listens on.", 1, 65535),
            "cpu": _int("CPU units (1024 = one vCPU).", 128, 65536),
            "memory": _int("Memory in MiB.", 128, 1048576),
            "desired_count": _int("Instances or tasks to run normally.", 0, 1000),
            "health_check_path": _str("HTTP path of the health check.", pattern="^/"),
            "image": _str("Container image reference.", minLength=1),
        },
        "How the application runs.",
    ),
    "database": _obj(
        {
            "engine": {
                "enum": ["postgres", "mysql", "mariadb", "aurora-postgresql", "aurora-mysql"],
                "description": "Database engine.",
            },
            "engine_version": _str('Engine version, e.g. "16.3" (quote it).', minLength=1),
            "instance_class": _str("Instance class, e.g. db.t3.micro.", pattern=_INSTANCE_TYPE),
            "allocated_storage": _int("Storage in GiB.", 5, 65536),
            "multi_az": _bool("Standby in a second availability zone."),
            "backup_retention_days": _int("Days to keep automated backups.", 0, 35),
            "deletion_protection": _bool("Refuse deletion of the database.", default=True),
        },
        "A relational database.",
    ),
    "storage": _obj(
        {
            "buckets": {
                "type": "array",
                "description": "Extra S3 buckets.",
                "items": _obj(
                    {
                        "name": _str("Bucket name suffix.", pattern="^[a-z0-9][a-z0-9.-]{1,40}[a-z0-9]$"),
                        "versioning": _bool("Keep object versions."),
                        "public": _bool("Allow public reads."),
                    },
                    "One bucket.",
                    required=["name"],
                ),
            },
            "versioning": _bool("Keep object versions in the default bucket."),
            "encryption": {"enum": ["AES256", "aws:kms"], "description": "Server-side encryption."},
            "lifecycle_rules": {"type": "array", "description": "S3 lifecycle rules.", "items": _LIFECYCLE_RULE},
        },
        "Object storage.",
    ),
    "monitoring": _obj(
        {
            "enabled": _bool("Create dashboards and alarms.", default=True),
            "log_retention_days": {
                "enum": [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653],
                "description": "Days to keep logs (a CloudWatch retention value).",
            },
            "alarm_email": _EMAIL,
            "alarm_cpu_threshold": _int("CPU percent that raises an alarm.", 1, 100),
            "dashboards": _bool("Create a dashboard."),
        },
        "Logs, metrics and alarms.",
    ),
    "security": _obj(
        {
            "allowed_cidr_blocks": {
                "type": "array",
                "items": _CIDR,
                "maxItems": 60,
                "description": "CIDR blocks allowed in.",
            },
            "enable_waf": _bool("Put a web application firewall in front."),
            "ssl_certificate_arn": _str("ACM certificate ARN.", pattern="^arn:aws[a-z-]*:acm:"),
            "enable_encryption": _bool("Encrypt data at rest.", default=True),
        },
        "Network access and encryption.",
    ),
    "features": {
        "type": "object",
        "description": "Feature flags: name -> true/false.",
        "propertyNames": {"pattern": "^[a-z][a-z0-9_]*$"},
        "additionalProperties": {"type": "boolean"},
    },
    "scaling": _obj(
        {
            "target_cpu_utilization": _int("CPU percent autoscaling aims for.", 1, 100),
            "target_memory_utilization": _int("Memory percent autoscaling aims for.", 1, 100),
            "scale_in_cooldown": _int("Seconds between scale-ins.", 0, 86400),
            "scale_out_cooldown": _int("Seconds between scale-outs.", 0, 86400),
        },
        "Autoscaling.",
    ),
    "backup": _obj(
        {
            "enabled": _bool("Back up with AWS Backup.", default=True),
            "schedule": _str("When, as an AWS cron or rate expression.", pattern="^(cron|rate)\\(.+\\)$"),
            "retention_days": _int("Days to keep backups.", 1, 36500),
            "cross_region_copy": _str("Region to copy backups to.", pattern=_REGION),
        },
        "Backups beyond each environment's retention.",
    ),
    "notifications": _obj(
        {
            "emails": {"type": "array", "items": _EMAIL, "description": "Who gets deployment e-mails."},
            "slack_channel": _str("Slack channel, e.g. #deploys.", pattern="^#[a-z0-9_-]{1,80}$"),
            "on_success": _bool("Notify on success.", default=True),
            "on_failure": _bool("Notify on failure.", default=True),
        },
        "Who hears about deployments.",
    ),
    "custom": {"type": "object", "description": "Free-form settings for the manager's modules; not checked."},
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
