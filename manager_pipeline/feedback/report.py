"""The run report in markdown: what changes (and whether anything is destroyed) comes first.

The report is redacted as it is built: every value is masked before it is shaped (a code span
collapses whitespace, a plan may be shortened), and the whole text once more at the end.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from manager_pipeline.feedback.outcome import Outcome, OutcomeStatus
from manager_pipeline.feedback.redact import known_secrets, redact

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
    text = redact(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def inline_code(value: object) -> str:
    """``value`` as a code span that no character in it can close, in a table cell or a line:
    a sender's branch name cannot end the span, @mention a team, add a link or break the table.
    Redacted before it is reshaped, so a secret with spaces in it is still found."""
    text = " ".join(redact(str(value)).split())
    text = "".join(ch for ch in text if ch.isprintable()).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def format_value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def render_report(
    outcome: Outcome,
    run_id: str | None = None,
    run_url: str | None = None,
    plan_text: str | None = None,
    secrets: Iterable[str] | None = None,
) -> str:
    """The report, redacted; ``plan_text`` replaces the plan artifact's text (e.g. shortened to fit a comment).

    ``secrets``: values to mask besides those the process knows (``feedback/redact.py``).
    """
    masked = known_secrets(secrets or ())
    return redact("\n".join(_report_lines(outcome, run_id, run_url, plan_text, masked)), masked)


def _report_lines(
    outcome: Outcome, run_id: str | None, run_url: str | None, plan_text: str | None, secrets: list[str]
) -> list[str]:
    event = outcome.event
    lines = [f"## {_ICONS[outcome.status]} {event.source} / {event.environment}: {outcome.status.value}", ""]
    plan = outcome.plan
    if plan is not None:
        lines.append(f"**{'DESTROY: ' if plan.destroy else ''}{plan.summary.line()}** (plan `{plan.plan_id}`)")
        deletions = plan.summary.deletions
        if deletions:
            said = (
                f"Destroyed {len(deletions)} resource(s)"
                if plan.destroy and outcome.status is OutcomeStatus.APPLIED
                else f"This plan destroys {len(deletions)} resource(s)"
            )
            lines += ["", f"> ⚠️ **{said}:** " + ", ".join(f"`{a}`" for a in deletions)]
        lines.append("")
    lines += [outcome.headline, ""]
    if outcome.error:
        error = redact(outcome.error, secrets)
        lines += [f"Failed at **{outcome.failed_stage or 'unknown stage'}**:", "", code_block(error), ""]
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
            f"| {inline_code(redact(name, secrets))} | {inline_code(redact(format_value(value), secrets))} |"
            for name, value in outcome.outputs.items()
        ]
        lines.append("")
    if plan_text is None and plan is not None and plan.text_file.exists():
        plan_text = plan.text()
    if plan_text is not None:
        lines += [
            "<details><summary>Terraform plan</summary>",
            "",
            code_block(redact(plan_text, secrets), "text"),
            "",
            "</details>",
            "",
        ]
    return lines
