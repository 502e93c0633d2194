"""gRPC ingest cannot be stalled by calls that open and never send: the handler threads are few.

Each idle call below opens a real HTTP/2 stream with its headers and never sends the request
message, as a stalled or hostile client does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from tests.otlp_builders import chat_span, request
from tests.receiver.conftest import export_raw

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TOKEN = (("authorization", "Bearer s3cret"),)


class IdleCalls:
    """`count` calls that never send their message, over `connections` connections."""

    def __init__(self, port: int, count: int, metadata: tuple = (), connections: int | None = None) -> None:
        self._stop = threading.Event()
        # A local subchannel pool gives each channel its own connection (by default they share one).
        self.channels = [grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
                         for _ in range(connections or count)]
        for channel in self.channels:  # connected, with the server's settings known, before any call
            grpc.channel_ready_future(channel).result(timeout=10)
        self.futures = []
        for i in range(count):
            call = self.channels[i % len(self.channels)].stream_unary(METHOD, request_serializer=None,
                                                                      response_deserializer=None)
            self.futures.append(call.future(self._never(), metadata=metadata, timeout=60))

    def _never(self) -> Iterator[bytes]:
        self._stop.wait()
        yield from ()

    def codes(self, timeout_s: float) -> list[grpc.StatusCode]:
        codes = []
        for future in self.futures:
            try:
                future.result(timeout=timeout_s)
                codes.append(grpc.StatusCode.OK)
            except grpc.FutureTimeoutError:
                codes.append(None)
            except grpc.RpcError as exc:
                codes.append(exc.code())
        return codes

    def close(self) -> None:
        self._stop.set()
        for channel in self.channels:
            channel.close()


@pytest.fixture
def idle_calls():
    opened: list[IdleCalls] = []

    def make(*args, **kwargs) -> IdleCalls:
        opened.append(IdleCalls(*args, **kwargs))
        return opened[-1]

    yield make
    for calls in opened:
        calls.close()


def test_calls_without_a_token_are_refused_before_their_message(make_receiver, query, idle_calls):
    receiver = make_receiver(auth_token="s3cret", recv_timeout_s=60)
    idle = idle_calls(receiver.grpc_port, 24)  # more than the 16 handler threads
    assert idle.codes(timeout_s=5) == [grpc.StatusCode.UNAUTHENTICATED] * 24
    started = time.monotonic()
    export_raw(receiver.grpc_port, request([chat_span(1)]).SerializeToString(), metadata=TOKEN, timeout=5)
    assert time.monotonic() - started < 5
    assert query("SELECT count() FROM otel_traces") == [(1,)]


def test_a_message_that_does_not_arrive_in_time_is_cancelled(make_receiver, query, idle_calls):
    receiver = make_receiver(auth_token="s3cret", recv_timeout_s=1)
    idle = idle_calls(receiver.grpc_port, 20, metadata=TOKEN)  # every handler thread taken, more queued
    time.sleep(0.3)
    started = time.monotonic()
    export_raw(receiver.grpc_port, request([chat_span(1)]).SerializeToString(), metadata=TOKEN, timeout=10)
    assert time.monotonic() - started < 6
    assert idle.codes(timeout_s=10) == [grpc.StatusCode.CANCELLED] * 20
    assert receiver.metrics.requests.labels("grpc", "receive_timeout")._value.get() == 20
    assert query("SELECT count() FROM otel_traces") == [(1,)]


def test_one_connection_cannot_take_every_handler_thread(make_receiver, query, idle_calls):
    receiver = make_receiver(auth_token="s3cret", recv_timeout_s=60)
    idle_calls(receiver.grpc_port, 16, metadata=TOKEN, connections=1)
    time.sleep(0.5)
    export_raw(receiver.grpc_port, request([chat_span(1)]).SerializeToString(), metadata=TOKEN, timeout=5)
    assert query("SELECT count() FROM otel_traces") == [(1,)]
