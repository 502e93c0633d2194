"""`normalize_span`: one `SpanRecord` in, one typed `LlmCall` (or `None` for a non-LLM span) out.

Pure and total: no I/O, no exceptions on malformed attributes. Values that cannot be used
(negative or absurd token counts, non-numeric parameters) become `None` and are listed under
`llmrel.normalize.warnings` in the row's attributes. Cost is left to `llmrel.pricing`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from llmrel.model import LlmCall, SpanRecord
from llmrel.normalize import tables as t
from llmrel.normalize.content import extract_content
from llmrel.normalize.values import (
    Problems,
    first_string,
    parse_bool,
    parse_count,
    parse_float,
    parse_json,
    parse_seconds_as_ns,
)

_CLASS_REPR = re.compile(r"^<class '([\w.]+)'>$")
_JSON_SEPARATORS = (",", ":")


def normalize_span(span: SpanRecord) -> LlmCall | None:
    """Map an LLM operation span of any supported convention to an `LlmCall`; `None` otherwise.

    Args:
        span: a stored span, attribute values flattened to strings.

    Returns:
        The normalized row with `cost_usd=None` and `cost_status` `unpriced` (token counts
        present) or `no_usage`, or `None` when the span is not an LLM operation.
    """
    attrs = span.span_attributes
    detected = detect_convention(attrs, span.span_name)
    if detected is None:
        return None
    convention, operation = detected
    return _Builder(span, convention, operation).build()


def detect_convention(attrs: dict[str, str], span_name: str = "") -> tuple[str, str] | None:
    """`(convention, operation)` of an LLM operation span, or `None` for any other span."""
    kind = attrs.get(t.OPENINFERENCE_SPAN_KIND)
    if kind:
        operation = t.OPENINFERENCE_OPERATIONS.get(kind.upper())
        if operation == "chat" and any(k.startswith(t.OI_PROMPTS_PREFIX) for k in attrs):
            operation = "text_completion"
        return (t.OPENINFERENCE, operation) if operation else None

    raw_operation = attrs.get(t.OPERATION_NAME) or attrs.get(t.LLM_REQUEST_TYPE)
    has_provider = t.PROVIDER_NAME in attrs or t.SYSTEM in attrs
    if raw_operation:
        operation = t.OPERATIONS.get(raw_operation, raw_operation)
    elif traceloop_kind := attrs.get(t.TRACELOOP_SPAN_KIND):
        operation = t.TRACELOOP_OPERATIONS.get(traceloop_kind)
        if operation is None:
            return None
    elif has_provider:
        operation = t.OPERATIONS.get(span_name.partition(" ")[0], "chat")
    else:
        return None

    if any(k in attrs for k in t.OPENLLMETRY_MARKERS) or any(k.startswith(t.OPENLLMETRY_PREFIX) for k in attrs):
        return t.OPENLLMETRY, operation
    if t.PROVIDER_NAME in attrs or t.SYSTEM not in attrs:
        return t.GENAI_SEMCONV, operation
    return t.GENAI_SEMCONV_LEGACY, operation


def normalize_error_type(raw: str) -> str:
    """`"<class 'openai.RateLimitError'>"` → `RateLimitError`; other values unchanged."""
    match = _CLASS_REPR.match(raw)
    return match.group(1).rpartition(".")[2] if match else raw


class _Builder:
    """Reads one span's attributes into the columns of an `LlmCall`."""

    def __init__(self, span: SpanRecord, convention: str, operation: str) -> None:
        self.span = span
        self.attrs = span.span_attributes
        self.convention = convention
        self.operation = operation
        self.extra_used: tuple[str, ...] = ()
        self.problems: Problems = []

    def pick(self, keys: Iterable[str]) -> tuple[str, str | None]:
        """First non-empty value among `keys`, with its key."""
        attrs = self.attrs
        for key in keys:
            value = attrs.get(key)
            if value:
                return key, value
        return "", None

    def text(self, keys: Iterable[str]) -> str:
        return self.pick(keys)[1] or ""

    def count(self, keys: Iterable[str]) -> int | None:
        key, raw = self.pick(keys)
        return parse_count(key, raw, self.problems)

    def number(self, keys: Iterable[str], params: dict[str, Any], param_keys: tuple[str, ...]) -> float | None:
        key, raw = self.pick(keys)
        if raw is not None:
            return parse_float(key, raw, self.problems)
        param_key, value = _param(params, param_keys)
        return parse_float(f"{t.INVOCATION_PARAMETERS}.{param_key}", value, self.problems)

    def build(self) -> LlmCall:
        span, attrs = self.span, self.attrs
        params = self._invocation_parameters()
        content = extract_content(attrs)

        request_model = self.text(t.REQUEST_MODEL_KEYS) or _param(params, t.INVOCATION_MODEL)[1] or ""
        response_model = self.text(t.RESPONSE_MODEL_KEYS)
        if oi_model := attrs.get(t.OPENINFERENCE_MODEL):
            request_model = request_model or oi_model
            response_model = response_model or oi_model

        tokens = (self.count(t.INPUT_TOKENS_KEYS), self.count(t.OUTPUT_TOKENS_KEYS),
                  self.count(t.CACHE_READ_KEYS), self.count(t.CACHE_CREATION_KEYS), self.count(t.REASONING_KEYS))
        max_tokens_key, max_tokens_raw = self.pick(t.MAX_TOKENS_KEYS)
        if max_tokens_raw is None:
            max_tokens_key, max_tokens_raw = _param(params, t.INVOCATION_MAX_TOKENS)
            max_tokens_key = f"{t.INVOCATION_PARAMETERS}.{max_tokens_key}"
        finish_reason = first_string(self.pick(t.FINISH_REASON_KEYS)[1]) or content.finish_reason
        finish_reason = t.FINISH_REASONS.get(finish_reason, finish_reason)
        # Without captured output content, a `tool_calls` finish still proves at least one call.
        tool_calls = content.tool_calls or int(finish_reason == "tool_calls")

        return LlmCall(
            timestamp_ns=span.timestamp_ns,
            trace_id=span.trace_id,
            span_id=span.span_id,
            parent_span_id=span.parent_span_id,
            span_name=span.span_name,
            service_name=span.service_name,
            environment=next((v for k in t.ENVIRONMENT_RESOURCE_KEYS
                              if (v := span.resource_attributes.get(k))), ""),
            provider=self._provider(),
            operation=self.operation,
            model=response_model or request_model,
            request_model=request_model,
            response_model=response_model,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cached_input_tokens=tokens[2],
            cache_creation_input_tokens=tokens[3],
            reasoning_tokens=tokens[4],
            cost_usd=None,
            cost_status="no_usage" if all(n is None for n in tokens) else "unpriced",
            duration_ns=span.duration_ns,
            time_to_first_token_ns=self._time_to_first_token(),
            is_streaming=self._is_streaming(params),
            finish_reason=finish_reason,
            status_code=span.status_code,
            status_message=span.status_message,
            error_type=self._error_type(),
            temperature=self.number(t.TEMPERATURE_KEYS, params, t.INVOCATION_TEMPERATURE),
            top_p=self.number(t.TOP_P_KEYS, params, t.INVOCATION_TOP_P),
            max_tokens=parse_count(max_tokens_key, max_tokens_raw, self.problems),
            tool_calls=tool_calls,
            tool_name=self._tool_name(),
            response_id=self.text(t.RESPONSE_ID_KEYS),
            server_address=self._server_address(),
            conversation_id=self.text(t.CONVERSATION_ID_KEYS),
            session_id=self.text(t.SESSION_ID_KEYS),
            user_id=self.text(t.USER_ID_KEYS),
            feature=self.text(t.FEATURE_KEYS),
            tenant=self.text(t.TENANT_KEYS),
            input_text=content.input_text,
            output_text=content.output_text,
            convention=self.convention,
            attributes=self._leftover(content.keys),
        )

    def _invocation_parameters(self) -> dict[str, Any]:
        raw = self.attrs.get(t.INVOCATION_PARAMETERS)
        if raw is None:
            return {}
        parsed = parse_json(raw)
        if not isinstance(parsed, dict):
            self.problems.append(f"{t.INVOCATION_PARAMETERS}: not a JSON object")
            return {}
        return parsed

    def _provider(self) -> str:
        raw = self.text(t.PROVIDER_KEYS).strip().lower()
        return t.PROVIDERS.get(raw, raw)

    def _is_streaming(self, params: dict[str, Any]) -> bool:
        key, raw = self.pick(t.STREAMING_KEYS)
        if raw is None:
            key, raw = _param(params, t.INVOCATION_STREAM)
            key = f"{t.INVOCATION_PARAMETERS}.{key}"
        return bool(parse_bool(key, raw, self.problems))

    def _time_to_first_token(self) -> int | None:
        key, raw = self.pick(t.TTFT_SECONDS_KEYS)
        if raw is not None:
            return parse_seconds_as_ns(key, raw, self.problems)
        span = self.span
        for name, timestamp in zip(span.events_name, span.events_timestamp, strict=False):
            if name in t.FIRST_CHUNK_EVENTS:
                return timestamp - span.timestamp_ns if timestamp >= span.timestamp_ns else None
        return None

    def _error_type(self) -> str:
        raw = self.text(t.ERROR_TYPE_KEYS)
        if not raw:
            for name, event_attrs in zip(self.span.events_name, self.span.events_attributes, strict=False):
                if name == t.EXCEPTION_EVENT and event_attrs.get(t.EXCEPTION_TYPE):
                    raw = event_attrs[t.EXCEPTION_TYPE]
                    break
        return normalize_error_type(raw)

    def _tool_name(self) -> str:
        name = self.text(t.TOOL_NAME_KEYS)
        if not name and self.attrs.get(t.TRACELOOP_SPAN_KIND) == "tool":
            name = self.text((t.TRACELOOP_ENTITY_NAME,))
            self.extra_used = (t.TRACELOOP_ENTITY_NAME,)
        return name

    def _server_address(self) -> str:
        address = self.text(t.SERVER_ADDRESS_KEYS)
        api_base = self.text(t.API_BASE_KEYS)
        return address if address or not api_base else _host_of(api_base)

    def _leftover(self, content_keys: frozenset[str]) -> dict[str, str]:
        leftover = {k: v for k, v in self.attrs.items()
                    if k not in t.COLUMN_KEYS and k not in content_keys and k not in self.extra_used}
        leftover[t.VERSION_ATTRIBUTE] = t.NORMALIZER_VERSION
        if self.problems:
            leftover[t.WARNINGS_ATTRIBUTE] = json.dumps(self.problems, separators=_JSON_SEPARATORS)
        return leftover


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
