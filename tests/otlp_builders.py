"""Builders for OTLP trace requests used across tests (protobuf messages, no I/O)."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

T0 = 1_764_115_200_123_456_789  # 2025-11-26T00:00:00.123456789Z


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    return AnyValue(string_value=str(value))


def key_values(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def chat_span(n: int = 1, *, model: str = "gpt-4o-mini", input_tokens: Any = 100, output_tokens: Any = 20,
              duration_ns: int = 250_000_000, error: str | None = None, extra: dict[str, Any] | None = None,
              trace: int | None = None, t0: int = T0) -> Span:
    """A GenAI-semconv chat span with distinct, deterministic ids, starting `n` ms after `t0`."""
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": model,
        "gen_ai.response.model": model, "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens, "gen_ai.response.finish_reasons": ["stop"],
    }
    if error:
        attrs["error.type"] = error
    attrs.update(extra or {})
    start = t0 + n * 1_000_000
    return Span(
        trace_id=(trace or n).to_bytes(16, "big"), span_id=(n + 1).to_bytes(8, "big"), name=f"chat {model}",
        kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start, end_time_unix_nano=start + duration_ns,
        attributes=key_values(attrs),
        status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_UNSET, message=error or ""),
    )


def plain_span(n: int, name: str = "GET /health") -> Span:
    start = T0 + n * 1_000_000
    return Span(trace_id=n.to_bytes(16, "big"), span_id=(n + 1).to_bytes(8, "big"), name=name,
                kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=start, end_time_unix_nano=start + 1_000,
                attributes=key_values({"http.route": "/health"}))


def request(spans: list[Span], service: str = "support-bot", **resource: Any) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=key_values({"service.name": service, **resource})),
        scope_spans=[ScopeSpans(scope=InstrumentationScope(name="test.scope", version="1.0"), spans=spans)],
    )])
