"""What the schema alone cannot say about the optional sections.

Three kinds of rule, each reported at the line of the field it is about:
- the original pipeline's field names are aliases: accepted, never both spellings of one field;
- a field either builds something or is refused ("not supported by this manager: ...");
- settings that contradict each other are refused here, not by Terraform (or AWS) later.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterator

from manager_pipeline.contract.schema import ALIAS_OF, COPY_REGIONS, SCHEMA, SECRET, SUPPORTED_VALUES, UNSUPPORTED

Path = tuple[Any, ...]
Report = Callable[[Path, str, bool], None]

S3_NAME_LIMIT = 63
# The bucket the module's access logs go to (terraform/logging.tf): `<project>-<environment>-access-logs`.
LOGS_BUCKET_SUFFIX = "access-logs"
# Fargate's task sizes: memory (MiB) a CPU value allows, from the smallest to the largest.
FARGATE_MEMORY = {
    256: (512, 2048),
    512: (1024, 4096),
    1024: (2048, 8192),
    2048: (4096, 16384),
    4096: (8192, 30720),
    8192: (16384, 61440),
    16384: (32768, 122880),
}
ECS_DEFAULTS = {"cpu": 256, "memory": 512}
LAMBDA_DEFAULTS = {"memory": 512, "timeout": 30}
LAMBDA_MEMORY = (128, 10240)
# Lambda runs container images from Amazon ECR only, in the function's own region.
ECR_IMAGE = re.compile(
    r"^[0-9]{12}\.dkr\.ecr\.(?P<region>[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9])\.amazonaws\.com(\.cn)?"
    r"/[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$"
)
# The compute types each field of the compute section applies to (absent: every type).
COMPUTE_FIELDS: dict[str, tuple[str, ...]] = {
    "type": ("ec2", "ecs", "lambda"),
    "instance_type": ("ec2",),
    "ami_id": ("ec2",),
    "key_name": ("ec2",),
    "user_data_script": ("ec2",),
    "cpu": ("ecs",),
    "memory": ("ecs", "lambda"),
    "image": ("ecs", "lambda"),
    "timeout": ("lambda",),
    "container_port": ("ec2", "ecs"),
    "health_check_path": ("ec2", "ecs"),
    "desired_count": ("ec2", "ecs"),
    "deletion_protection": ("ec2", "ecs"),
    "read_only_root_filesystem": ("ecs",),
}
NEEDS_COMPUTE = "needs a compute section (there is nothing to {what} without one)"


def walk(schema: dict[str, Any], data: Any, path: Path = ()) -> Iterator[tuple[Path, dict[str, Any], Any]]:
    """(path, field schema, value) of every field of ``data`` that the schema describes."""
    if not isinstance(data, dict):
        if isinstance(data, list) and isinstance(schema.get("items"), dict):
            for index, item in enumerate(data):
                yield from walk(schema["items"], item, (*path, index))
        return
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for key, value in data.items():
        field = properties.get(key, extra if isinstance(extra, dict) else None)
        if field is not None:
            yield (*path, key), field, value
            yield from walk(field, value, (*path, key))


def aliases(schema: dict[str, Any]) -> dict[str, str]:
    """alias -> canonical name, for one object of the schema."""
    return {name: field[ALIAS_OF] for name, field in schema.get("properties", {}).items() if ALIAS_OF in field}


def spelling_problems(data: dict[str, Any], report: Report, place: Callable[[Path], str]) -> None:
    """Both spellings of one field, and flags or values this manager does not build."""
    for path, field, value in walk(SCHEMA, data):
        if isinstance(value, dict):
            for alias, canonical in aliases(field).items():
                if alias in value and canonical in value:
                    report(
                        (*path, alias),
                        f"gives both `{canonical}` ({place((*path, canonical))}) and `{alias}`, the original "
                        f"pipeline's name for it ({place((*path, alias))}); keep one",
                        True,
                    )
        if field.get(UNSUPPORTED) and value is True:
            report(path, f"not supported by this manager: {_dotted(path)} (set it to false or remove it)", False)
        supported = field.get(SUPPORTED_VALUES)
        if supported and value in field.get("enum", ()) and value not in supported:
            report(
                path,
                f"not supported by this manager: {_dotted(path)} `{value}` (supported: {', '.join(supported)})",
                False,
            )


def _dotted(path: Path) -> str:
    return ".".join(str(part) for part in path)


def canonical(data: Any, schema: dict[str, Any]) -> Any:
    """``data`` under canonical names with defaults filled, minus secrets and unsupported flags."""
    if isinstance(data, list) and isinstance(schema.get("items"), dict):
        return [canonical(item, schema["items"]) for item in data]
    if not isinstance(data, dict) or "properties" not in schema:
        return data
    renamed = aliases(schema)
    properties = schema["properties"]
    values: dict[str, Any] = {}
    for key, field in properties.items():
        if ALIAS_OF in field or SECRET in field or UNSUPPORTED in field:
            continue
        if key in data:
            values[key] = canonical(data[key], field)
        elif "default" in field:
            values[key] = field["default"]
    for alias, name in renamed.items():
        if alias in data:
            values[name] = canonical(data[alias], properties[name])
    return values


def secret_fields(data: dict[str, Any]) -> list[tuple[Path, str]]:
    """(path, value) of every secret a file holds."""
    return [(path, value) for path, field, value in walk(SCHEMA, data) if SECRET in field and isinstance(value, str)]


def _strings(data: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """(path, value) of every string anywhere in ``data``, free-form sections included."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _strings(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _strings(value, (*path, index))
    elif isinstance(data, str):
        yield path, data


