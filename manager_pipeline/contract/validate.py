"""Parse variables.yml safely, check it against the contract, resolve one environment."""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterable

from jsonschema import Draft202012Validator

from manager_pipeline.contract import rules
from manager_pipeline.contract.deploy_config import DeployConfig, InstanceSettings
from manager_pipeline.contract.schema import COPY_REGIONS, ENVIRONMENT_SETTINGS, PLACEHOLDER, SCHEMA, SECRET, SECTIONS
from manager_pipeline.errors import ContractError, Problem
from manager_pipeline.yamlfile import YamlDocument, YamlError, parse_yaml, suggest

_VALIDATOR = Draft202012Validator(SCHEMA)
_TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_TAG_TEXT = re.compile(r"^[\w\s.:/=+\-@]*$", re.UNICODE)
# Tags the manager sets on every resource (terraform/main.tf and the Name tag of each resource).
MANAGER_TAGS = ("Project", "Environment", "Source", "ManagedBy", "Name")
AWS_TAG_LIMIT = 50


def _dotted(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


class _Collector:
    """Problems in file order, each placed at its key or value."""

    def __init__(self, document: YamlDocument, origin: str):
        self.document, self.origin = document, origin
        self.problems: list[Problem] = []

    def add(self, path: Iterable[Any], message: str, at_key: bool = False) -> None:
        path = tuple(path)
        place = self.document.place(path, key=at_key)
        self.problems.append(
            Problem(_dotted(path), message, self.origin, place.line if place else None, place.column if place else None)
        )

    def line_of(self, path: Iterable[Any]) -> str:
        place = self.document.place(tuple(path), key=True)
        return f"line {place.line}" if place else "this file"

    def raise_if_any(self) -> None:
        if self.problems:
            ordered = sorted(self.problems, key=lambda p: (p.line or 0, p.column or 0, p.path))
            raise ContractError(ordered)


def _schema_message(error) -> list[tuple[tuple[Any, ...], str, bool]]:
    """(path, message, placed at the key) for one JSON Schema error."""
    path = tuple(error.absolute_path)
    kind, rule, value = error.validator, error.validator_value, error.instance
    if isinstance(error.schema, dict) and SECRET in error.schema:
        # Never echo a secret, not even a malformed one.
        return [(path, f"is not valid (value hidden): {error.schema.get('description', '')}", False)]
    if kind == "additionalProperties" and rule is False:
        known = list(error.schema.get("properties", {}))
        extra = sorted(set(value) - set(known))
        if path == ("features",):
            return [
                ((*path, key), f"not supported by this manager: features.{key}{suggest(key, known)}", True)
                for key in extra
            ]
        return [((*path, key), f"unknown key `{key}`{suggest(key, known)}", True) for key in extra]
    if kind == "required":
        # One error per missing key, each carrying the whole list: name only its own key.
        missing = [key for key in rule if key not in value]
        own = next((key for key in missing if error.message.startswith(repr(key))), None)
        return [(path, f"`{key}` is required", False) for key in ([own] if own else missing)]
    if kind == "type":
        wanted = " or ".join(rule) if isinstance(rule, list) else rule
        hint = f' (quote it: "{value}")' if rule == "string" and _kind(value) == "a number" else ""
        return [(path, f"expected {wanted}, got {_kind(value)} {value!r}{hint}", False)]
    if kind == "enum":
        return [(path, f"{value!r} is not one of {', '.join(map(repr, rule))}", False)]
    if kind == "pattern":
        return [(path, f"{value!r} is not valid: {error.schema.get('description', 'pattern ' + rule)}", False)]
    if kind == "minimum":
        return [(path, f"{value} is less than {rule}", False)]
    if kind == "maximum":
        return [(path, f"{value} is more than {rule}", False)]
    if kind in ("minLength", "maxLength"):
        return [(path, f"must be {'at least' if kind == 'minLength' else 'at most'} {rule} characters", False)]
    if kind == "minProperties":
        return [(path, "must not be empty", False)]
    if kind == "maxProperties":
        return [(path, f"has {len(value)} entries; at most {rule} are allowed", False)]
    if kind == "maxItems":
        return [(path, f"has {len(value)} items; at most {rule} are allowed", False)]
    if kind == "propertyNames":
        return [(path, f"key {error.instance!r} is not allowed here ({error.message})", False)]
    return [(path, error.message, False)]


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "a boolean", type(None): "nothing"}.get(
        type(value), "a number"
    )


