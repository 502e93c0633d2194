"""A tiny in-test OTLP/gRPC trace receiver: collects spans, or answers UNAVAILABLE, or hangs.

Real gRPC server (grpcio) and real OTLP protos; it stands in for a receiver whose failure modes
the tests choose, which a real `llmrel serve` cannot be told to produce on demand.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def attribute_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [attribute_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


@dataclass
class CollectedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    status_code: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    start_ns: int
    end_ns: int


@dataclass
class OtlpSink(trace_service_pb2_grpc.TraceServiceServicer):
    """Servicer whose `mode` is `ok`, `unavailable` or `hang`."""

    mode: str = "ok"
    spans: list[CollectedSpan] = field(default_factory=list)
    calls: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self.lock:
            self.calls += 1
        if self.mode == "unavailable":
            context.abort(grpc.StatusCode.UNAVAILABLE, "receiver unavailable")
        if self.mode == "hang":
            self.release.wait(60)
            context.abort(grpc.StatusCode.UNAVAILABLE, "receiver was hanging")
        collected = []
        for resource_spans in request.resource_spans:
            resource = {a.key: attribute_value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    collected.append(CollectedSpan(
                        span.name, span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(),
                        span.status.code, {a.key: attribute_value(a.value) for a in span.attributes},
                        resource, span.start_time_unix_nano, span.end_time_unix_nano))
        with self.lock:
            self.spans.extend(collected)
        return trace_service_pb2.ExportTraceServiceResponse()


@contextmanager
def run_sink(mode: str = "ok") -> Iterator[tuple[OtlpSink, int]]:
    """Serve an `OtlpSink` on a free loopback port; yields the sink and the port."""
    sink = OtlpSink(mode=mode)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield sink, port
    finally:
        sink.release.set()
        server.stop(grace=0)
