"""OTLP/gRPC `TraceService/Export` on :4317.

The request is taken as raw bytes and parsed here, so a malformed body is answered with
INVALID_ARGUMENT and a message rather than grpcio's generic INTERNAL. Retryable failures carry
`google.rpc.RetryInfo` both as the status detail (read by Go clients and the Collector) and in
the `google.rpc.retryinfo-bin` trailer (read by the Python exporter).

The server is asynchronous (grpc.aio, on an event loop of its own thread): a call waiting for its
message or for its group commit holds no thread, so many small senders share one commit whatever
their number; preparation (decode, normalize) runs in a small thread pool, or on the loop for small
requests when there are no worker processes. No call may be held
by a sender that is not allowed in or does not send: the bearer token is checked by an interceptor
from the call's headers, before the message is read; the message must arrive within `recv_timeout_s`
or the call is cancelled; the calls of one connection and of all are bounded (beyond them gRPC
answers RESOURCE_EXHAUSTED, which exporters retry).
"""

from __future__ import annotations

import asyncio
import hmac
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

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
_INLINE_BELOW_BYTES = 16 * 1024  # a few spans: preparing them takes about a millisecond
_T = TypeVar("_T")


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses a call without `authorization: Bearer <token>` from its headers, before its message is read."""

    def __init__(self, token: str, on_refused: Callable[[], None]) -> None:
        self._token = token.encode()
        self._on_refused = on_refused
        # A stream handler runs without waiting for the request message, and never reads it.
        self._refuse = grpc.stream_unary_rpc_method_handler(self._abort)

    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
            handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        if self._authorized(handler_call_details.invocation_metadata or ()):
            return await continuation(handler_call_details)
        self._on_refused()
        return self._refuse

    def _authorized(self, metadata: object) -> bool:
        for key, value in metadata:  # type: ignore[attr-defined]
            if key == "authorization" and isinstance(value, str):
                scheme, _, token = value.partition(" ")
                return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._token)
        return False

    @staticmethod
    async def _abort(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")


class TraceServicer:
    """Maps `Ingestor` outcomes to OTLP/gRPC statuses."""

    def __init__(self, ingestor: Ingestor, metrics: ReceiverMetrics, *, retry_after_s: int,
                 recv_timeout_s: float, prepare_threads: int = 4, prepare_inline: bool = False) -> None:
        self._ingestor = ingestor
        self._metrics = metrics
        self._retry_after_s = retry_after_s
        self._recv_timeout_s = recv_timeout_s
        self._prepare = ThreadPoolExecutor(prepare_threads, thread_name_prefix="llmrel-prepare")
        self._prepare_inline = prepare_inline  # small bodies on the event loop: no thread hop per request

    async def export(self, requests: AsyncIterator[bytes],
                     context: grpc.aio.ServicerContext) -> ExportTraceServiceResponse:
        try:
            body = await asyncio.wait_for(anext(aiter(requests), None), self._recv_timeout_s)
        except TimeoutError:
            self.count("receive_timeout")
            await context.abort(grpc.StatusCode.CANCELLED, "the request message did not arrive in time")
        if body is None:
            self.count("invalid")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no request message")
        size = len(body)
        if not self._ingestor.reserve(size):
            self.count("overloaded")
            await self._abort_retryable(context, grpc.StatusCode.RESOURCE_EXHAUSTED, code_pb2.RESOURCE_EXHAUSTED,
                                        "receiver is over its in-flight memory bound; retry later")
        try:  # releases the reservation itself
            result = await self._ingestor.ingest_async(body, reserved=size, executor=self._prepare,
                                                       inline=self._prepare_inline and size < _INLINE_BELOW_BYTES)
        except InvalidRequest as exc:
            self.count("invalid")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except RequestTooLarge as exc:  # no RetryInfo: the same request would be refused again
            self.count("too_large")
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        if result.outcome is Outcome.FAILED:
            self.count("failed")
            await context.abort(grpc.StatusCode.INTERNAL, result.message)
        if result.outcome is Outcome.REJECTED:
            self.count("rejected")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, result.message)
        if result.outcome is Outcome.OVERLOADED:
            self.count("overloaded")
            await self._abort_retryable(context, grpc.StatusCode.RESOURCE_EXHAUSTED, code_pb2.RESOURCE_EXHAUSTED,
                                        result.message)
        if result.outcome is not Outcome.STORED:
            self.count(result.outcome.value)
            await self._abort_retryable(context, grpc.StatusCode.UNAVAILABLE, code_pb2.UNAVAILABLE, result.message)
        self.count("partial" if result.rejected else "ok")
        if result.rejected:
            return ExportTraceServiceResponse(partial_success=ExportTracePartialSuccess(
                rejected_spans=result.rejected, error_message=result.message))
        return ExportTraceServiceResponse()

    async def _abort_retryable(self, context: grpc.aio.ServicerContext, code: grpc.StatusCode, rpc_code: int,
                               message: str) -> None:
        retry = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=self._retry_after_s))
        status = status_pb2.Status(code=rpc_code, message=message)
        status.details.add().Pack(retry)
        await context.abort(code, message, trailing_metadata=(
            ("grpc-status-details-bin", status.SerializeToString()),
            ("google.rpc.retryinfo-bin", retry.SerializeToString()),
        ))

    def count(self, outcome: str) -> None:
        self._metrics.requests.labels("grpc", outcome).inc()

    def close(self) -> None:
        self._prepare.shutdown(wait=True)


class GrpcServer:
    """A grpc.aio server on an event loop of its own thread, driven from synchronous code."""

    def __init__(self, build: Callable[[], Awaitable[tuple[grpc.aio.Server, int]]]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="llmrel-grpc", daemon=True)
        self._thread.start()
        try:
            self._server, self.port = self._run(build())
        except BaseException:
            self._close_loop()
            raise

    def _run(self, coroutine: Awaitable[_T], timeout_s: float = 30) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)  # type: ignore[arg-type]

    def start(self) -> None:
        self._run(self._server.start())

    def stop(self, grace_s: float | None) -> None:
        """Stop taking calls, let those under way finish for up to `grace_s`, then stop the loop."""
        if self._loop.is_closed():
            return
        try:
            self._run(self._server.stop(grace_s), (grace_s or 0) + 5)
        finally:
            self._close_loop()

    def _close_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()


def build_grpc_server(servicer: TraceServicer, endpoint: str, *, max_recv_bytes: int, auth_token: str | None,
                      tls: tuple[bytes, bytes] | None = None, handshake_timeout_s: float = 30,
                      max_streams_per_connection: int = 100, max_concurrent_rpcs: int = 1024) -> GrpcServer:
    """Create (not start) the gRPC server, bound to `endpoint` (its `port` is the bound port).

    Args:
        tls: `(certificate chain, private key)` in PEM to serve TLS; None for plaintext.
    """

    async def build() -> tuple[grpc.aio.Server, int]:
        interceptors = [] if auth_token is None else [
            BearerTokenInterceptor(auth_token, lambda: servicer.count("unauthenticated"))]
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", max_recv_bytes),
            ("grpc.max_send_message_length", _SEND_LIMIT),
            ("grpc.max_concurrent_streams", max_streams_per_connection),
            ("grpc.server_handshake_timeout_ms", int(handshake_timeout_s * 1000)),
            ("grpc.so_reuseport", 0)]
        server = grpc.aio.server(interceptors=interceptors, options=options,
                                 maximum_concurrent_rpcs=max_concurrent_rpcs)  # beyond: RESOURCE_EXHAUSTED
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

    return GrpcServer(build)
