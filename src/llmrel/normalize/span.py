"""`normalize_span`: one `SpanRecord` in, one typed `LlmCall` (or `None` for a non-LLM span) out.

Pure and total: no I/O, no exceptions on malformed attributes. Values that cannot be used
(negative or absurd token counts, non-numeric parameters) become `None` and are listed under
`llmrel.normalize.warnings` in the row's attributes. Cost is left to `llmrel.pricing`.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from llmrel.model import LlmCall, SpanRecord
from llmrel.normalize import scan as slot
from llmrel.normalize import tables as t
from llmrel.normalize.content import extract_content, response_fields
from llmrel.normalize.scan import scan_attributes
from llmrel.normalize.values import (
    Problems,
    first_string,
    parse_bool,
    parse_count,
    parse_float,
    parse_json,
    parse_seconds_as_ns,
)
from llmrel_core import spans
from llmrel_core.spans import classify_span

_CLASS_REPR = re.compile(r"^<class '([\w.$]+)'>$")
_QUALIFIED_NAME = re.compile(r"^[A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)+$")
_JSON_SEPARATORS = (",", ":")


def normalize_span(span: SpanRecord) -> LlmCall | None:
    """Map an LLM call span of any supported convention to an `LlmCall`; `None` otherwise.

    Steps around calls (agents, tools, workflows, retrieval; see `classify`) are not calls: `None`.

    Args:
        span: a stored span, attribute values flattened to strings.

    Returns:
        The normalized row with `cost_usd=None` and `cost_status` `unpriced` (token counts
        present) or `no_usage`, or `None` when the span is not an LLM call.
    """
    found = classify_span(span.span_attributes, span.span_name)
    if found is None or not found.is_llm_call:
        return None
    return _build(span, found.convention, found.operation)


def normalize_error_type(raw: str) -> str:
    """One name per error whatever the language or instrumentation reported: the class name alone.

    `<class 'openai.RateLimitError'>`, `openai.RateLimitError` and `RateLimitError` all give
    `RateLimitError`; `com.openai.errors.RateLimitException` too (`tables.ERROR_TYPES`).
    Anything else (`429`, `timeout`, `_OTHER`) is kept.
    """
    value = raw.strip()
    if value.startswith("<class '") and (match := _CLASS_REPR.match(value)):
        value = match.group(1)
    if "." in value and _QUALIFIED_NAME.match(value):
        value = value.rpartition(".")[2]
    return t.ERROR_TYPES.get(value, value)


def _build(span: SpanRecord, convention: str, operation: str) -> LlmCall:
    """Read one span's attributes, in a single pass, into the columns of an `LlmCall`."""
    attrs = span.span_attributes
    values, keys, leftover, indexed_keys = scan_attributes(attrs)
    problems: Problems = []
    params = _invocation_parameters(attrs, problems)
    content = extract_content(attrs, indexed_keys)
    # OpenInference keeps the response id, and with some versions the finish reason, only in the
    # provider's JSON body (`output.value`).
    response = response_fields(attrs.get(t.OI_OUTPUT_VALUE)) if convention == spans.OPENINFERENCE else None

    request_model = values[slot.REQUEST_MODEL] or _param(params, t.INVOCATION_MODEL)[1] or ""
    response_model = values[slot.RESPONSE_MODEL] or ""
    if oi_model := attrs.get(t.OPENINFERENCE_MODEL):
        request_model = request_model or oi_model
        response_model = response_model or oi_model
    if response is not None:
        response_model = response_model or response.model

    input_tokens = parse_count(keys[slot.INPUT_TOKENS], values[slot.INPUT_TOKENS], problems)
    output_tokens = parse_count(keys[slot.OUTPUT_TOKENS], values[slot.OUTPUT_TOKENS], problems)
    cached_input_tokens = parse_count(keys[slot.CACHE_READ], values[slot.CACHE_READ], problems)
    cache_creation_input_tokens = parse_count(keys[slot.CACHE_CREATION], values[slot.CACHE_CREATION], problems)
    reasoning_tokens = parse_count(keys[slot.REASONING], values[slot.REASONING], problems)
    has_usage = (input_tokens is not None or output_tokens is not None or cached_input_tokens is not None
                 or cache_creation_input_tokens is not None or reasoning_tokens is not None)
    finish_reason = first_string(values[slot.FINISH_REASON]) or content.finish_reason
    if not finish_reason and response is not None:
        finish_reason = response.finish_reason
    finish_reason = t.FINISH_REASONS.get(finish_reason, finish_reason)
    # Without captured output content, a `tool_calls` finish still proves at least one call.
    tool_calls = content.tool_calls or int(finish_reason == "tool_calls")

    # Evaluated in column order, so warnings keep their order.
    time_to_first_token_ns = _time_to_first_token(span, keys[slot.TTFT_SECONDS], values[slot.TTFT_SECONDS], problems)
    is_streaming = _is_streaming(keys[slot.STREAMING], values[slot.STREAMING], params, problems)
    error_type = _error_type(span, values[slot.ERROR_TYPE])
    temperature = _number(keys[slot.TEMPERATURE], values[slot.TEMPERATURE], params, t.INVOCATION_TEMPERATURE, problems)
    top_p = _number(keys[slot.TOP_P], values[slot.TOP_P], params, t.INVOCATION_TOP_P, problems)
    max_tokens_key, max_tokens_raw = keys[slot.MAX_TOKENS], values[slot.MAX_TOKENS]
    if max_tokens_raw is None:
        max_tokens_key, max_tokens_raw = _param(params, t.INVOCATION_MAX_TOKENS)
        max_tokens_key = f"{t.INVOCATION_PARAMETERS}.{max_tokens_key}"
    max_tokens = parse_count(max_tokens_key, max_tokens_raw, problems)

    for key in content.keys:
        del leftover[key]
    leftover[t.VERSION_ATTRIBUTE] = t.NORMALIZER_VERSION
    if problems:
        leftover[t.WARNINGS_ATTRIBUTE] = json.dumps(problems, separators=_JSON_SEPARATORS)

    address = values[slot.SERVER_ADDRESS] or ""
    api_base = values[slot.API_BASE]
    raw_provider = (values[slot.PROVIDER] or "").strip().lower()
    return LlmCall._make((  # positionally, in field order
        span.timestamp_ns, span.trace_id, span.span_id, span.parent_span_id, span.span_name, span.service_name,
        span.resource_attributes.get(t.SERVICE_VERSION_RESOURCE_KEY, ""),
        _first_value(span.resource_attributes, t.ENVIRONMENT_RESOURCE_KEYS),
        t.PROVIDERS.get(raw_provider, raw_provider), operation,
        request_model or response_model, request_model, response_model,  # the canonical model: what was asked for
        input_tokens, output_tokens, cached_input_tokens, cache_creation_input_tokens, reasoning_tokens,
        None, "unpriced" if has_usage else "no_usage",  # cost_usd, cost_status
        span.duration_ns, time_to_first_token_ns, is_streaming, finish_reason,
        span.status_code, span.status_message, error_type, temperature, top_p, max_tokens, tool_calls,
        values[slot.TOOL_NAME] or "", values[slot.RESPONSE_ID] or (response.response_id if response else ""),
        address if address or not api_base else _host_of(api_base),
        values[slot.CONVERSATION_ID] or "", values[slot.SESSION_ID] or "", values[slot.USER_ID] or "",
        values[slot.FEATURE] or "", values[slot.TENANT] or "",
        content.input_text, content.output_text, convention, leftover,
    ))


