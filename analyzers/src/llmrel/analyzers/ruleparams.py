"""Typed parameters of rule kinds: one checker per value type, and the parameter table of every kind.

A checker takes a raw YAML value and returns `(converted value, problem or None)`, so a rule file
is validated completely and every problem reported at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmrel.analyzers.callfields import NUMBER_FIELDS, SCOPE_KEYS, TEXT_FIELDS
from llmrel.analyzers.pii import PII_KINDS
from llmrel.analyzers.userregex import regex_problem
from llmrel.durations import parse_duration

BUDGET_METRICS = ("cost_usd", "input_tokens", "output_tokens", "total_tokens", "calls")
TRACE_COUNTS = ("calls", "retries", "tool_calls", "errors")

Checker = Callable[[Any], tuple[Any, str | None]]


def as_str(value: Any) -> tuple[Any, str | None]:
    return (value, None) if isinstance(value, str) and value else (value, "must be a non-empty string")


def as_str_list(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, str) and value:
        return (value,), None
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value), None
    return value, "must be a string or a non-empty list of strings"


def as_number(value: Any) -> tuple[Any, str | None]:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return (float(value), None) if ok else (value, "must be a number")


def as_non_negative(value: Any) -> tuple[Any, str | None]:
    converted, problem = as_number(value)
    return (converted, problem) if problem or converted >= 0 else (value, "must be >= 0")


def as_count(value: Any) -> tuple[Any, str | None]:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return (value, None) if ok else (value, "must be an integer >= 0")


def as_fraction(value: Any) -> tuple[Any, str | None]:
    converted, problem = as_number(value)
    return (converted, problem) if problem or 0 <= converted <= 1 else (value, "must be between 0 and 1")


def as_bool(value: Any) -> tuple[Any, str | None]:
    return (value, None) if isinstance(value, bool) else (value, "must be true or false")


def as_duration(value: Any) -> tuple[Any, str | None]:
    try:
        return parse_duration(value), None
    except ValueError as exc:
        return value, str(exc)


def as_mapping(value: Any) -> tuple[Any, str | None]:
    return (value, None) if isinstance(value, dict) else (value, "must be a mapping")


def one_of(*allowed: str) -> Checker:
    def check(value: Any) -> tuple[Any, str | None]:
        return (value, None) if value in allowed else (value, f"must be one of {list(allowed)}")
    return check


def subset_of(*allowed: str) -> Checker:
    def check(value: Any) -> tuple[Any, str | None]:
        converted, problem = as_str_list(value)
        if problem:
            return value, problem
        bad = [v for v in converted if v not in allowed]
        return (converted, None) if not bad else (value, f"unknown {bad}; allowed: {list(allowed)}")
    return check


def as_regex(value: Any) -> tuple[Any, str | None]:
    """A pattern for RE2 (linear-time matching), at most `userregex.MAX_PATTERN_CHARS` long."""
    _, problem = as_str(value)
    return (value, problem) if problem else (value, regex_problem(value))


MAX_EXPRESSION_CHARS = 2_000


def as_expression(value: Any) -> tuple[Any, str | None]:
    _, problem = as_str(value)
    if problem:
        return value, problem
    return (value, None) if len(value) <= MAX_EXPRESSION_CHARS else (
        value, f"expression longer than {MAX_EXPRESSION_CHARS} characters")


# kind -> {param: (checker, required, default)}
PARAMS: dict[str, dict[str, tuple[Checker, bool, Any]]] = {
    "json_valid": {"mode": (one_of("all", "looks_like", "declared"), False, "all")},
    "json_schema": {"schema": (as_mapping, True, None)},
    "regex": {"pattern": (as_regex, True, None), "must": (one_of("match", "not_match"), False, "not_match"),
              "field": (one_of(*TEXT_FIELDS), False, "output_text"), "ignore_case": (as_bool, False, False)},
    "no_pii": {"kinds": (subset_of(*PII_KINDS), False, PII_KINDS)},
    "not_empty": {},
    "no_refusal": {"pattern": (as_regex, False, None)},
    "finish_reason": {"not_in": (as_str_list, True, None)},
    "bounds": {"field": (one_of(*NUMBER_FIELDS), True, None), "min": (as_number, False, None),
               "max": (as_number, False, None)},
    "model_allowed": {"models": (as_str_list, True, None),
                      "field": (one_of("response_model", "model", "request_model"), False, "response_model")},
    "expression": {"expr": (as_expression, True, None)},
    "no_error": {},
    "trace_limit": {"count": (one_of(*TRACE_COUNTS), True, None), "max": (as_count, True, None),
                    "idle": (as_duration, False, 900)},
    "window_rate": {"of": (as_str, True, None), "window": (as_duration, True, None),
                    "threshold": (as_fraction, True, None),
                    "by": (subset_of(*SCOPE_KEYS), False, ()), "min_calls": (as_count, False, 20)},
    "budget": {"metric": (one_of(*BUDGET_METRICS), False, "cost_usd"), "window": (as_duration, True, None),
               "max": (as_non_negative, True, None), "by": (subset_of(*SCOPE_KEYS), False, ())},
}
