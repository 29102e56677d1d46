"""The blast radius of a module change: one markdown summary of every partition's plan.

Failures first (with their first error line), then destroys and replacements, then other changes;
partitions with no changes are counted, and listed last. Addresses and counts only: no values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from manager_pipeline.errors import ManagerError
from manager_pipeline.fleet.planner import PartitionPlan, ordered
from manager_pipeline.markdown import inline_code
from manager_pipeline.redact import redact_text

# Names the summary wherever it lands (a pull request's comment, the run's metadata, a report).
MARKER = "<!-- manager-pipeline: blast radius -->"
MAX_ADDRESSES = 10
_PULL = re.compile(r"(?P<repo>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)#(?P<number>[0-9]+)")


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
    """The summary as markdown: ``module`` names what was planned (a digest, a ref, a folder). The label
    (from run config) and each error line (Terraform's, about HCL and variables others wrote) are code
    spans: neither can add a link, an image, a mention or end the table."""
    results = list(ordered(results))
    lines = [MARKER, f"### Blast radius of module {inline_code(module)}", "", headline(results) + "."]
    if run_url:
        lines.append(f"[The run in Dagster]({run_url})")
    lines += [
        "",
        "| source | environment | add | change | destroy | plan | new policy failures |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for result in results:
        where = f"| {result.partition.source} | {result.partition.environment} |"
        if result.summary is None:
            lines.append(f"{where} - | - | - | **failed** | - |")
        else:
            s = result.summary
            policy = "-" if result.new_policy_failures is None else str(len(result.new_policy_failures))
            lines.append(f"{where} {s.add} | {s.change} | {s.destroy} | `{result.plan_id}` | {policy} |")
    failed = [r for r in results if r.failed]
    if failed:
        lines += ["", "#### Failed"]
        lines += [f"- **{r.partition.label}**: {inline_code(r.error)}" for r in failed]
    introduced = [r for r in results if r.new_policy_failures]
    if introduced:
        lines += ["", "#### New policy failures (checks this module fails that the partition's last plan did not)"]
        lines += [
            f"- **{r.partition.label}**: " + ", ".join(inline_code(f) for f in r.new_policy_failures[:MAX_ADDRESSES])
            + (f" and {len(r.new_policy_failures) - MAX_ADDRESSES} more" if len(r.new_policy_failures) > MAX_ADDRESSES else "")
            for r in introduced
        ]
    unchecked = sorted({r.policy_note for r in results if r.policy_note})
    if unchecked:
        lines += ["", "Policy " + "; ".join(inline_code(note) for note in unchecked)]
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


def comment_target(comment_on: str, manager_repository: str | None) -> tuple[str, int]:
    """(repository, pull request) of ``comment_on`` (`owner/name#N`), which must be the manager's own
    repository: a run's config names it, and the token may write to many more."""
    match = _PULL.fullmatch(comment_on)
    if not match:
        raise ManagerError(f"comment_on `{comment_on[:80]}` is not a pull request: give `owner/name#NUMBER`")
    if not manager_repository:
        raise ManagerError(
            "the summary goes only to the manager's own repository: set MANAGER_REPOSITORY=owner/name; nothing posted"
        )
    if match["repo"].lower() != manager_repository.lower():
        raise ManagerError(
            f"comment_on `{match['repo']}` is not the manager's repository ({manager_repository}): the summary is "
            f"posted only on its pull requests; nothing posted"
        )
    return match["repo"], int(match["number"])
