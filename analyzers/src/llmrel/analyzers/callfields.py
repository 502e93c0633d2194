"""Named numeric and text views of an `LlmCall`, shared by rules, budgets and drift metrics.

Rules and expressions name fields in user units (`latency_ms`, `ttft_ms`, `total_tokens`),
so the YAML never depends on storage units. Every accessor returns `None` when the value is
unknown, and rules skip unknown values instead of treating them as zero.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from llmrel.model import LlmCall

NumberField = Callable[[LlmCall], float | None]

STATUS_ERROR = "Error"
FINISH_LENGTH = "length"


def _total_tokens(call: LlmCall) -> float | None:
    if call.input_tokens is None and call.output_tokens is None:
        return None
    return float((call.input_tokens or 0) + (call.output_tokens or 0))


def _opt(value: int | float | None, scale: float = 1.0) -> float | None:
    return None if value is None else value / scale


NUMBER_FIELDS: dict[str, NumberField] = {
    "latency_ms": lambda c: c.duration_ns / 1e6,
    "ttft_ms": lambda c: _opt(c.time_to_first_token_ns, 1e6),
    "input_tokens": lambda c: _opt(c.input_tokens),
    "output_tokens": lambda c: _opt(c.output_tokens),
    "total_tokens": _total_tokens,
    "cached_input_tokens": lambda c: _opt(c.cached_input_tokens),
    "reasoning_tokens": lambda c: _opt(c.reasoning_tokens),
    "cost_usd": lambda c: c.cost_usd,
    "tool_calls": lambda c: float(c.tool_calls),
    "output_chars": lambda c: float(len(c.output_text)) if c.output_text else None,
    "calls": lambda c: 1.0,
}

TEXT_FIELDS: tuple[str, ...] = (
    "service_name", "environment", "provider", "operation", "model", "request_model", "response_model",
    "finish_reason", "status_code", "status_message", "error_type", "tool_name", "feature", "tenant",
    "user_id", "session_id", "conversation_id", "span_name", "input_text", "output_text", "convention",
)

SCOPE_KEYS: tuple[str, ...] = ("service", "model", "operation", "feature", "tenant")


def scope_values(call: LlmCall) -> tuple[str, str, str, str, str]:
    """The values scope filters match, in `SCOPE_KEYS` order (model = request and response)."""
    return (call.service_name, call.model, call.operation, call.feature, call.tenant)


def expression_names(call: LlmCall) -> dict[str, Any]:
    """Every field an expression may read: raw columns plus the user-unit numbers above."""
    names: dict[str, Any] = {name: getattr(call, name) for name in TEXT_FIELDS}
    for name, get in NUMBER_FIELDS.items():
        names[name] = get(call)
    names["is_streaming"] = call.is_streaming
    names["is_error"] = call.status_code == STATUS_ERROR
    names["temperature"] = call.temperature
    names["max_tokens"] = call.max_tokens
    names["attributes"] = MappingProxyType(call.attributes)  # read-only: a rule must not change the call
    return names


def shard_of(key: tuple[str, ...], shards: int) -> int:
    """Stable shard of a stream key (CRC32, identical across processes and Python versions)."""
    return zlib.crc32("\x1f".join(key).encode()) % shards


def empty_call(**values: Any) -> LlmCall:
    """An `LlmCall` with every field empty (0, "", False, None, {}) except `values`."""
    defaults: dict[str, Any] = {}
    for name, annotation in LlmCall.__annotations__.items():
        text = getattr(annotation, "__forward_arg__", str(annotation))
        if "None" in text:
            defaults[name] = None
        elif text.startswith("dict"):
            defaults[name] = {}
        else:
            defaults[name] = {"int": 0, "str": "", "bool": False, "float": 0.0}[text]
    defaults.update(values)
    return LlmCall(**defaults)
