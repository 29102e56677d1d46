"""What a saved plan will do, read from ``terraform show -json``; values stay out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

SENSITIVE = "(sensitive)"
UNKNOWN = "(known after apply)"


@dataclass(frozen=True)
class PlanSummary:
    to_add: tuple[str, ...] = ()
    to_change: tuple[str, ...] = ()
    to_destroy: tuple[str, ...] = ()
    to_replace: tuple[str, ...] = ()
    output_changes: tuple[str, ...] = ()

    @property
    def add(self) -> int:
        return len(self.to_add) + len(self.to_replace)

    @property
    def change(self) -> int:
        return len(self.to_change)

    @property
    def destroy(self) -> int:
        return len(self.to_destroy) + len(self.to_replace)

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy or self.output_changes)

    @property
    def deletions(self) -> tuple[str, ...]:
        """Every resource the plan deletes, replacements included."""
        return tuple(sorted(self.to_destroy + self.to_replace))

    def line(self) -> str:
        if not self.has_changes:
            return "No changes."
        return f"{self.add} to add, {self.change} to change, {self.destroy} to destroy"

    def to_dict(self) -> dict[str, Any]:
        return {
            "add": self.add,
            "change": self.change,
            "destroy": self.destroy,
            "to_add": list(self.to_add),
            "to_change": list(self.to_change),
            "to_destroy": list(self.to_destroy),
            "to_replace": list(self.to_replace),
            "output_changes": list(self.output_changes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanSummary:
        return cls(
            **{
                key: tuple(data.get(key, ()))
                for key in ("to_add", "to_change", "to_destroy", "to_replace", "output_changes")
            }
        )


def summarize(plan_json: Mapping[str, Any]) -> PlanSummary:
    buckets: dict[str, list[str]] = {"add": [], "change": [], "destroy": [], "replace": []}
    for change in plan_json.get("resource_changes", []):
        actions = tuple(change.get("change", {}).get("actions", ()))
        address = change.get("address", "?")
        if actions == ("create",):
            buckets["add"].append(address)
        elif actions == ("update",):
            buckets["change"].append(address)
        elif actions == ("delete",):
            buckets["destroy"].append(address)
        elif set(actions) == {"create", "delete"}:
            buckets["replace"].append(address)
    outputs = [
        name
        for name, change in (plan_json.get("output_changes") or {}).items()
        if tuple(change.get("actions", ())) not in (("no-op",), ())
    ]
    return PlanSummary(
        to_add=tuple(buckets["add"]),
        to_change=tuple(buckets["change"]),
        to_destroy=tuple(buckets["destroy"]),
        to_replace=tuple(buckets["replace"]),
        output_changes=tuple(sorted(outputs)),
    )


def mask_outputs(outputs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Terraform outputs (``output -json`` shape) as name -> value, sensitive ones masked."""
    masked = {}
    for name, item in sorted(outputs.items()):
        if item.get("sensitive"):
            masked[name] = SENSITIVE
        elif "value" not in item:
            masked[name] = UNKNOWN
        elif item["value"] is not None:
            # Terraform leaves null outputs out of state; leave them out here too.
            masked[name] = item["value"]
    return masked


def planned_outputs(plan_json: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs a plan leads to, masked; unknown ones say so."""
    return mask_outputs((plan_json.get("planned_values") or {}).get("outputs") or {})


def resources_by_type(addresses: list[str]) -> dict[str, int]:
    """How many managed resources of each type ``terraform state list`` names (data sources left out)."""
    counts: dict[str, int] = {}
    for address in addresses:
        parts = address.split(".")
        while len(parts) > 2 and parts[0] == "module":
            parts = parts[2:]
        if not parts or parts[0] == "data" or len(parts) < 2:
            continue
        counts[parts[0]] = counts.get(parts[0], 0) + 1
    return dict(sorted(counts.items()))
