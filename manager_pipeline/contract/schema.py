"""The JSON Schema of variables.yml: the public API between source repos and the manager."""

from __future__ import annotations

from typing import Any

SCHEMA_ID = "https://manager-pipeline.dev/schemas/variables.schema.json"

_NAME = "^[a-z][a-z0-9-]{0,38}[a-z0-9]$"
_REGION = "^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$"

ENVIRONMENT_SETTINGS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["region", "instance_type", "min_instances", "max_instances"],
    "properties": {
        "region": {"type": "string", "pattern": _REGION, "description": "AWS region, e.g. us-east-1."},
        "instance_type": {
            "type": "string",
            "pattern": "^[a-z][a-z0-9-]*\\.[a-z0-9]+$",
            "description": "EC2 instance type, e.g. t3.micro.",
        },
        "min_instances": {"type": "integer", "minimum": 0, "maximum": 1000},
        "max_instances": {"type": "integer", "minimum": 1, "maximum": 1000},
        "enable_monitoring": {"type": "boolean", "default": False},
        "backup_retention_days": {"type": "integer", "minimum": 0, "maximum": 35, "default": 7},
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "manager-pipeline variables.yml",
    "type": "object",
    "additionalProperties": False,
    "required": ["project_name", "environments"],
    "properties": {
        "project_name": {
            "type": "string",
            "pattern": _NAME,
            "description": "Lowercase DNS-label style name (2-40 characters); prefixes resource names.",
        },
        "cloud_provider": {"enum": ["aws"], "default": "aws"},
        "environments": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": ENVIRONMENT_SETTINGS,
            "description": "Settings per environment; only environments the manager knows.",
        },
        "networking": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "vpc_cidr": {"type": "string", "default": "10.0.0.0/16"},
                "availability_zones": {"type": "integer", "minimum": 1, "maximum": 6, "default": 2},
                "enable_nat_gateway": {"type": "boolean", "default": False},
                "enable_vpn": {"type": "boolean", "default": False},
            },
        },
        "tags": {
            "type": "object",
            "maxProperties": 50,
            "propertyNames": {"minLength": 1, "maxLength": 128, "not": {"pattern": "^aws:"}},
            "additionalProperties": {"type": ["string", "number", "boolean"]},
            "description": "Tags for every resource; values may use {{ environment }}.",
        },
    },
}
