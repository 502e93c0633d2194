"""A running in-process receiver on the test's embedded database."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest

from llmrel.cli.compose import build_receiver
from llmrel.config import Settings
from llmrel.receiver.server import Receiver
from llmrel.store import connect


@pytest.fixture
def make_receiver(settings: Settings) -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def make(client_factory: Callable[[], object] | None = None, **overrides: object) -> Receiver:
        receiver = build_receiver(type(settings).model_validate({**settings.model_dump(), **overrides}),
                            client_factory=client_factory)
        started.append(receiver.start())
        return receiver

    yield make
    for receiver in started:
        receiver.stop(grace_s=2)


@pytest.fixture
def receiver(make_receiver: Callable[..., Receiver]) -> Receiver:
    return make_receiver()


@pytest.fixture
def query(settings: Settings) -> Iterator[Callable[[str], list[tuple]]]:
    client = connect(settings)

    def run(sql: str) -> list[tuple]:
        return client.query(sql).result_rows

    yield run
    client.close()


def export_raw(port: int, body: bytes, metadata: tuple = (), timeout: float = 10) -> bytes:
    """Call TraceService/Export with raw request bytes over a real gRPC channel."""
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 256 << 20)]) as ch:
        call = ch.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                              request_serializer=None, response_deserializer=None)
        return call(body, metadata=metadata, timeout=timeout)
