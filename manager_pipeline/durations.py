"""A duration as a person writes it, the same in manager.yaml and in the environment: a number above
zero and its unit, ``30s``, ``30m``, ``12h``, ``7d`` (``1.5d`` too; the unit in either case, a space
before it allowed). The environment also takes a bare number as hours (``MANAGER_PLAN_RETENTION=2``),
as it always has; manager.yaml wants the unit.
"""

from __future__ import annotations

import math
import re

UNITS_H = {"s": 1 / 3600, "m": 1 / 60, "h": 1.0, "d": 24.0}
# The JSON Schema of manager.yaml publishes this (``manager-pipeline schema --manager``).
PATTERN = r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([smhdSMHD])\s*$"
_WRITTEN = re.compile(PATTERN)
_BARE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*$")
EXAMPLES = "12h or 7d"


class DurationError(ValueError):
    """Not a duration; the callers say which setting and what to write (``EXAMPLES``)."""


def hours(text: str, bare_hours: bool = False) -> float:
    """``text`` in hours; ``bare_hours``: a number without a unit is hours (the environment's old form)."""
    match = _WRITTEN.match(text)
    if match:
        value = float(match.group(1)) * UNITS_H[match.group(2).lower()]
    elif bare_hours and _BARE.match(text):
        value = float(text)
    else:
        raise DurationError(text)
    if not (0 < value < math.inf):
        raise DurationError(text)
    return value
