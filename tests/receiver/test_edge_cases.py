"""Edge cases found in review: every one answered with the right status, nothing stored twice or leaked."""

from __future__ import annotations

import gzip
import json
import threading
import time

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llmrel.store import connect
from tests.otlp_builders import chat_span, key_values, request
from tests.receiver.conftest import export_raw
from tests.receiver.test_store_outage import OutageClient

PB = {"Content-Type": "application/x-protobuf"}


def post(receiver, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{receiver.http_port}/v1/traces", content=body, headers=headers, timeout=30)


def test_an_export_answered_retry_is_never_stored_as_well(make_receiver, settings, query):
    slow = threading.Event()
    receiver = make_receiver(client_factory=lambda: OutageClient(connect(settings), slow, hang_s=2.0),
                             insert_timeout_s=0.4, batch_max_wait_ms=0)
    slow.set()  # the first commit hangs 2 s, then fails: the store is down

    def export_first() -> None:
        with pytest.raises(grpc.RpcError):
            export_raw(receiver.grpc_port, request([chat_span(1)]).SerializeToString())

    first = threading.Thread(target=export_first)
    first.start()
    time.sleep(0.1)
    slow.clear()  # the store is back, but the writer is still stuck in the first commit
    with pytest.raises(grpc.RpcError) as caught:  # queued behind it: cancelled at the deadline
        export_raw(receiver.grpc_port, request([chat_span(2)]).SerializeToString())
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    first.join()
    deadline = time.monotonic() + 10  # memory is held until the stuck commit ends, not until the reply
    while receiver.metrics.inflight_bytes._value.get() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert receiver.metrics.inflight_bytes._value.get() == 0
    time.sleep(0.2)  # the writer is free again: the cancelled export must not be committed now
    assert query("SELECT count() FROM otel_traces") == [(0,)]


def test_content_policy_off_also_strips_content_events(make_receiver, query):
    receiver = make_receiver(content_policy="off")
    span = chat_span(1, extra={"gen_ai.input.messages": '[{"role":"user","content":"secret"}]'})
    span.events.add(time_unix_nano=span.start_time_unix_nano + 1, name="gen_ai.client.inference.operation.details",
                    attributes=key_values({"gen_ai.input.messages": "secret prompt", "gen_ai.usage.input_tokens": 3}))
    span.events.add(time_unix_nano=span.start_time_unix_nano + 2, name="gen_ai.user.message",
                    attributes=key_values({"content": "secret too", "gen_ai.system": "openai"}))
    export_raw(receiver.grpc_port, request([span]).SerializeToString())
    rows = query("SELECT SpanAttributes, Events.Attributes FROM otel_traces")
    attrs, events = rows[0]
    assert "gen_ai.input.messages" not in attrs
    assert events == [{"gen_ai.usage.input_tokens": "3"}, {"gen_ai.system": "openai"}]


def test_timestamps_beyond_the_column_range_are_rejected_per_span(receiver, query):
    late = chat_span(2)
    late.end_time_unix_nano = (1 << 64) - 2
    response = ExportTraceServiceResponse.FromString(
        export_raw(receiver.grpc_port, request([chat_span(1), late]).SerializeToString()))
    assert response.partial_success.rejected_spans == 1
    assert "beyond year 2262" in response.partial_success.error_message
    assert query("SELECT count() FROM otel_traces") == [(1,)]


def test_ids_and_enums_are_mapped_like_the_exporter(receiver, query):
    root = chat_span(1)
    root.parent_span_id = bytes(8)
    root.kind = -1
    root.status.code = -1
    export_raw(receiver.grpc_port, request([root]).SerializeToString())
    assert query("SELECT ParentSpanId, SpanKind, StatusCode FROM otel_traces") == [("", "Unspecified", "Unset")]
    assert Span.SPAN_KIND_CLIENT == 3


def test_deeply_nested_json_is_400(receiver):
    body = ('{"resourceSpans":' + "[" * 100_000 + "]" * 100_000 + "}").encode()
    response = post(receiver, body, {"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "not valid" in response.json()["message"]


def test_non_ascii_bearer_token_is_401(make_receiver):
    receiver = make_receiver(auth_token="s3cret")
    response = httpx.post(f"http://127.0.0.1:{receiver.http_port}/v1/traces",
                          content=request([chat_span(1)]).SerializeToString(),
                          headers=[(b"content-type", b"application/x-protobuf"), (b"authorization", b"Bearer \xff")])
    assert response.status_code == 401


def test_every_member_of_a_multi_member_gzip_body_is_read(receiver, query):
    first = request([chat_span(1)]).SerializeToString()
    second = request([chat_span(2)]).SerializeToString()
    body = gzip.compress(first) + gzip.compress(second)  # protobuf messages concatenate into one
    assert post(receiver, body, {**PB, "Content-Encoding": "gzip"}).status_code == 200
    assert query("SELECT count() FROM otel_traces") == [(2,)]


def test_http_reserves_memory_before_reading_the_body(make_receiver):
    receiver = make_receiver(max_recv_mib=1, max_inflight_mib=1)
    held = 1 << 20
    assert receiver._ingestor.reserve(held)
    try:
        body = json.dumps({"resourceSpans": []}).encode()
        response = post(receiver, body, {"Content-Type": "application/json"})
        assert response.status_code == 429
        assert response.headers["retry-after"] == str(receiver.settings.retry_after_s)
    finally:
        receiver._ingestor.release(held)
    assert post(receiver, body, {"Content-Type": "application/json"}).status_code == 200
