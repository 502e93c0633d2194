"""OTLP/gRPC `TraceService/Export` on :4317.

The request is taken as raw bytes and parsed here, so a malformed body is answered with
INVALID_ARGUMENT and a message rather than grpcio's generic INTERNAL. Retryable failures carry
`google.rpc.RetryInfo` both as the status detail (read by Go clients and the Collector) and in
the `google.rpc.retryinfo-bin` trailer (read by the Python exporter).
"""

from __future__ import annotations

import hmac
from concurrent import futures

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from llmrel.receiver.decode import InvalidRequest
from llmrel.receiver.ingest import Ingestor, Outcome
from llmrel.receiver.metrics import ReceiverMetrics

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
_SEND_LIMIT = 4 * 1024 * 1024


class TraceServicer:
    """Maps `Ingestor` outcomes to OTLP/gRPC statuses."""

    def __init__(self, ingestor: Ingestor, metrics: ReceiverMetrics, *, auth_token: str | None,
                 retry_after_s: int) -> None:
        self._ingestor = ingestor
        self._metrics = metrics
        self._token = auth_token
        self._retry_after_s = retry_after_s

    def export(self, body: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        if self._token is not None and not self._authorized(context):
            self._count("unauthenticated")
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
        size = len(body)
        if not self._ingestor.reserve(size):
            self._count("overloaded")
            self._abort_retryable(context, grpc.StatusCode.RESOURCE_EXHAUSTED, code_pb2.RESOURCE_EXHAUSTED,
                                  "receiver is over its in-flight memory bound; retry later")
        try:
            result = self._ingestor.ingest(body, reserved=size)  # releases the reservation itself
        except InvalidRequest as exc:
            self._count("invalid")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if result.outcome is Outcome.FAILED:
            self._count("failed")
            context.abort(grpc.StatusCode.INTERNAL, result.message)
        if result.outcome is not Outcome.STORED:
            self._count(result.outcome.value)
            self._abort_retryable(context, grpc.StatusCode.UNAVAILABLE, code_pb2.UNAVAILABLE, result.message)
        self._count("partial" if result.rejected else "ok")
        if result.rejected:
            return ExportTraceServiceResponse(partial_success=ExportTracePartialSuccess(
                rejected_spans=result.rejected, error_message=result.message))
        return ExportTraceServiceResponse()

    def _authorized(self, context: grpc.ServicerContext) -> bool:
        for key, value in context.invocation_metadata():
            if key == "authorization" and isinstance(value, str):
                scheme, _, token = value.partition(" ")
                return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(),
                                                                          (self._token or "").encode())
        return False

    def _abort_retryable(self, context: grpc.ServicerContext, code: grpc.StatusCode, rpc_code: int,
                         message: str) -> None:
        retry = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=self._retry_after_s))
        status = status_pb2.Status(code=rpc_code, message=message)
        status.details.add().Pack(retry)
        context.set_trailing_metadata((
            ("grpc-status-details-bin", status.SerializeToString()),
            ("google.rpc.retryinfo-bin", retry.SerializeToString()),
        ))
        context.abort(code, message)

    def _count(self, outcome: str) -> None:
        self._metrics.requests.labels("grpc", outcome).inc()


def build_grpc_server(servicer: TraceServicer, endpoint: str, *, max_recv_bytes: int,
                      max_workers: int = 16, max_queued_rpcs: int = 256) -> tuple[grpc.Server, int]:
    """Create (not start) the gRPC server; returns it with the bound port."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="llmrel-grpc"),
        options=[("grpc.max_receive_message_length", max_recv_bytes),
                 ("grpc.max_send_message_length", _SEND_LIMIT),
                 ("grpc.so_reuseport", 0)],
        maximum_concurrent_rpcs=max_queued_rpcs,  # beyond this, RESOURCE_EXHAUSTED (exporters retry)
    )
    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Export": grpc.unary_unary_rpc_method_handler(
            servicer.export, request_deserializer=None,
            response_serializer=ExportTraceServiceResponse.SerializeToString),
    })
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(endpoint)
    if port == 0:
        raise OSError(f"cannot bind OTLP/gRPC endpoint {endpoint}")
    return server, port