def _tag_problems(out: _Collector, tags: dict[str, Any], environments: Iterable[str]) -> None:
    for key, value in tags.items():
        if key.lower().startswith("aws:"):
            out.add(("tags", key), "the `aws:` prefix is reserved by AWS; rename the tag", at_key=True)
        if not _TAG_TEXT.match(key):
            out.add(("tags", key), "tag keys may hold letters, digits, spaces and _ . : / = + - @", at_key=True)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        unknown = [name for name in _TEMPLATE.findall(text) if name != "environment"]
        for name in unknown:
            out.add(("tags", key), f"unknown placeholder `{{{{ {name} }}}}`; the only one is `{PLACEHOLDER}`")
        if unknown:
            continue
        for environment in environments:
            resolved = _TEMPLATE.sub(environment, text)
            if len(resolved) > 256:
                out.add(("tags", key), f"is {len(resolved)} characters in {environment}; at most 256")
                break
            if not _TAG_TEXT.match(resolved):
                out.add(("tags", key), "tag values may hold letters, digits, spaces and _ . : / = + - @")
                break
    total = len(set(tags) | set(MANAGER_TAGS))
    if total > AWS_TAG_LIMIT:
        out.add(
            ("tags",),
            f"{len(tags)} tags and the manager's own ({', '.join(MANAGER_TAGS)}) make {total}; "
            f"AWS allows {AWS_TAG_LIMIT} per resource",
        )


def _cidr(value: Any) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except (ValueError, TypeError):
        return None


def _semantic_problems(out: _Collector, data: dict[str, Any], known_environments: list[str]) -> None:
    environments = data.get("environments")
    if isinstance(environments, dict):
        for name, settings in environments.items():
            if known_environments and name not in known_environments:
                out.add(
                    ("environments", name),
                    f"the manager does not deploy to `{name}`{suggest(name, known_environments)} "
                    f"(known: {', '.join(known_environments)})",
                    at_key=True,
                )
            if isinstance(settings, dict):
                low, high = settings.get("min_instances"), settings.get("max_instances")
                if type(low) is int and type(high) is int and low > high:
                    out.add(("environments", name, "min_instances"), f"{low} is more than max_instances ({high})")
    networking = data.get("networking")
    if isinstance(networking, dict) and isinstance(networking.get("vpc_cidr"), str):
        cidr = networking["vpc_cidr"]
        network = _cidr(cidr)
        if network is None:
            out.add(("networking", "vpc_cidr"), f"{cidr!r} is not an IPv4 CIDR block such as 10.0.0.0/16")
        elif not network.is_private or not 16 <= network.prefixlen <= 24:
            out.add(("networking", "vpc_cidr"), f"{cidr} must be a private range between /16 and /24")
    security = data.get("security")
    if isinstance(security, dict) and isinstance(security.get("allowed_cidr_blocks"), list):
        for index, block in enumerate(security["allowed_cidr_blocks"]):
            if isinstance(block, str) and _cidr(block) is None:
                out.add(("security", "allowed_cidr_blocks", index), f"{block!r} is not an IPv4 CIDR block")
    tags = data.get("tags")
    if isinstance(tags, dict):
        names = list(environments) if isinstance(environments, dict) else []
        _tag_problems(out, tags, names or known_environments or ["environment"])


def parse_variables(source: str | bytes, origin: str = "variables.yml") -> YamlDocument:
    """The YAML document, or ContractError with the place of the YAML problem."""
    try:
        return parse_yaml(source, origin)
    except YamlError as exc:
        raise ContractError([Problem("(file)", exc.message, origin, exc.line, exc.column)]) from None


def check_document(document: YamlDocument, known_environments: Iterable[str] = (), origin: str = "variables.yml"):
    """The data when it honours the contract; else ContractError listing every problem."""
    out = _Collector(document, origin)
    data = document.data
    if not isinstance(data, dict):
        kind = "an empty file" if data is None else _kind(data)
        out.add((), f"expected a mapping with project_name and environments, got {kind}")
        out.raise_if_any()
    for error in _VALIDATOR.iter_errors(data):
        for path, message, at_key in _schema_message(error):
            out.add(path, message, at_key)
    _semantic_problems(out, data, list(known_environments))
    declared = list(data["environments"]) if isinstance(data.get("environments"), dict) else []
    rules.spelling_problems(data, out.add, lambda path: out.line_of(path))
    rules.cross_field_problems(data, declared, out.add)
    rules.copied_secret_problems(data, out.add)
    out.raise_if_any()
    return data


