from __future__ import annotations

import ipaddress
from typing import Any, Iterable

from jsonschema import Draft202012Validator

from manager_pipeline.contract.deploy_config import ComputeSettings, DeployConfig
from manager_pipeline.contract.schema import ENVIRONMENT_SETTINGS, SCHEMA
from manager_pipeline.errors import ContractError
from manager_pipeline.yamlfile import YamlError, load_yaml, suggest

_VALIDATOR = Draft202012Validator(SCHEMA)
_PLACEHOLDER = "{{ environment }}"


def _path(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts) or "(top level)"


def _message(error) -> str:
    where = _path(error.absolute_path)
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = list(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        return "; ".join(f"{_path([*error.absolute_path, k])}: unknown key `{k}`{suggest(k, known)}" for k in extra)
    if error.validator == "required":
        missing = [key for key in error.validator_value if key not in error.instance]
        return "; ".join(f"{where}: `{key}` is required" for key in missing)
    return f"{where}: {error.message}"


def _semantic_problems(document: dict[str, Any], known_environments: Iterable[str]) -> list[str]:
    problems = []
    known = list(known_environments)
    for name, settings in (document.get("environments") or {}).items():
        if known and name not in known:
            problems.append(
                f"environments.{name}: the manager does not deploy to `{name}`{suggest(name, known)} "
                f"(known: {', '.join(known)})"
            )
        if isinstance(settings, dict):
            low, high = settings.get("min_instances"), settings.get("max_instances")
            if isinstance(low, int) and isinstance(high, int) and low > high:
                problems.append(f"environments.{name}.min_instances: {low} is more than max_instances ({high})")
    cidr = (document.get("networking") or {}).get("vpc_cidr")
    if isinstance(cidr, str):
        try:
            network = ipaddress.IPv4Network(cidr, strict=True)
        except ValueError as exc:
            problems.append(f"networking.vpc_cidr: {cidr!r} is not an IPv4 CIDR block ({exc})")
        else:
            if not network.is_private or not 16 <= network.prefixlen <= 24:
                problems.append(f"networking.vpc_cidr: {cidr} must be a private range between /16 and /24")
    return problems


def parse_variables(text: str, origin: str = "variables.yml") -> Any:
    try:
        return load_yaml(text, origin)
    except YamlError as exc:
        raise ContractError([str(exc)], origin) from None


def validate_document(
    document: Any, known_environments: Iterable[str] = (), origin: str = "variables.yml"
) -> dict[str, Any]:
    """The document itself when it honours the contract; else ContractError listing every problem."""
    if not isinstance(document, dict):
        kind = "empty" if document is None else type(document).__name__
        raise ContractError([f"(top level): expected a mapping of settings, got {kind}"], origin)
    problems = [
        _message(e) for e in sorted(_VALIDATOR.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    ]
    problems += _semantic_problems(document, known_environments)
    if problems:
        raise ContractError(problems, origin)
    return document


def _default(schema: dict[str, Any], key: str) -> Any:
    return schema["properties"][key]["default"]


def resolve(
    document: dict[str, Any], environment: str, source_name: str, origin: str = "variables.yml"
) -> DeployConfig:
    """The DeployConfig for one environment of a validated document, placeholders replaced."""
    settings = (document.get("environments") or {}).get(environment)
    if settings is None:
        declared = ", ".join(document.get("environments") or {}) or "none"
        raise ContractError(
            [f"environments.{environment}: missing; add an `{environment}:` section (declared: {declared})"], origin
        )
    networking = document.get("networking") or {}
    net_schema = SCHEMA["properties"]["networking"]
    tags = {
        str(key): str(value).replace(_PLACEHOLDER, environment) for key, value in (document.get("tags") or {}).items()
    }
    return DeployConfig(
        source_name=source_name,
        project_name=document["project_name"],
        environment=environment,
        region=settings["region"],
        vpc_cidr=networking.get("vpc_cidr", _default(net_schema, "vpc_cidr")),
        availability_zones=networking.get("availability_zones", _default(net_schema, "availability_zones")),
        enable_nat_gateway=networking.get("enable_nat_gateway", _default(net_schema, "enable_nat_gateway")),
        enable_vpn=networking.get("enable_vpn", _default(net_schema, "enable_vpn")),
        compute=ComputeSettings(
            instance_type=settings["instance_type"],
            min_instances=settings["min_instances"],
            max_instances=settings["max_instances"],
            enable_monitoring=settings.get("enable_monitoring", _default(ENVIRONMENT_SETTINGS, "enable_monitoring")),
            backup_retention_days=settings.get(
                "backup_retention_days", _default(ENVIRONMENT_SETTINGS, "backup_retention_days")
            ),
        ),
        tags=tags,
    )