def copied_secret_problems(data: dict[str, Any], report: Report) -> None:
    """A secret's value copied into another field (a tag, `custom`): that field reaches Terraform, its
    state and, for a tag, every resource's tags, where nothing masks it."""
    secrets = [(path, value) for path, value in secret_fields(data) if len(value) >= 8]
    for path, text in _strings(data):
        for secret_path, secret in secrets:
            if path != secret_path and secret in text:
                report(
                    path,
                    f"holds the value of {'.'.join(map(str, secret_path))}, a secret: it would reach Terraform, its "
                    "state and the resources; remove it (the manager uses the secret where it belongs)",
                    False,
                )


def _get(data: dict[str, Any], section: str) -> dict[str, Any] | None:
    value = data.get(section)
    return value if isinstance(value, dict) else None


def cross_field_problems(data: dict[str, Any], environments: list[str], report: Report) -> None:
    """Settings that contradict each other, or that need a section the file does not have."""
    compute, database, storage = _get(data, "compute"), _get(data, "database"), _get(data, "storage")
    monitoring, security, backup = _get(data, "monitoring"), _get(data, "security"), _get(data, "backup")
    networking = _get(data, "networking") or {}
    zones = networking.get("availability_zones", 2)
    zones = zones if type(zones) is int else 2
    declared = data.get("environments")
    regions = {
        name: settings.get("region")
        for name, settings in (declared if isinstance(declared, dict) else {}).items()
        if isinstance(settings, dict)
    }
    if compute is not None:
        _compute_problems(compute, zones, regions, report)
        if compute.get("type") == "lambda":
            _lambda_problems(data, report)
    if database is not None:
        if zones < 2:
            report(("database",), "RDS subnet groups span two availability zones; set networking.availability_zones to 2 or more", True)
        if database.get("multi_az") is True and zones < 2:
            report(("database", "multi_az"), "a standby needs a second availability zone; networking.availability_zones is 1", False)
        if str(database.get("engine", "")).startswith("aurora") and "allocated_storage" in database:
            report(("database", "allocated_storage"), "Aurora grows its storage by itself; remove allocated_storage", True)
    if storage is not None:
        _storage_problems(storage, data.get("project_name"), environments, report)
    project = data.get("project_name")
    for environment in environments if isinstance(project, str) else ():
        logs_bucket = f"{project}-{environment}-{LOGS_BUCKET_SUFFIX}"
        if len(logs_bucket) > S3_NAME_LIMIT:
            report(
                ("project_name",),
                f"`{logs_bucket}` (the access-log bucket in {environment}) is {len(logs_bucket)} characters; S3 "
                f"allows {S3_NAME_LIMIT}: shorten project_name or the environment's name",
                False,
            )
            break
    if monitoring is not None:
        _switched_off(monitoring, "monitoring", report)
        if compute is None and "alarm_cpu_threshold" in monitoring:
            report(("monitoring", "alarm_cpu_threshold"), NEEDS_COMPUTE.format(what="watch"), True)
    if security is not None and compute is None and "ssl_certificate_arn" in security:
        report(("security", "ssl_certificate_arn"), NEEDS_COMPUTE.format(what="terminate TLS on"), True)
    if _get(data, "scaling") is not None and compute is None:
        report(("scaling",), NEEDS_COMPUTE.format(what="scale"), True)
    if backup is not None:
        _switched_off(backup, "backup", report)
        copy = backup.get("cross_region_copy")
        if copy is True:
            for name, region in regions.items():
                if isinstance(region, str) and region not in COPY_REGIONS:
                    report(
                        ("backup", "cross_region_copy"),
                        f"{name}'s region {region} has no paired region to copy backups to: name the region "
                        "(or false for no copy)",
                        False,
                    )
                    break
        for name, region in regions.items():
            if isinstance(copy, str) and copy == region:
                report(("backup", "cross_region_copy"), f"{copy} is {name}'s own region; name another region", False)
                break
    notifications = _get(data, "notifications")
    if notifications is not None and "slack_channel" in notifications and "slack_webhook" not in notifications:
        report(("notifications", "slack_channel"), "needs notifications.slack_webhook (the webhook posts to it)", True)
    webhook = (notifications or {}).get("slack_webhook")
    if isinstance(webhook, str) and not is_slack_webhook(webhook):
        report(("notifications", "slack_webhook"), f"{SLACK_WEBHOOK_RULE} (value hidden)", False)


