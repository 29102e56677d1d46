"""The run report in markdown: what changes (and whether anything is destroyed) comes first."""

from __future__ import annotations

import json
import re

from manager_pipeline.feedback.outcome import Outcome, OutcomeStatus

_ICONS = {
    OutcomeStatus.APPLIED: "✅",
    OutcomeStatus.NO_CHANGES: "✅",
    OutcomeStatus.PLAN_ONLY: "📝",
    OutcomeStatus.AWAITING_APPROVAL: "⏸️",
    OutcomeStatus.SUPERSEDED: "⏭️",
    OutcomeStatus.FAILED: "❌",
}


def code_block(text: str, language: str = "") -> str:
    """A fenced block that no backtick run inside ``text`` can close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def inline_code(value: object) -> str:
    """``value`` as a code span that no character in it can close, in a table cell or a line:
    a sender's branch name cannot end the span, @mention a team, add a link or break the table."""
    text = " ".join(str(value).split())
    text = "".join(ch for ch in text if ch.isprintable()).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def format_value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def render_report(
    outcome: Outcome, run_id: str | None = None, run_url: str | None = None, plan_text: str | None = None
) -> str:
    """The report; ``plan_text`` replaces the plan artifact's text (e.g. shortened to fit a comment)."""
    event = outcome.event
    lines = [f"## {_ICONS[outcome.status]} {event.source} / {event.environment}: {outcome.status.value}", ""]
    plan = outcome.plan
    if plan is not None:
        lines.append(f"**{plan.summary.line()}** (plan `{plan.plan_id}`)")
        deletions = plan.summary.deletions
        if deletions:
            lines += [
                "",
                f"> ⚠️ **This plan destroys {len(deletions)} resource(s):** " + ", ".join(f"`{a}`" for a in deletions),
            ]
        lines.append("")
    lines += [outcome.headline, ""]
    if outcome.error:
        lines += [f"Failed at **{outcome.failed_stage or 'unknown stage'}**:", "", code_block(outcome.error), ""]
    sha = outcome.sha or (plan.sha if plan else None) or event.sha
    branch = outcome.branch or (plan.branch if plan else None) or event.branch
    rows = [
        (
            "Source",
            inline_code(event.source)
            + (f" at {inline_code(sha[:12])}" if sha else "")
            + (f" on {inline_code(branch)}" if branch else ""),
        )
    ]
    if event.pr is not None:
        rows.append(("Pull request", f"#{int(event.pr)}"))
    delivery = f" (delivery {inline_code(event.delivery_id)})" if event.delivery_id else ""
    rows.append(("Trigger", inline_code(event.trigger) + delivery))
    if run_id:
        rows.append(("Run", f"[{run_id[:8]}]({run_url})" if run_url else f"`{run_id}`"))
    lines += ["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], ""]
    if outcome.outputs:
        lines += ["### Outputs", "", "| Output | Value |", "|---|---|"]
        lines += [
            f"| {inline_code(name)} | {inline_code(format_value(value))} |" for name, value in outcome.outputs.items()
        ]
        lines.append("")
    if plan_text is None and plan is not None and plan.text_file.exists():
        plan_text = plan.text()
    if plan_text is not None:
        lines += [
            "<details><summary>Terraform plan</summary>",
            "",
            code_block(plan_text, "text"),
            "",
            "</details>",
            "",
        ]
    return "\n".join(lines)
