"""Store down or slow: the receiver answers UNAVAILABLE with RetryInfo, the real OTLP exporter
retries, and the data arrives once the store is back. Nothing is acknowledged before commit.

A ClickHouse *server* cannot run on this machine, so the outage is injected in front of the real
embedded engine: `OutageClient` forwards to a real clickhouse-connect client and raises the
driver's own `OperationalError` while the store is "down" (as clickhouse-connect does when a
server refuses connections).
"""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from clickhouse_connect.driver.exceptions import OperationalError
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from llmrel.store import connect
from tests.otlp_builders import chat_span, request
from tests.receiver.conftest import export_raw


class OutageClient:
    """A real client whose inserts fail (or hang) while the store is down."""

    def __init__(self, client, down: threading.Event, hang_s: float = 0.0) -> None:
        self._client, self._down, self._hang_s = client, down, hang_s

    def _check(self) -> None:
        if self._down.is_set():
            if self._hang_s:
                time.sleep(self._hang_s)
            raise OperationalError("Error HTTPConnectionPool: connection refused (store down)")

    def insert(self, *args, **kwargs):
        self._check()
        return self._client.insert(*args, **kwargs)

    def raw_insert(self, *args, **kwargs):
        self._check()
        return self._client.raw_insert(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def recorded_spans(n: int):
    """Finished SDK spans with GenAI attributes, as an instrumented app produces them."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for i in range(n):
        with tracer.start_as_current_span(f"chat gpt-4o-mini {i}", kind=SpanKind.CLIENT) as span:
            span.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                 "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 10 + i,
                                 "gen_ai.usage.output_tokens": 5})
    return memory.get_finished_spans()


@pytest.fixture
def outage(settings):
    down = threading.Event()
    return down, (lambda: OutageClient(connect(settings), down))


def test_store_down_is_unavailable_with_retry_info_and_nothing_is_stored(make_receiver, outage, query):
    down, factory = outage
    receiver = make_receiver(client_factory=factory, retry_after_s=1)
    down.set()
    with pytest.raises(grpc.RpcError) as caught:
        export_raw(receiver.grpc_port, request([chat_span(1)]).SerializeToString())
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "google.rpc.retryinfo-bin" in dict(caught.value.trailing_metadata())
    assert query("SELECT count() FROM otel_traces") == [(0,)]
    down.clear()


def test_exporter_retries_until_the_store_is_back(make_receiver, outage, query):
    down, factory = outage
    receiver = make_receiver(client_factory=factory, retry_after_s=1)
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{receiver.grpc_port}", insecure=True, timeout=30)
    spans = recorded_spans(20)
    down.set()
    threading.Timer(2.5, down.clear).start()
    started = time.monotonic()
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert time.monotonic() - started >= 2.0  # it really waited for the store
    assert query("SELECT count() FROM otel_traces") == [(20,)]
    assert query("SELECT count(), sum(InputTokens) FROM llm_calls FINAL") == [(20, sum(10 + i for i in range(20)))]
    exporter.shutdown()


def test_slow_store_times_out_as_unavailable(make_receiver, settings):
    down = threading.Event()
    receiver = make_receiver(client_factory=lambda: OutageClient(connect(settings), down, hang_s=3),
                             insert_timeout_s=0.5)
    down.set()
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        export_raw(receiver.grpc_port, request([chat_span(1)]).SerializeToString())
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert time.monotonic() - started < 2.5
    down.clear()