def _first_value(attrs: dict[str, str], keys: tuple[str, ...]) -> str:
    """The first non-empty value among `keys`, or ""."""
    for key in keys:
        value = attrs.get(key)
        if value:
            return value
    return ""


def _invocation_parameters(attrs: dict[str, str], problems: Problems) -> dict[str, Any]:
    """OpenInference's JSON object of request parameters (`llm.` or `embedding.invocation_parameters`);
    `{}` when absent or not an object."""
    key = t.INVOCATION_PARAMETERS if t.INVOCATION_PARAMETERS in attrs else t.EMBEDDING_INVOCATION_PARAMETERS
    raw = attrs.get(key)
    if raw is None:
        return {}
    parsed = parse_json(raw)
    if not isinstance(parsed, dict):
        problems.append(f"{key}: not a JSON object")
        return {}
    return parsed


def _number(key: str, raw: str | None, params: dict[str, Any], param_keys: tuple[str, ...],
            problems: Problems) -> float | None:
    """A float attribute, else the same invocation parameter."""
    if raw is not None:
        return parse_float(key, raw, problems)
    if not params:
        return None
    param_key, value = _param(params, param_keys)
    return parse_float(f"{t.INVOCATION_PARAMETERS}.{param_key}", value, problems)


def _is_streaming(key: str, raw: str | None, params: dict[str, Any], problems: Problems) -> bool:
    if raw is None:
        if not params:
            return False
        key, raw = _param(params, t.INVOCATION_STREAM)
        key = f"{t.INVOCATION_PARAMETERS}.{key}"
    return bool(parse_bool(key, raw, problems))


def _time_to_first_token(span: SpanRecord, key: str, raw: str | None, problems: Problems) -> int | None:
    """The reported time to first chunk, else the offset of the first-chunk event."""
    if raw is not None:
        return parse_seconds_as_ns(key, raw, problems)
    if not span.events_name:
        return None
    for name, timestamp in zip(span.events_name, span.events_timestamp, strict=False):
        if name in t.FIRST_CHUNK_EVENTS:
            return timestamp - span.timestamp_ns if timestamp >= span.timestamp_ns else None
    return None


def _error_type(span: SpanRecord, raw: str | None) -> str:
    """`error.type`, else the type of the first recorded exception event."""
    if raw:
        return normalize_error_type(raw)
    if span.events_name:
        for name, event_attrs in zip(span.events_name, span.events_attributes, strict=False):
            if name == t.EXCEPTION_EVENT and event_attrs.get(t.EXCEPTION_TYPE):
                return normalize_error_type(event_attrs[t.EXCEPTION_TYPE])
    return ""


@lru_cache(maxsize=256)
def _host_of(url: str) -> str:
    """Host of an API base URL (`http://127.0.0.1:8080/v1/` → `127.0.0.1`); few distinct values, so cached."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def _param(params: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, str | None]:
    """An invocation parameter as the attribute string it would be (`true`, `0.7`, `256`)."""
    for key in keys:
        value = params.get(key)
        if value is None:
            continue
        if isinstance(value, bool):
            return key, "true" if value else "false"
        if isinstance(value, (int, float, str)):
            return key, str(value)
        return key, json.dumps(value, separators=_JSON_SEPARATORS)
    return (keys[0] if keys else ""), None
