"""Durations as people write them in front matter: ``90d``, ``12w``, ``6m``, ``1y``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT_DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}
MAX_DAYS = 100 * 365
"""Longer cycles are typos, and would push a review date past what a datetime can hold."""
_DURATION = re.compile(r"^\s*(\d+)\s*([dwmy])\s*$", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """Months count as 30 days and years as 365: review cycles, not calendar arithmetic."""
    match = _DURATION.match(str(text))
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"expected a duration like 90d, 12w, 6m or 1y, got {text!r}")
    days = int(match.group(1)) * _UNIT_DAYS[match.group(2).lower()]
    if days > MAX_DAYS:
        raise ValueError(f"{text!r} is longer than 100 years")
    return timedelta(days=days)
