"""The run report in markdown: what changes (and whether anything is destroyed) comes first.

The report is redacted as it is built: every value is masked before it is shaped (a code span
collapses whitespace, a plan may be shortened), and the whole text once more at the end.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from manager_pipeline.markdown import code_block, inline_code
from manager_pipeline.outcome import Outcome, OutcomeStatus
from manager_pipeline.redact import known_secrets, redact

_ICONS = {
    OutcomeStatus.APPLIED: "✅",
    OutcomeStatus.NO_CHANGES: "✅",
    OutcomeStatus.PLAN_ONLY: "📝",
    OutcomeStatus.AWAITING_APPROVAL: "⏸️",
    OutcomeStatus.SUPERSEDED: "⏭️",
    OutcomeStatus.FAILED: "❌",
}


def format_value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


_CHANGE = re.compile(r"^(\s*)(-/\+|\+/-|[-+~])(\s)")
# Terraform's change marks, as the diff colouring of GitHub and the UI reads them (a line's first character).
_DIFF_MARK = {"+": "+", "-": "-", "~": "!", "-/+": "!", "+/-": "!"}


def diff_markers(plan_text: str) -> str:
    """Terraform's plan text with each change mark repeated in the first column (``+`` created, ``-``
    destroyed, ``!`` changed or replaced), so a ``diff`` block colours it; the text itself is kept whole."""
    out = []
    for line in plan_text.splitlines():
        found = _CHANGE.match(line)
        out.append(f"{_DIFF_MARK[found.group(2)]} {line}" if found else f"  {line}")
    return "\n".join(out)


def _policy_lines(verdict: dict) -> list[str]:
    """The policy checks of the plan: enforced failures first, then warnings and skips, folded."""

    def rows(findings: list[dict]) -> list[str]:
        return [
            f"| {inline_code(f.get('check_id', ''))} | {inline_code(f.get('resource', ''))} | "
            f"{inline_code(f.get('name', ''))}"
            + (f" ({inline_code(f['reason'])})" if f.get("reason") else "")
            + " |"
            for f in findings
        ]

    failures, warnings, skipped = (verdict.get(key) or [] for key in ("failures", "warnings", "skipped"))
    head = "| Check | Resource | What |\n|---|---|---|"
    lines = ["### Policy", ""]
    if failures:
        lines += [f"❌ **{len(failures)} enforced check(s) failed**: this plan can never be approved or applied.", ""]
        lines += [head, *rows(failures), ""]
    else:
        lines += [f"✅ No enforced check failed ({verdict.get('passed', 0)} passed).", ""]
    if warnings or skipped:
        lines += [f"<details><summary>{len(warnings)} warning(s), {len(skipped)} skipped</summary>", "", head]
        lines += [*rows(warnings), *rows(skipped), "", "</details>", ""]
    return lines


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
    if plan is not None and plan.policy:
        lines += _policy_lines(plan.policy)
    if plan_text is None and plan is not None and plan.text_file.exists():
        plan_text = plan.text()
    if plan_text is not None:
        lines += [
            "<details><summary>Terraform plan</summary>",
            "",
            code_block(diff_markers(redact(plan_text, secrets)), "diff"),
            "",
            "</details>",
            "",
        ]
    return lines
