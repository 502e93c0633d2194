"""Builders for hand-made `SpanRecord`s and the `LlmCall` fields every row copies from its span."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from llmrel.model import LlmCall, SpanRecord
from llmrel.normalize import NORMALIZER_VERSION, VERSION_ATTRIBUTE

START_NS = 1_764_140_400_123_456_789
TRACE_ID = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"
PARENT_ID = "eee19b7ec3c1b173"


def build_span(attrs: dict[str, str], **fields: Any) -> SpanRecord:
    """A CLIENT span of service `support-bot` in environment `prod`, 1.25 s long."""
    values: dict[str, Any] = {
        "timestamp_ns": START_NS, "trace_id": TRACE_ID, "span_id": SPAN_ID, "parent_span_id": PARENT_ID,
        "trace_state": "", "span_name": "chat gpt-4o", "span_kind": "Client", "service_name": "support-bot",
        "resource_attributes": {"service.name": "support-bot", "deployment.environment.name": "prod"},
        "scope_name": "test", "scope_version": "1.0", "span_attributes": attrs, "duration_ns": 1_250_000_000,
        "status_code": "Unset", "status_message": "", "events_timestamp": [], "events_name": [],
        "events_attributes": [], "links_trace_id": [], "links_span_id": [], "links_trace_state": [],
        "links_attributes": [],
    }
    values.update(fields)
    return SpanRecord(**values)


def expected_call(span: SpanRecord, **fields: Any) -> LlmCall:
    """An `LlmCall` with the span's own fields, empty/None elsewhere, overridden by `fields`."""
    values: dict[str, Any] = {
        "timestamp_ns": span.timestamp_ns, "trace_id": span.trace_id, "span_id": span.span_id,
        "parent_span_id": span.parent_span_id, "span_name": span.span_name, "service_name": span.service_name,
        "service_version": span.resource_attributes.get("service.version", ""), "environment": "prod",
        "provider": "", "operation": "chat", "model": "", "request_model": "",
        "response_model": "", "input_tokens": None, "output_tokens": None, "cached_input_tokens": None,
        "cache_creation_input_tokens": None, "reasoning_tokens": None, "cost_usd": None, "cost_status": "no_usage",
        "duration_ns": span.duration_ns, "time_to_first_token_ns": None, "is_streaming": False,
        "finish_reason": "", "status_code": span.status_code, "status_message": span.status_message,
        "error_type": "", "temperature": None, "top_p": None, "max_tokens": None, "tool_calls": 0,
        "tool_name": "", "response_id": "", "server_address": "", "conversation_id": "", "session_id": "",
        "user_id": "", "feature": "", "tenant": "", "input_text": "", "output_text": "", "convention": "",
        "attributes": {VERSION_ATTRIBUTE: NORMALIZER_VERSION},
    }
    values.update(fields)
    return LlmCall(**values)


@pytest.fixture
def span() -> Callable[..., SpanRecord]:
    return build_span


@pytest.fixture
def expected() -> Callable[..., LlmCall]:
    return expected_call
