"""Parse attribute strings flattened like the Collector's pdata `Value.AsString()`.

Every parser is total: bad input gives `None` and one line in a `Problems` list, never an
exception, because one malformed attribute must not cost the rest of the row.
"""

from __future__ import annotations

import json
import math
from json.decoder import WHITESPACE
from typing import Any

MAX_TOKEN_COUNT = 1_000_000_000
"""Counts above this are treated as corrupt (no single LLM call uses a billion tokens)."""

Problems = list[str]

_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})
_scan_json = json.JSONDecoder().scan_once  # `(value, end)` of the JSON value starting at an index
_json_whitespace = WHITESPACE.match


def _quote(raw: str, limit: int = 40) -> str:
    return repr(raw if len(raw) <= limit else raw[:limit] + "...")


def parse_count(key: str, raw: str | None, problems: Problems, limit: int = MAX_TOKEN_COUNT) -> int | None:
    """A non-negative integer count (tokens, max_tokens); integral doubles such as `13.0` are accepted."""
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        number = _finite_float(raw)
        if number is None or not number.is_integer():
            problems.append(f"{key}: not an integer: {_quote(raw)}")
            return None
        value = int(number)
    if value < 0:
        problems.append(f"{key}: negative: {value}")
        return None
    if value > limit:
        problems.append(f"{key}: absurdly large: {value}")
        return None
    return value


def parse_float(key: str, raw: str | None, problems: Problems) -> float | None:
    """A finite double, or `None` with a problem recorded."""
    if raw is None:
        return None
    value = _finite_float(raw)
    if value is None:
        problems.append(f"{key}: not a finite number: {_quote(raw)}")
    return value


def parse_seconds_as_ns(key: str, raw: str | None, problems: Problems) -> int | None:
    """Seconds (double) to integer nanoseconds; negative values are rejected."""
    seconds = parse_float(key, raw, problems)
    if seconds is None:
        return None
    if seconds < 0:
        problems.append(f"{key}: negative: {raw}")
        return None
    return round(seconds * 1e9)


def parse_bool(key: str, raw: str | None, problems: Problems) -> bool | None:
    """`true`/`false` (any case, also `1`/`0`)."""
    if raw is None:
        return None
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    problems.append(f"{key}: not a boolean: {_quote(raw)}")
    return None


def parse_json(raw: str | None) -> Any:
    """Decoded JSON, or `None` when absent or not JSON (same result as `json.loads`)."""
    if not raw:
        return None
    try:
        if raw[0] in "[{":  # the usual array or object: scan it directly, skipping `json.loads`' checks
            value, end = _scan_json(raw, 0)
            return value if end == len(raw) or _json_whitespace(raw, end).end() == len(raw) else None
        return json.loads(raw)
    except (ValueError, RecursionError, StopIteration):
        return None


def first_string(raw: str | None) -> str:
    """First element of a string array (`["stop"]`), or the value itself when it is a plain string."""
    if not raw:
        return ""
    if raw.startswith("["):
        inner = raw[2:-2]
        if raw.startswith('["') and raw.endswith('"]') and '"' not in inner and "\\" not in inner:
            return inner  # the common one-element array, without a JSON parse
        parsed = parse_json(raw)
        if isinstance(parsed, list):
            return str(parsed[0]) if parsed else ""
    return raw


def _finite_float(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
