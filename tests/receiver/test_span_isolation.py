"""A span that cannot be stored is rejected alone (partial success); the rest of its request is stored.

Covers spans whose processing raises (the content policy) and start times the store's date
functions cannot hold (after 2106-02-07, where `toDateTime` wraps around to 1970 and TTL would
delete the span at the next merge).
"""

from __future__ import annotations

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from llmrel import content_policy as content
from tests.otlp_builders import chat_span, request
from tests.receiver.conftest import export_raw

LAST_START_NS = (1 << 32) * 10**9 - 1  # 2106-02-07 06:28:15.999999999 UTC


def test_a_span_whose_redaction_raises_is_rejected_and_the_others_stored(make_receiver, query, monkeypatch):
    """Fault injection: redaction raises on one marked value, as a redaction bug would on some input."""
    real_redact = content.redact

    def redact(text: str):
        if "POISON" in text:
            raise RecursionError("maximum recursion depth exceeded")
        return real_redact(text)

    monkeypatch.setattr(content, "redact", redact)
    receiver = make_receiver(content_policy="redacted")
    spans = [chat_span(1, extra={"gen_ai.prompt.0.content": "mail me at ann@example.com"}),
             chat_span(2, extra={"gen_ai.prompt.0.content": "POISON"}),
             chat_span(3)]
    response = ExportTraceServiceResponse.FromString(export_raw(receiver.grpc_port, request(spans).SerializeToString()))
    assert response.partial_success.rejected_spans == 1
    assert "content policy failed: RecursionError" in response.partial_success.error_message
    assert query("SELECT SpanId FROM otel_traces ORDER BY SpanId") == [(f"{2:016x}",), (f"{4:016x}",)]
    stored = query("SELECT SpanAttributes['gen_ai.prompt.0.content'] FROM otel_traces "
                   "WHERE SpanId = '0000000000000002'")
    assert "ann@example.com" not in stored[0][0]
    assert query("SELECT count() FROM llm_calls") == [(2,)]


def test_hostile_nesting_in_content_never_fails_the_request(make_receiver, query):
    receiver = make_receiver(content_policy="redacted")
    spans = [chat_span(1, extra={"gen_ai.input.messages": "[" * 5000}), chat_span(2), chat_span(3)]
    for port_kind in ("grpc", "http"):
        body = request(spans).SerializeToString()
        if port_kind == "grpc":
            response = ExportTraceServiceResponse.FromString(export_raw(receiver.grpc_port, body))
        else:
            answer = httpx.post(f"http://127.0.0.1:{receiver.http_port}/v1/traces", content=body,
                                headers={"Content-Type": "application/x-protobuf"}, timeout=30)
            assert answer.status_code == 200
            response = ExportTraceServiceResponse.FromString(answer.content)
        stored = {row[0] for row in query("SELECT DISTINCT SpanId FROM otel_traces")}
        assert {f"{3:016x}", f"{4:016x}"} <= stored
        assert len(stored) + response.partial_success.rejected_spans == 3


def test_start_times_after_2106_are_rejected_per_span(receiver, query):
    wrapping = [chat_span(2), chat_span(3), chat_span(4)]
    for span, start in zip(wrapping, [LAST_START_NS + 1, 5_000_000_000 * 10**9, (1 << 63) - 10], strict=True):
        span.start_time_unix_nano, span.end_time_unix_nano = start, start + 1
    last = chat_span(5)
    last.start_time_unix_nano, last.end_time_unix_nano = LAST_START_NS, LAST_START_NS + 1
    body = request([chat_span(1), *wrapping, last]).SerializeToString()
    response = ExportTraceServiceResponse.FromString(export_raw(receiver.grpc_port, body))
    assert response.partial_success.rejected_spans == 3
    assert "after 2106-02-07" in response.partial_success.error_message
    rows = query("SELECT toString(toDateTime(Timestamp, 'UTC')), toString(toDate(Timestamp)) FROM otel_traces "
                 "ORDER BY Timestamp")
    assert rows == [("2025-11-26 00:00:00", "2025-11-26"), ("2106-02-07 06:28:15", "2106-02-07")]
    assert query("SELECT toString(max(End)) FROM otel_traces_trace_id_ts") == [("2106-02-07 06:28:15",)]
