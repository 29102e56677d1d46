"""Drift: what changed outside the manager, read from a refresh-only plan (``terraform show -json``).

A refresh-only plan compares the state the manager's last apply left with what AWS holds now
(``resource_drift``). Only names leave this module, never values (a value may be a secret): the
resources, and which of their attributes changed (``tags.Owner``, ``enable_dns_hostnames``).

A change counts as drift when it is to something the module declares: an attribute its
configuration sets, the tags (the provider's ``default_tags`` manage every resource's), or the
resource itself (deleted outside Terraform). Attributes the module leaves to AWS change without
anyone touching them (a route table's inline ``route`` list once its routes are separate
``aws_route`` resources); they are kept apart as ``undeclared``, shown in the run, never an issue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping

from manager_pipeline.feedback.issues import partition_marker
from manager_pipeline.markdown import inline_code
from manager_pipeline.redact import redact_text

# Managed for every resource through the provider's default_tags, whether its block sets them or not.
ALWAYS_DECLARED = frozenset({"tags", "tags_all"})
DELETED = "(deleted outside Terraform)"
_INDEX = re.compile(r'\[(?:\d+|"(?:[^"\\]|\\.)*")\]')


class DriftStatus(str, Enum):
    DRIFT = "drift"
    NO_DRIFT = "no-drift"
    LOCKED = "locked"
    NO_STATE = "no-state"

    @property
    def label(self) -> str:
        words = {"no-drift": "no drift", "locked": "locked, not checked", "no-state": "no state"}
        return words.get(self.value, self.value)


@dataclass(frozen=True)
class DriftedResource:
    address: str
    # Changed attributes, one level into maps (``tags.Owner``); empty for a resource deleted outside.
    attributes: tuple[str, ...] = ()
    deleted: bool = False

    def line(self) -> str:
        return f"{self.address}: {DELETED if self.deleted else ', '.join(self.attributes)}"


@dataclass(frozen=True)
class DriftReport:
    resources: tuple[DriftedResource, ...] = ()
    undeclared: tuple[DriftedResource, ...] = ()

    @property
    def drifted(self) -> bool:
        return bool(self.resources)

    def summary(self) -> str:
        if not self.resources:
            return "no drift"
        count = len(self.resources)
        return f"{count} resource{'' if count == 1 else 's'} changed outside the manager"


def changed_attributes(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    before_sensitive: Any = None,
    after_sensitive: Any = None,
) -> tuple[str, ...]:
    """Names of the attributes that differ, one level into maps that are not sensitive; never values."""
    before, after = before or {}, after or {}
    names = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        sensitive = _marked(before_sensitive, name) or _marked(after_sensitive, name)
        if isinstance(old, dict) and isinstance(new, dict) and not sensitive:
            keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            names += [f"{name}.{key}" for key in keys]
        else:
            names.append(name)
    return tuple(names)


def _marked(sensitive: Any, name: str) -> bool:
    return bool(sensitive.get(name)) if isinstance(sensitive, dict) else bool(sensitive)


def declared_attributes(plan_json: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """Configuration address (``module.net.aws_vpc.main``, no instance keys) -> the attributes its block sets."""
    found: dict[str, frozenset[str]] = {}

    def walk(module: Mapping[str, Any], prefix: str) -> None:
        for resource in module.get("resources") or ():
            if resource.get("mode") == "managed":
                found[prefix + resource["address"]] = frozenset(resource.get("expressions") or ())
        for name, call in (module.get("module_calls") or {}).items():
            walk(call.get("module") or {}, f"{prefix}module.{name}.")

    walk((plan_json.get("configuration") or {}).get("root_module") or {}, "")
    return found


def _config_address(drift: Mapping[str, Any]) -> str:
    module = _INDEX.sub("", drift.get("module_address") or "")
    return f"{module + '.' if module else ''}{drift.get('type')}.{drift.get('name')}"


def drift_report(plan_json: Mapping[str, Any]) -> DriftReport:
    """The drift a refresh-only plan found, split into what the module declares and what it leaves to AWS."""
    declared = declared_attributes(plan_json)
    resources, undeclared = [], []
    for drift in plan_json.get("resource_drift") or ():
        if drift.get("mode") != "managed":
            continue
        change = drift.get("change") or {}
        address = drift.get("address", "?")
        if "delete" in (change.get("actions") or ()) and change.get("after") is None:
            resources.append(DriftedResource(address, deleted=True))
            continue
        names = changed_attributes(
            change.get("before"), change.get("after"), change.get("before_sensitive"), change.get("after_sensitive")
        )
        if not names:
            continue
        sets = declared.get(_config_address(drift), frozenset()) | ALWAYS_DECLARED
        relevant = tuple(name for name in names if name.split(".", 1)[0] in sets)
        if relevant:
            resources.append(DriftedResource(address, relevant))
        else:
            undeclared.append(DriftedResource(address, names))
    return DriftReport(tuple(resources), tuple(undeclared))


@dataclass(frozen=True)
class DriftCheck:
    """One partition's drift check: what it found, or why it did not look."""

    source: str
    environment: str
    status: DriftStatus
    report: DriftReport = field(default_factory=DriftReport)
    # Why not checked (no state, the lock that is held), in a line.
    detail: str = ""
    plan_id: str | None = None

    @property
    def partition(self) -> str:
        return f"{self.environment}|{self.source}"

    def line(self) -> str:
        """The one line the CLI prints for this partition (names only; redacted)."""
        if self.status is DriftStatus.DRIFT:
            text = f"drift: {self.report.summary()}: " + "; ".join(r.line() for r in self.report.resources)
        elif self.status is DriftStatus.NO_DRIFT:
            text = self.status.label
        else:
            text = f"{self.status.label}: {self.detail}"
        return redact_text(f"{self.partition}: {text}")