def contract_warnings(data: dict[str, Any], origin: str = "variables.yml", document: YamlDocument | None = None):
    """What a valid file should still change: secrets kept in a repository, settings with nothing to size."""
    out = _Collector(document or YamlDocument(data), origin)
    for path, _ in rules.secret_fields(data):
        out.add(
            path,
            "a secret in a repository file: accepted for compatibility and masked everywhere, but anyone who "
            "can read the repository can use it; ask the platform team to keep it in the manager instead",
        )
    certificate = (data.get("security") or {}).get("ssl_certificate_arn")
    if isinstance(certificate, str) and ("..." in certificate or not re.search(r":certificate/[0-9a-f-]{8,}$", certificate)):
        out.add(
            ("security", "ssl_certificate_arn"),
            "looks like a placeholder, not an issued certificate: the HTTPS listener needs a real ACM certificate "
            "in the environment's region, or the apply fails",
        )
    if data.get("compute") is None:
        for name in data.get("environments") or {}:
            out.add(
                ("environments", name, "instance_type"),
                "sizes compute, and this file has no compute section: nothing is built from it",
            )
            break
    return out.problems


def load_variables(source: str | bytes, known_environments: Iterable[str] = (), origin: str = "variables.yml"):
    return check_document(parse_variables(source, origin), known_environments, origin)


def _tag_value(value: Any, environment: str) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return _TEMPLATE.sub(environment, text)


def _with_defaults(section: dict[str, Any] | None, schema: dict[str, Any]) -> dict[str, Any]:
    values = dict(section or {})
    for key, field in schema.get("properties", {}).items():
        if key not in values and "default" in field:
            values[key] = field["default"]
    return values


def _resolve_sections(data: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Each section under canonical names with defaults filled; None where absent or switched off."""
    sections = {
        name: None if data.get(name) is None else rules.canonical(data[name], schema) for name, schema in SECTIONS.items()
    }
    retention = settings["backup_retention_days"]
    if sections["database"] is not None and sections["database"].get("backup_retention_days") is None:
        sections["database"]["backup_retention_days"] = retention
    backup = sections["backup"]
    if backup is not None:
        if backup.get("retention_days") is None:
            backup["retention_days"] = retention or None
        if backup.get("cross_region_copy") is False:
            backup["cross_region_copy"] = None
        elif backup.get("cross_region_copy") is True:
            backup["cross_region_copy"] = COPY_REGIONS[settings["region"]]
        if not backup["enabled"] or not backup["retention_days"]:
            sections["backup"] = None
    if sections["monitoring"] is not None and not sections["monitoring"]["enabled"]:
        sections["monitoring"] = None
    compute = sections["compute"]
    if compute is not None:
        defaults = {"ecs": rules.ECS_DEFAULTS, "lambda": rules.LAMBDA_DEFAULTS}.get(compute["type"], {})
        for key, value in defaults.items():
            compute.setdefault(key, value)
    return sections


def resolve(data: dict[str, Any], environment: str, source_name: str, origin: str = "variables.yml") -> DeployConfig:
    """The DeployConfig for one environment of a checked document, defaults filled, placeholders replaced."""
    settings = (data.get("environments") or {}).get(environment)
    if settings is None:
        declared = ", ".join(data.get("environments") or {}) or "none"
        raise ContractError(
            [
                Problem(
                    f"environments.{environment}",
                    f"missing; add an `{environment}:` section (declared: {declared})",
                    origin,
                )
            ]
        )
    settings = _with_defaults(settings, ENVIRONMENT_SETTINGS)
    networking = _with_defaults(data.get("networking"), SCHEMA["properties"]["networking"])
    sections = _resolve_sections(data, settings)
    return DeployConfig(
        source_name=source_name,
        project_name=data["project_name"],
        environment=environment,
        region=settings["region"],
        vpc_cidr=networking["vpc_cidr"],
        availability_zones=networking["availability_zones"],
        enable_nat_gateway=networking["enable_nat_gateway"],
        enable_vpn=networking["enable_vpn"],
        flow_logs=networking["flow_logs"],
        instances=InstanceSettings(
            instance_type=settings["instance_type"],
            min_instances=settings["min_instances"],
            max_instances=settings["max_instances"],
            enable_monitoring=settings["enable_monitoring"],
            backup_retention_days=settings["backup_retention_days"],
        ),
        tags={str(key): _tag_value(value, environment) for key, value in (data.get("tags") or {}).items()},
        sections=sections,
        slack_webhook=(data.get("notifications") or {}).get("slack_webhook"),
    )
