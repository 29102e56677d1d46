from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class InstanceSettings:
    """The per-environment instance settings of variables.yml."""

    instance_type: str
    min_instances: int
    max_instances: int
    enable_monitoring: bool
    backup_retention_days: int


@dataclass(frozen=True)
class DeployConfig:
    """The validated variables of one source for one environment: exactly what Terraform gets."""

    source_name: str
    project_name: str
    environment: str
    region: str
    vpc_cidr: str
    availability_zones: int
    enable_nat_gateway: bool
    enable_vpn: bool
    instances: InstanceSettings
    flow_logs: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    # The optional sections (compute, database, ...) under canonical names, defaults filled;
    # None where absent or switched off.
    sections: dict[str, Any] = field(default_factory=dict)
    # The manager's own (never Terraform's): where to post deploy notifications. A secret.
    slack_webhook: str | None = field(default=None, repr=False)
    # The VariablesDocument it was resolved from, when known: another machine reads the webhook from it
    # again rather than receive it (handoff.py). Not a setting: never compared, never Terraform's.
    origin: Any = field(default=None, repr=False, compare=False)

    def to_tfvars(self) -> dict[str, Any]:
        """The *.auto.tfvars.json content; keys match terraform/variables.tf one to one."""
        values = asdict(replace(self, origin=None))
        values.pop("slack_webhook")
        values.pop("origin")
        values.update(values.pop("sections"))
        return values

    @classmethod
    def from_tfvars(cls, values: dict[str, Any]) -> DeployConfig:
        """The config a plan was made from, as its artifact keeps it (``to_tfvars``'s inverse)."""
        own = ("instances", "sections", "slack_webhook", "origin")
        # A field with a default may be missing from an artifact written before it existed.
        fields = {name: values[name] for name in cls.__dataclass_fields__ if name not in own and name in values}
        sections = {k: v for k, v in values.items() if k not in cls.__dataclass_fields__}
        return cls(**fields, instances=InstanceSettings(**values["instances"]), sections=sections)

    @property
    def digest(self) -> str:
        canonical = json.dumps(self.to_tfvars(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