# --- the drift issue on a source repository, and the report ---------------------------------


def issue_marker(source: str, environment: str) -> str:
    """The hidden line that finds a partition's open drift issue again."""
    return partition_marker("drift", source, environment)


def issue_title(source: str, environment: str) -> str:
    return f"Infrastructure drift: {source} / {environment}"


def _table(resources: tuple[DriftedResource, ...]) -> list[str]:
    lines = ["| Resource | Changed |", "|---|---|"]
    for resource in resources:
        what = DELETED if resource.deleted else ", ".join(inline_code(name) for name in resource.attributes)
        lines.append(f"| {inline_code(resource.address)} | {what} |")
    return lines


def issue_body(check: DriftCheck, run_url: str) -> str:
    """The drift issue: what changed (names only), how to put it back, the run; redacted."""
    lines = [
        issue_marker(check.source, check.environment),
        f"## ⚠️ {check.report.summary()}: {inline_code(check.source)} / {inline_code(check.environment)}",
        "",
        "A refresh-only plan found these differences between what the manager last applied and what AWS holds "
        "now (values are not shown: they may be secrets; the run has the plan):",
        "",
        *_table(check.report.resources),
        "",
        "To put them back as declared, re-apply: `manager-pipeline run --source "
        f"{check.source} --env {check.environment}` (or the next deploy of this partition). To keep a change, "
        "make it in the variables file instead. This issue is closed when a later check or apply finds no drift.",
        "",
        f"[Drift check run in the Dagster UI]({run_url})",
    ]
    return redact_text("\n".join(lines))


def report_markdown(check: DriftCheck, run_url: str) -> str:
    """The drift check's report (the file path sources get, and the UI's metadata); redacted."""
    lines = [f"## Drift check {inline_code(check.source)} / {inline_code(check.environment)}: {check.status.label}", ""]
    if check.status is DriftStatus.DRIFT:
        lines += [check.report.summary() + ":", "", *_table(check.report.resources), ""]
    elif check.status is DriftStatus.NO_DRIFT:
        lines += ["What AWS holds is what the manager last applied.", ""]
    else:
        lines += [f"Not checked: {check.detail}", ""]
    if check.report.undeclared:
        lines += [
            "Also changed, in attributes the module leaves to AWS (not drift):",
            "",
            *_table(check.report.undeclared),
            "",
        ]
    if check.plan_id:
        lines.append(f"Compared against the state of applied plan {inline_code(check.plan_id)}.")
    lines.append(f"[Run]({run_url})")
    return redact_text("\n".join(lines))
