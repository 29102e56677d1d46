"""Markdown that a sender cannot bend: every value a source controls (a branch name, an error line, a
resource address) goes through here before it reaches a comment, an issue, a report or the UI."""

from __future__ import annotations

import re

from manager_pipeline.redact import redact


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
