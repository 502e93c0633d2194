"""A span that cannot be stored is rejected alone (partial success); the rest of its request is stored.

Covers spans whose processing raises (the content policy), values the Native encoder refuses when
the group commit encodes small exports together, and start times the store's date functions cannot
hold (after 2106-02-07, where `toDateTime` wraps around to 1970 and TTL would
delete the span at the next merge).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from llmrel import calls_ingest
from tests.faults import poison_redaction
from tests.otlp_builders import chat_span, request
from tests.receiver.conftest import export_raw

LAST_START_NS = (1 << 32) * 10**9 - 1  # 2106-02-07 06:28:15.999999999 UTC


def test_a_span_whose_redaction_raises_is_rejected_and_the_others_stored(make_receiver, query, monkeypatch):
    """Fault injection: redaction raises on one marked value, as a redaction bug would on some input."""
    poison_redaction(monkeypatch)
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


def test_a_value_refused_at_group_commit_rejects_that_span_alone(make_receiver, query, monkeypatch):
    """Fault injection: the content policy hands on one marked span with a negative duration, a value the
    Native encoder refuses. Small exports are encoded together at the group commit; the marked span's
    export is told it was rejected, and every other span, of it and of the exports committed with it, is stored."""
    real_transform = calls_ingest.content_transform

    def poisoning(policy: str):
        clean = real_transform(policy)

        def transform(span):
            span = clean(span) if clean is not None else span
            return span._replace(duration_ns=-1) if span.span_attributes.get("marker") == "POISON" else span
        return transform

    monkeypatch.setattr(calls_ingest, "content_transform", poisoning)
    receiver = make_receiver(batch_max_wait_ms=200)  # exports sent together share a commit
    bodies = [request([chat_span(10 * i + 1, extra={"marker": "POISON"} if i == 0 else None),
                       chat_span(10 * i + 2)]).SerializeToString() for i in range(6)]
    with ThreadPoolExecutor(len(bodies)) as pool:
        responses = list(pool.map(
            lambda body: ExportTraceServiceResponse.FromString(export_raw(receiver.grpc_port, body)), bodies))
    assert responses[0].partial_success.rejected_spans == 1
    assert "a value cannot be stored" in responses[0].partial_success.error_message
    assert [r.partial_success.rejected_spans for r in responses[1:]] == [0] * 5
    assert query("SELECT count() FROM otel_traces") == [(11,)]
    assert query("SELECT count() FROM otel_traces WHERE SpanAttributes['marker'] = 'POISON'") == [(0,)]
    assert query("SELECT count() FROM llm_calls") == [(11,)]