# The worker posts to the webhook: any other host or port would be a request from inside the network
# to wherever a source's variables point (and the sink follows no redirect either).
SLACK_WEBHOOK_RULE = "is not a Slack incoming webhook: only https://hooks.slack.com/... (port 443) is posted to"
_SLACK_WEBHOOK = re.compile(r"https://hooks\.slack\.com(?::443)?/[A-Za-z0-9/_-]+")


def is_slack_webhook(url: str) -> bool:
    return _SLACK_WEBHOOK.fullmatch(url) is not None


def _switched_off(section: dict[str, Any], name: str, report: Report) -> None:
    """A section turned off by its `enabled` flag (either spelling) may hold nothing else."""
    flags = {"enabled", *(alias for alias, field in aliases(SCHEMA["properties"][name]).items() if field == "enabled")}
    flag = next((key for key in flags if section.get(key) is False), None)
    if flag is not None:
        for key in section:
            if key not in flags:
                report((name, key), f"{name}.{flag} is false, so this builds nothing; remove it or the flag", True)


def _compute_problems(compute: dict[str, Any], zones: int, regions: dict[str, Any], report: Report) -> None:
    kind = compute.get("type", "ec2")
    if kind not in COMPUTE_FIELDS["type"]:
        return  # not a type this manager builds: refused as such (spelling_problems)
    if zones < 2 and kind != "lambda":
        report(("compute",), "its load balancer spans two availability zones; set networking.availability_zones to 2 or more", True)
    for key in compute:
        kinds = COMPUTE_FIELDS.get(key, COMPUTE_FIELDS["type"])
        if kind not in kinds:
            report(("compute", key), f"applies to compute of type {' or '.join(kinds)} only (this is {kind})", True)
    required = {"ec2": "ami_id", "ecs": "image", "lambda": "image"}[kind]
    if required not in compute:
        report(("compute",), f"`{required}` is required for compute of type {kind}", True)
    if kind == "ecs":
        cpu, memory = compute.get("cpu", ECS_DEFAULTS["cpu"]), compute.get("memory", ECS_DEFAULTS["memory"])
        if cpu in FARGATE_MEMORY and type(memory) is int:
            low, high = FARGATE_MEMORY[cpu]
            if not low <= memory <= high:
                report(("compute", "memory"), f"{memory} MiB does not fit Fargate's {cpu} CPU units ({low} to {high})", False)
    if kind == "lambda":
        memory = compute.get("memory")
        low, high = LAMBDA_MEMORY
        if type(memory) is int and not low <= memory <= high:
            report(("compute", "memory"), f"{memory} MiB is outside what Lambda allows ({low} to {high})", False)
        image = compute.get("image")
        match = ECR_IMAGE.match(image) if isinstance(image, str) else None
        if isinstance(image, str) and match is None:
            report(
                ("compute", "image"),
                f"`{image}` is not an Amazon ECR image; Lambda runs images from ECR only "
                "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)",
                False,
            )
        elif match is not None:
            for name, region in regions.items():
                if isinstance(region, str) and region != match["region"]:
                    report(
                        ("compute", "image"),
                        f"the image is in {match['region']} and {name} deploys to {region}; Lambda pulls images "
                        "from its own region only",
                        False,
                    )
                    break


