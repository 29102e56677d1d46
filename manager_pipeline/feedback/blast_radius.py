"""The blast radius of a module change: one markdown summary of every partition's plan.

Failures first (with their first error line), then destroys and replacements, then other changes;
partitions with no changes are counted, and listed last. Addresses and counts only: no values.
"""

from __future__ import annotations

from collections.abc import Iterable

from manager_pipeline.feedback.redact import redact_text
from manager_pipeline.fleet import PartitionPlan, ordered

# Names the summary wherever it lands (a pull request's comment, the run's metadata, a report).
MARKER = "<!-- manager-pipeline: blast radius -->"
MAX_ADDRESSES = 10


def _addresses(addresses: Iterable[str]) -> str:
    addresses = list(addresses)
    shown = ", ".join(f"`{address}`" for address in addresses[:MAX_ADDRESSES])
    more = len(addresses) - MAX_ADDRESSES
    return shown + (f" and {more} more" if more > 0 else "")


def counts(results: Iterable[PartitionPlan]) -> dict[str, int]:
    results = list(results)
    planned = [r.summary for r in results if r.summary is not None]
    return {
        "partitions": len(results),
        "failed": sum(1 for r in results if r.failed),
        "with_changes": sum(1 for s in planned if s.has_changes),
        "destroying": sum(1 for s in planned if s.destroy),
        "add": sum(s.add for s in planned),
        "change": sum(s.change for s in planned),
        "destroy": sum(s.destroy for s in planned),
    }


def headline(results: Iterable[PartitionPlan]) -> str:
    total = counts(results)
    return (
        f"{total['partitions']} partitions planned: {total['with_changes']} with changes "
        f"({total['destroying']} destroying), {total['failed']} failed; "
        f"{total['add']} to add, {total['change']} to change, {total['destroy']} to destroy in all"
    )


def render(results: Iterable[PartitionPlan], module: str, run_url: str | None = None) -> str:
    """The summary as markdown: ``module`` names what was planned (a digest, a ref, a folder)."""
    results = list(ordered(results))
    lines = [MARKER, f"### Blast radius of module {module}", "", headline(results) + "."]
    if run_url:
        lines.append(f"[The run in Dagster]({run_url})")
    lines += ["", "| source | environment | add | change | destroy | plan |", "|---|---|---:|---:|---:|---|"]
    for result in results:
        where = f"| {result.partition.source} | {result.partition.environment} |"
        if result.summary is None:
            lines.append(f"{where} - | - | - | **failed** |")
        else:
            s = result.summary
            lines.append(f"{where} {s.add} | {s.change} | {s.destroy} | `{result.plan_id}` |")
    failed = [r for r in results if r.failed]
    if failed:
        lines += ["", "#### Failed"]
        lines += [f"- **{r.partition.label}**: {r.error}" for r in failed]
    dangerous = [r for r in results if r.summary is not None and r.summary.destroy]
    if dangerous:
        lines += ["", "#### Destroys and replacements"]
        for r in dangerous:
            parts = []
            if r.summary.to_replace:
                parts.append("replaces " + _addresses(r.summary.to_replace))
            if r.summary.to_destroy:
                parts.append("destroys " + _addresses(r.summary.to_destroy))
            lines.append(f"- **{r.partition.label}**: " + "; ".join(parts))
    return redact_text("\n".join(lines) + "\n")
