"""Cron expressions as manager.yaml may give them (five fields, as Dagster schedules take them), checked
when manager.yaml is read: a typo is one line at its place there, not a code location that fails to load."""

from __future__ import annotations

import re

# (name, smallest, largest, names allowed in place of numbers)
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")),
    ("day of week", 0, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)
_ALIASES = ("@hourly", "@daily", "@weekly", "@monthly")
_ITEM = re.compile(r"^(?P<range>\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/(?P<step>[0-9]+))?$")


def _value(text: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    if text.upper() in names:
        return names.index(text.upper()) + low
    if text.isdigit() and low <= int(text) <= high:
        return int(text)
    return None


def cron_problem(text: str) -> str | None:
    """What is wrong with ``text`` as a cron expression, or None when it is one."""
    if text.strip() in _ALIASES:
        return None
    fields = text.split()
    if len(fields) != 5:
        return f"expected a cron expression of 5 fields (minute hour day month weekday), e.g. `0 6 * * *`, got {text!r}"
    for field, (name, low, high, names) in zip(fields, _FIELDS):
        for item in field.split(","):
            match = _ITEM.match(item)
            bounds = match["range"].split("-") if match and match["range"] != "*" else []
            values = [_value(bound, low, high, names) for bound in bounds]
            if not match or None in values or (match["step"] is not None and int(match["step"]) == 0):
                return f"{name} `{item}` in {text!r} is not valid (from {low} to {high})"
            if len(values) == 2 and values[0] > values[1]:
                return f"{name} range `{item}` in {text!r} runs backwards"
    return None