def _lambda_problems(data: dict[str, Any], report: Report) -> None:
    """Settings of other sections that only mean something behind a load balancer or for a group to scale."""
    monitoring, security = _get(data, "monitoring") or {}, _get(data, "security") or {}
    if "alarm_cpu_threshold" in monitoring:
        report(
            ("monitoring", "alarm_cpu_threshold"),
            "compute of type lambda publishes no CPU metric, so there is nothing to alarm on; remove it",
            True,
        )
    if "ssl_certificate_arn" in security:
        report(
            ("security", "ssl_certificate_arn"),
            "compute of type lambda has no load balancer to terminate TLS on; remove it",
            True,
        )
    if security.get("enable_waf") is True:
        report(
            ("security", "enable_waf"),
            "the web ACL guards the load balancer, and compute of type lambda has none; remove it or set it to false",
            False,
        )
    if _get(data, "scaling") is not None:
        report(
            ("scaling",),
            "compute of type lambda scales by itself (one instance per concurrent request); remove the scaling "
            "section",
            True,
        )


def _storage_problems(storage: dict[str, Any], project: Any, environments: list[str], report: Report) -> None:
    names: dict[str, Path] = {}
    main = storage.get("bucket_name", "storage")
    if isinstance(main, str):
        names[main] = ("storage", "bucket_name")
        if main == LOGS_BUCKET_SUFFIX:
            report(names[main], f"`{LOGS_BUCKET_SUFFIX}` names the manager's access-log bucket; pick another name", False)
    for index, bucket in enumerate(storage.get("buckets") or []):
        if isinstance(bucket, dict) and isinstance(bucket.get("name"), str):
            path = ("storage", "buckets", index, "name")
            if bucket["name"] == LOGS_BUCKET_SUFFIX:
                report(path, f"`{LOGS_BUCKET_SUFFIX}` names the manager's access-log bucket; pick another name", False)
            elif bucket["name"] in names:
                report(path, f"`{bucket['name']}` names another bucket of this section too", False)
            names[bucket["name"]] = path
    if isinstance(project, str):
        for suffix, path in names.items():
            for environment in environments:
                full = f"{project}-{environment}-{suffix}"
                if len(full) > S3_NAME_LIMIT:
                    report(
                        path,
                        f"`{full}` (the bucket's name in {environment}) is {len(full)} characters; S3 allows "
                        f"{S3_NAME_LIMIT}: shorten it or project_name",
                        False,
                    )
                    break
    ids: set[str] = set()
    for index, rule in enumerate(storage.get("lifecycle_rules") or []):
        if not isinstance(rule, dict):
            continue
        path = ("storage", "lifecycle_rules", index)
        name = rule.get("id", rule.get("name"))
        if isinstance(name, str):
            if name in ids:
                report(path, f"another rule is named `{name}` too", False)
            ids.add(name)
        else:
            report(path, "`id` is required (the rule's name)", False)
        days, target = rule.get("transition_days"), rule.get("transition_storage_class")
        if (days is None) != (target is None):
            missing = "transition_storage_class" if target is None else "transition_days"
            report(path, f"a transition needs both transition_days and transition_storage_class; add {missing}", False)
        expires = rule.get("expiration_days")
        if type(days) is int and type(expires) is int and days >= expires:
            report(
                (*path, "transition_days"),
                f"objects would be deleted (expiration_days {expires}) before they move (transition_days {days}); "
                "transition earlier or expire later",
                False,
            )
