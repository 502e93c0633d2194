"""OTLP/gRPC `TraceService/Export` on :4317.

The request is taken as raw bytes and parsed here, so a malformed body is answered with
INVALID_ARGUMENT and a message rather than grpcio's generic INTERNAL. Retryable failures carry
`google.rpc.RetryInfo` both as the status detail (read by Go clients and the Collector) and in
the `google.rpc.retryinfo-bin` trailer (read by the Python exporter).

Handler threads are bounded (grpcio's synchronous server; each waits for its export's commit, so
there are enough of them for many small senders to share one group commit), and none may be held
by a sender that is not allowed in or does not send: the bearer token is checked by an interceptor from the call's
headers, before the message is read (a refused call never waits for its body); the message must
arrive within `recv_timeout_s` or the call is cancelled; and one connection may run only half
the handler threads' worth of calls at once.
"""

from __future__ import annotations

import hmac
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from llmrel.receiver.decode import InvalidRequest, RequestTooLarge
from llmrel.receiver.ingest import Ingestor, Outcome
from llmrel.receiver.metrics import ReceiverMetrics

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
_SEND_LIMIT = 4 * 1024 * 1024
_DEADLINE_TICK_S = 0.25


class ReceiveDeadlines:
    """Cancels calls whose request message has not arrived within `timeout_s` (checked every 250 ms)."""

    def __init__(self, timeout_s: float, on_timeout: Callable[[], None]) -> None:
        self._timeout_s = timeout_s
        self._on_timeout = on_timeout
        self._waiting: dict[int, tuple[float, grpc.ServicerContext]] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llmrel-grpc-deadlines", daemon=True)
        self._thread.start()

    def receive(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes | None:
        """The call's one request message; None if the client sent none.

        Raises:
            grpc.RpcError: the call was cancelled (by the client, or here at the deadline).
        """
        key = next(self._ids)
        with self._lock:
            self._waiting[key] = (time.monotonic() + self._timeout_s, context)
        try:
            return next(requests, None)
        finally:
            with self._lock:
                self._waiting.pop(key, None)

    def _run(self) -> None:
        while not self._stop.wait(_DEADLINE_TICK_S):
            now = time.monotonic()
            with self._lock:
                expired = [k for k, (deadline, _) in self._waiting.items() if deadline <= now]
                contexts = [self._waiting.pop(k)[1] for k in expired]
            for context in contexts:
                self._on_timeout()
                context.cancel()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Refuses a call without `authorization: Bearer <token>` from its headers, before its message is read."""

    def __init__(self, token: str, on_refused: Callable[[], None]) -> None:
        self._token = token.encode()
        self._on_refused = on_refused
        # A stream handler runs without waiting for the request message, and never reads it.
        self._refuse = grpc.stream_unary_rpc_method_handler(self._abort)

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
                          handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        if self._authorized(handler_call_details.invocation_metadata or ()):
            return continuation(handler_call_details)
        self._on_refused()
        return self._refuse

    def _authorized(self, metadata: object) -> bool:
        for key, value in metadata:  # type: ignore[attr-defined]
            if key == "authorization" and isinstance(value, str):
                scheme, _, token = value.partition(" ")
                return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._token)
        return False

    @staticmethod
    def _abort(requests: Iterator[bytes], context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")


class TraceServicer:
    """Maps `Ingestor` outcomes to OTLP/gRPC statuses."""

    def __init__(self, ingestor: Ingestor, metrics: ReceiverMetrics, *, retry_after_s: int,
                 recv_timeout_s: float) -> None:
        self._ingestor = ingestor
        self._metrics = metrics
        self._retry_after_s = retry_after_s
        self._deadlines = ReceiveDeadlines(recv_timeout_s, lambda: self.count("receive_timeout"))

    def export(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        body = self._deadlines.receive(requests, context)
        if body is None:
            self.count("invalid")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no request message")
        size = len(body)
        if not self._ingestor.reserve(size):
            self.count("overloaded")
            self._abort_retryable(context, grpc.StatusCode.RESOURCE_EXHAUSTED, code_pb2.RESOURCE_EXHAUSTED,
                                  "receiver is over its in-flight memory bound; retry later")
        try:
            result = self._ingestor.ingest(body, reserved=size)  # releases the reservation itself
        except InvalidRequest as exc:
            self.count("invalid")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except RequestTooLarge as exc:  # no RetryInfo: the same request would be refused again
            self.count("too_large")
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        if result.outcome is Outcome.FAILED:
            self.count("failed")
            context.abort(grpc.StatusCode.INTERNAL, result.message)
        if result.outcome is Outcome.REJECTED:
            self.count("rejected")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, result.message)
        if result.outcome is Outcome.OVERLOADED:
            self.count("overloaded")
            self._abort_retryable(context, grpc.StatusCode.RESOURCE_EXHAUSTED, code_pb2.RESOURCE_EXHAUSTED,
                                  result.message)
        if result.outcome is not Outcome.STORED:
            self.count(result.outcome.value)
            self._abort_retryable(context, grpc.StatusCode.UNAVAILABLE, code_pb2.UNAVAILABLE, result.message)
        self.count("partial" if result.rejected else "ok")
        if result.rejected:
            return ExportTraceServiceResponse(partial_success=ExportTracePartialSuccess(
                rejected_spans=result.rejected, error_message=result.message))
        return ExportTraceServiceResponse()

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

    def count(self, outcome: str) -> None:
        self._metrics.requests.labels("grpc", outcome).inc()

    def close(self) -> None:
        self._deadlines.close()


def build_grpc_server(servicer: TraceServicer, endpoint: str, *, max_recv_bytes: int, auth_token: str | None,
                      tls: tuple[bytes, bytes] | None = None, handshake_timeout_s: float = 30,
                      max_workers: int = 128, max_queued_rpcs: int = 512) -> tuple[grpc.Server, int]:
    """Create (not start) the gRPC server; returns it with the bound port.

    Args:
        tls: `(certificate chain, private key)` in PEM to serve TLS; None for plaintext.
    """
    interceptors = [] if auth_token is None else [
        BearerTokenInterceptor(auth_token, lambda: servicer.count("unauthenticated"))]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="llmrel-grpc"),
        interceptors=interceptors,
        options=[("grpc.max_receive_message_length", max_recv_bytes),
                 ("grpc.max_send_message_length", _SEND_LIMIT),
                 ("grpc.max_concurrent_streams", max(1, max_workers // 2)),  # per connection
                 ("grpc.server_handshake_timeout_ms", int(handshake_timeout_s * 1000)),
                 ("grpc.so_reuseport", 0)],
        maximum_concurrent_rpcs=max_queued_rpcs,  # beyond this, RESOURCE_EXHAUSTED (exporters retry)
    )
    handler = grpc.method_handlers_generic_handler(SERVICE, {
        # A stream handler gets the call before its message, so the receive deadline can apply.
        "Export": grpc.stream_unary_rpc_method_handler(
            servicer.export, request_deserializer=None,
            response_serializer=ExportTraceServiceResponse.SerializeToString),
    })
    server.add_generic_rpc_handlers((handler,))
    if tls is None:
        port = server.add_insecure_port(endpoint)
    else:
        chain, key = tls
        port = server.add_secure_port(endpoint, grpc.ssl_server_credentials([(key, chain)]))
    if port == 0:
        raise OSError(f"cannot bind OTLP/gRPC endpoint {endpoint}")
    return server, port
