"""Durations as users write them in rules, API parameters and CLI options: `30s`, `10m`, `1h`, `7d`, `2w`."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """A positive duration in seconds.

    Raises:
        ValueError: on any other form, or zero.

    Examples:
        >>> parse_duration("10m"), parse_duration("2 h")
        (600, 7200)
    """
    match = _DURATION.match(str(text).strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"expected a duration like 30s, 10m, 1h, 7d; got {str(text)[:80]!r}")
    return int(match.group(1)) * _UNIT_S[match.group(2)]
