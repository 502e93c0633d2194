"""Overload is back-pressure: while the oldest uncommitted export has waited longer than
`max_queue_delay_ms`, new exports are refused with RESOURCE_EXHAUSTED + RetryInfo (gRPC) or
429 + Retry-After (HTTP) before any work is spent on them; every acknowledged span is stored and
no refused span is. The bound is set to 1 ms so a real commit on the embedded store (tens of ms)
overloads the receiver without slowing anything artificially."""

from __future__ import annotations

import threading
import time

import grpc
import httpx
from google.rpc import error_details_pb2

from tests.otlp_builders import chat_span, request
from tests.receiver.conftest import export_raw

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SENDERS = 8
REQUESTS_PER_SENDER = 12
SPANS_PER_REQUEST = 5


def _body(sender: int, i: int) -> tuple[bytes, set[str]]:
    first = 1 + (sender * REQUESTS_PER_SENDER + i) * SPANS_PER_REQUEST
    spans = [chat_span(n) for n in range(first, first + SPANS_PER_REQUEST)]
    return request(spans).SerializeToString(), {s.span_id.hex() for s in spans}


def _flood(send) -> tuple[set[str], set[str], list]:
    """Run SENDERS concurrent senders; returns (acked span ids, refused span ids, refusals)."""
    acked: set[str] = set()
    refused: set[str] = set()
    refusals: list = []
    lock = threading.Lock()

    def sender(k: int) -> None:
        for i in range(REQUESTS_PER_SENDER):
            body, ids = _body(k, i)
            ok, refusal = send(k, body)
            with lock:
                (acked if ok else refused).update(ids)
                if refusal is not None:
                    refusals.append(refusal)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return acked, refused, refusals


def _stored(query) -> set[str]:
    return {row[0] for row in query("SELECT SpanId FROM otel_traces")}


def test_grpc_overload_is_refused_with_retry_info_and_nothing_acked_is_lost(make_receiver, query):
    receiver = make_receiver(max_queue_delay_ms=1, batch_max_wait_ms=20)

    # One connection per sender, as separate exporters have (one connection may run only a few calls at once).
    target, options = f"127.0.0.1:{receiver.grpc_port}", [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.insecure_channel(target, options=options) for _ in range(SENDERS)]
    exports = [ch.unary_unary(EXPORT, request_serializer=None, response_deserializer=None) for ch in channels]

    def send(k: int, body: bytes) -> tuple[bool, object]:
        try:
            exports[k](body, timeout=10)
            return True, None
        except grpc.RpcError as exc:
            return False, exc

    acked, refused, refusals = _flood(send)
    for channel in channels:
        channel.close()
    assert acked and refused, "a 1 ms bound must both admit (an idle store) and refuse (a commit under way)"
    for exc in refusals:
        assert exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, exc
        retry = error_details_pb2.RetryInfo.FromString(dict(exc.trailing_metadata())["google.rpc.retryinfo-bin"])
        assert retry.retry_delay.seconds >= 1
    assert _stored(query) == acked
    assert receiver.metrics.requests.labels("grpc", "overloaded")._value.get() == len(refusals)


def test_http_overload_is_429_with_retry_after_and_nothing_acked_is_lost(make_receiver, query):
    receiver = make_receiver(max_queue_delay_ms=1, batch_max_wait_ms=20)
    url = f"http://127.0.0.1:{receiver.http_port}/v1/traces"

    def send(k: int, body: bytes) -> tuple[bool, object]:
        response = httpx.post(url, content=body, headers={"content-type": "application/x-protobuf"}, timeout=10)
        if response.status_code == 200:
            return True, None
        return False, response

    acked, refused, refusals = _flood(send)
    assert acked and refused
    for response in refusals:
        assert response.status_code == 429, response.text
        assert int(response.headers["retry-after"]) >= 1
    assert _stored(query) == acked


def test_no_refusal_while_the_store_keeps_up(make_receiver, query):
    receiver = make_receiver(max_queue_delay_ms=1000)  # the default bound: far above one commit here
    for i in range(5):
        body, _ = _body(0, i)
        export_raw(receiver.grpc_port, body)
    assert query("SELECT count() FROM otel_traces") == [(5 * SPANS_PER_REQUEST,)]
    assert receiver.metrics.requests.labels("grpc", "overloaded")._value.get() == 0


def test_a_sender_that_gives_up_before_the_commit_still_frees_its_memory(make_receiver, query):
    """A call whose deadline passes while its export waits for the group commit (held open 1.5 s here)
    is cancelled by gRPC; the export's in-flight bytes are released once its rows are committed, not
    never. One small body (prepared on the event loop) and one of 40 KB (prepared in the pool)."""
    receiver = make_receiver(batch_max_wait_ms=1500)
    small = request([chat_span(1)]).SerializeToString()
    large = request([chat_span(2, extra={"gen_ai.prompt.0.content": "x" * 40_000})]).SerializeToString()
    codes = []
    for body in (small, large):
        try:
            export_raw(receiver.grpc_port, body, timeout=0.3)
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as exc:
            codes.append(exc.code())
    assert codes == [grpc.StatusCode.DEADLINE_EXCEEDED] * 2
    inflight = receiver.metrics.inflight_bytes
    deadline = time.monotonic() + 15
    while inflight._value.get() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert inflight._value.get() == 0
    assert query("SELECT count() FROM otel_traces") == [(2,)]  # committed, as an export cut off mid-commit may be
