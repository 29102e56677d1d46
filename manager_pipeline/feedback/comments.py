"""Markdown for GitHub: plan comments split to fit, notifications, status descriptions.

A GitHub comment holds at most 65,536 characters. A long comment is cut on line
boundaries into numbered parts; a cut never leaves a code fence or a ``<details>`` block
open: it is closed at the end of the part and opened again at the start of the next, and
the part's marker records how many lines were added so ``join_parts`` gives back the
original text exactly. Past ``max_parts``, the start of the plan is left out (its end holds
the summary line) with a note saying how much, and the link to the full plan.

Both cuts (a part, an over-long line, the start of a long plan) come after redaction: the
text is redacted first, so a secret on a cut cannot leave as a prefix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from manager_pipeline.redact import redact_text

COMMENT_LIMIT = 65_536
MAX_PARTS = 10
_FENCE = re.compile(r"^(`{3,}|~{3,})")
_MARKER = re.compile(
    r"^<!-- manager-pipeline:(?P<key>\S+) part (\d+)/(\d+) reopen=(?P<reopen>\d+) close=(?P<close>\d+) -->$"
)


def marker(key: str, index: int, count: int, reopen: int, close: int) -> str:
    return f"<!-- manager-pipeline:{key} part {index}/{count} reopen={reopen} close={close} -->"


def _advance(stack: list[str], line: str) -> list[str]:
    """The open fences and ``<details>`` after ``line``, given ``stack`` open before it."""
    stripped = line.strip()
    top = stack[-1] if stack else ""
    if top[:1] in ("`", "~"):
        # Inside a fence only its closing fence counts: the same character, at least as long.
        fence = top[: len(top) - len(top.lstrip(top[0]))]
        if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
            return stack[:-1]
        return stack
    if _FENCE.match(stripped):
        return [*stack, stripped]
    if stripped.startswith("<details"):
        return [*stack, stripped]
    if stripped == "</details>" and top.startswith("<details"):
        return stack[:-1]
    return stack


def _closing(stack: list[str]) -> list[str]:
    return [
        "</details>" if opener.startswith("<details") else _FENCE.match(opener).group(1) for opener in reversed(stack)
    ]


def _size(lines: list[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def split_comment(
    body: str, key: str, limit: int = COMMENT_LIMIT, secrets: Iterable[str] | None = None
) -> list[str]:
    """``body``, redacted, as comment parts of at most ``limit`` characters each, blocks kept balanced."""
    body = redact_text(body, secrets)
    budget = limit - 120  # the marker line
    longest = budget // 4
    chunks: list[tuple[list[str], list[str], list[str]]] = []  # (reopened, lines, closing)
    reopened: list[str] = []
    current: list[str] = []
    open_now: list[str] = []
    size = 0
    for line in body.split("\n"):
        if len(line) > longest:
            line = line[: longest - 20] + " …(line cut)"
        after = _advance(open_now, line)
        if current and size + len(line) + 1 + _size(_closing(after)) > budget:
            chunks.append((reopened, current, _closing(open_now)))
            reopened, current = list(open_now), []
            size = _size(reopened)
            after = _advance(open_now, line)
        current.append(line)
        size += len(line) + 1
        open_now = after
    chunks.append((reopened, current, _closing(open_now)))
    count = len(chunks)
    return [
        "\n".join([marker(key, index, count, len(opened), len(closed)), *opened, *chunk, *closed])
        for index, (opened, chunk, closed) in enumerate(chunks, start=1)
    ]


def join_parts(parts: list[str]) -> str:
    """The original text of ``split_comment``'s parts."""
    lines: list[str] = []
    for part in parts:
        part_lines = part.split("\n")
        match = _MARKER.match(part_lines[0])
        if not match:
            raise ValueError("not a manager-pipeline comment part")
        body = part_lines[1 + int(match["reopen"]) :]
        if int(match["close"]):
            body = body[: -int(match["close"])]
        lines += body
    return "\n".join(lines)


def fit_plan(plan_text: str, room: int, full_plan_url: str, secrets: Iterable[str] | None = None) -> str:
    """``plan_text`` (redacted) when it fits in ``room`` characters; else its end, saying what was left out."""
    plan_text = redact_text(plan_text, secrets)
    if len(plan_text) <= room:
        return plan_text
    lines = plan_text.split("\n")
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        if size + len(line) + 1 > room - 300:
            break
        kept.append(line)
        size += len(line) + 1
    kept.reverse()
    dropped = len(lines) - len(kept)
    note = (
        f"… {dropped} lines ({len(plan_text) - size} characters) of the plan left out here; "
        f"the full plan: {full_plan_url}"
    )
    return note + "\n" + "\n".join(kept)
