"""Memory is accounted by what a request becomes once decoded, not only by its bytes on the wire.

Tiny elements inflate most: an empty event is 2 bytes on the wire and over 100 once parsed and
decoded. Such a request is refused before its rows are built (413 / RESOURCE_EXHAUSTED without
RetryInfo: the same request would be refused again), and the rows a request holds until its
commit count in the in-flight bound.
"""

from __future__ import annotations

import threading
import time

import grpc
import httpx
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llmrel.receiver.decode import DECODED_BYTES_PER_ITEM
from llmrel.store import connect
from tests.otlp_builders import chat_span, request
from tests.receiver.conftest import export_raw
from tests.receiver.test_store_outage import OutageClient


def empty_events(count: int) -> bytes:
    span = chat_span(1)
    span.events.extend(Span.Event() for _ in range(count))
    return request([span]).SerializeToString()


def test_a_request_of_tiny_elements_is_refused_before_it_is_decoded(make_receiver, query):
    receiver = make_receiver(max_decoded_mib=64)
    count = (64 << 20) // DECODED_BYTES_PER_ITEM + 1
    body = empty_events(count)  # 0.7 MiB on the wire
    with pytest.raises(grpc.RpcError) as caught:
        export_raw(receiver.grpc_port, body)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "more than 64 MiB to decode" in caught.value.details()
    assert "google.rpc.retryinfo-bin" not in dict(caught.value.trailing_metadata())
    response = httpx.post(f"http://127.0.0.1:{receiver.http_port}/v1/traces", content=body,
                          headers={"Content-Type": "application/x-protobuf"}, timeout=30)
    assert response.status_code == 413
    assert "retry-after" not in response.headers
    export_raw(receiver.grpc_port, empty_events(1000))  # within the bound: stored
    assert query("SELECT count(), sum(length(Events.Name)) FROM otel_traces") == [(1, 1000)]


def test_rows_waiting_for_their_commit_count_in_the_inflight_bound(make_receiver, settings):
    slow = threading.Event()
    receiver = make_receiver(client_factory=lambda: OutageClient(connect(settings), slow, hang_s=1.5),
                             insert_timeout_s=5)
    body = request([chat_span(i, extra={"gen_ai.prompt.0.content": "x" * 5000}) for i in range(1, 200)])
    wire = body.ByteSize()
    slow.set()  # the commit hangs, then fails: the rows stay in memory meanwhile
    codes = []

    def send() -> None:
        try:
            export_raw(receiver.grpc_port, body.SerializeToString())
        except grpc.RpcError as exc:
            codes.append(exc.code())

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 5
    peak = 0.0
    while sender.is_alive() and time.monotonic() < deadline:
        peak = max(peak, receiver.metrics.inflight_bytes._value.get())
        time.sleep(0.01)
    sender.join()
    assert codes == [grpc.StatusCode.UNAVAILABLE]
    assert peak > 2 * wire  # the body, plus both tables' encoded rows
    assert receiver.metrics.inflight_bytes._value.get() == 0


def test_the_elements_of_array_values_count_too(make_receiver, query):
    receiver = make_receiver(max_decoded_mib=64)
    span = chat_span(1)
    span.attributes.append(KeyValue(key="ids", value=AnyValue(array_value=ArrayValue(
        values=[AnyValue(int_value=7)] * ((64 << 20) // DECODED_BYTES_PER_ITEM + 1)))))
    with pytest.raises(grpc.RpcError) as caught:
        export_raw(receiver.grpc_port, request([span]).SerializeToString())  # 1.4 MiB on the wire
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert query("SELECT count() FROM otel_traces") == [(0,)]
