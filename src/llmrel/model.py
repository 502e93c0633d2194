"""Row types shared by every stage: one `SpanRecord` per stored span, one `LlmCall` per LLM operation.

Both are `NamedTuple`s whose field order is the column order of their ClickHouse table, so a
list of records is an insert batch as it stands. IDs are lowercase hex, times are integer
nanoseconds since the epoch; nothing here imports the rest of llmrel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class SpanRecord(NamedTuple):
    """One `otel_traces` row, exactly as the Collector's ClickHouse exporter writes it.

    Attribute values are strings, flattened the way the exporter (pdata `Value.AsString`) does:
    ints in decimal, bools `true`/`false`, arrays and maps as JSON, bytes as base64.
    """

    timestamp_ns: int
    trace_id: str
    span_id: str
    parent_span_id: str
    trace_state: str
    span_name: str
    span_kind: str  # Unspecified | Internal | Server | Client | Producer | Consumer
    service_name: str
    resource_attributes: dict[str, str]
    scope_name: str
    scope_version: str
    span_attributes: dict[str, str]
    duration_ns: int
    status_code: str  # Unset | Ok | Error
    status_message: str
    events_timestamp: list[int]
    events_name: list[str]
    events_attributes: list[dict[str, str]]
    links_trace_id: list[str]
    links_span_id: list[str]
    links_trace_state: list[str]
    links_attributes: list[dict[str, str]]


SPAN_COLUMNS: tuple[str, ...] = (
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind",
    "ServiceName", "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes", "Duration",
    "StatusCode", "StatusMessage", "Events.Timestamp", "Events.Name", "Events.Attributes",
    "Links.TraceId", "Links.SpanId", "Links.TraceState", "Links.Attributes",
)


class LlmCall(NamedTuple):
    """One `llm_calls` row: a normalized LLM operation with tokens, latency and cost.

    Unknown numbers are `None` (stored as NULL), never a silent 0. `cost_status` is
    `priced` when `cost_usd` was computed, `unpriced` when the model has no known price,
    `no_usage` when the call reported no token counts.
    """

    timestamp_ns: int
    trace_id: str
    span_id: str
    parent_span_id: str
    span_name: str
    service_name: str
    service_version: str  # resource `service.version` (what canary gates compare)
    environment: str
    provider: str
    operation: str  # chat | text_completion | embeddings | execute_tool | invoke_agent | ...
    model: str  # canonical: the request model when known, else the response model (see `response_model`)
    request_model: str
    response_model: str
    input_tokens: int | None
    output_tokens: int | None
    cached_input_tokens: int | None
    cache_creation_input_tokens: int | None
    reasoning_tokens: int | None
    cost_usd: float | None
    cost_status: str  # priced | unpriced | no_usage
    duration_ns: int
    time_to_first_token_ns: int | None
    is_streaming: bool
    finish_reason: str
    status_code: str  # Unset | Ok | Error
    status_message: str
    error_type: str
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    tool_calls: int
    tool_name: str
    response_id: str
    server_address: str
    conversation_id: str
    session_id: str
    user_id: str
    feature: str
    tenant: str
    input_text: str
    output_text: str
    convention: str  # genai-semconv | genai-semconv-legacy | openllmetry | openinference
    attributes: dict[str, str]


LLM_CALL_COLUMNS: tuple[str, ...] = (
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "SpanName", "ServiceName", "ServiceVersion",
    "Environment", "Provider", "Operation", "Model", "RequestModel", "ResponseModel", "InputTokens", "OutputTokens",
    "CachedInputTokens", "CacheCreationInputTokens", "ReasoningTokens", "CostUSD", "CostStatus",
    "Duration", "TimeToFirstToken", "IsStreaming", "FinishReason", "StatusCode", "StatusMessage",
    "ErrorType", "Temperature", "TopP", "MaxTokens", "ToolCalls", "ToolName", "ResponseId",
    "ServerAddress", "ConversationId", "SessionId", "UserId", "Feature", "Tenant", "InputText",
    "OutputText", "Convention", "Attributes",
)

assert len(SPAN_COLUMNS) == len(SpanRecord._fields)
assert len(LLM_CALL_COLUMNS) == len(LlmCall._fields)

CALL_FIELD_OF_COLUMN: dict[str, str] = dict(zip(LLM_CALL_COLUMNS, LlmCall._fields, strict=True))
"""`llm_calls` column name -> `LlmCall` field name (the one place the two are paired)."""


def call_from_columns(row: Mapping[str, Any]) -> LlmCall:
    """An `LlmCall` built by keyword from a row keyed by `llm_calls` column names (extra keys ignored).

    Raises:
        KeyError: a column is missing from `row`.
    """
    return LlmCall(**{field: row[column] for column, field in CALL_FIELD_OF_COLUMN.items()})
