"""OTLP/HTTP `POST /v1/traces` on :4318 (protobuf and JSON, gzip), plus health and metrics.

Statuses follow the OTLP spec: 400 with a `google.rpc.Status` body for bad data, 413 over the
size limit, 415 for other content types, 401 without a valid token, 408 for a body that does not
arrive within `recv_timeout_s`, 429 (overload) and 503 (store unavailable, shutting down) with
`Retry-After` so exporters retry.

In-flight memory is reserved as the body arrives (all of it at once when `Content-Length` says
how much), and as gzip inflates it, so a slow upload holds only what it has sent.
"""

from __future__ import annotations

import asyncio
import hmac
import zlib
from collections.abc import Callable

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from llmrel.receiver.decode import InvalidRequest, RequestTooLarge
from llmrel.receiver.ingest import Ingestor, Outcome
from llmrel.receiver.metrics import ReceiverMetrics

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_INFLATE_STEP = 1 << 20


class _TooLarge(Exception):
    pass


class _Overloaded(Exception):
    pass


class _Reservation:
    """The in-flight bytes one request holds, grown as its body arrives."""

    def __init__(self, ingestor: Ingestor) -> None:
        self._ingestor = ingestor
        self.bytes = 0

    def cover(self, size: int) -> None:
        """Hold at least `size` bytes in all.

        Raises:
            _Overloaded: the receiver's in-flight bound is reached.
        """
        if size > self.bytes:
            if not self._ingestor.reserve(size - self.bytes):
                raise _Overloaded
            self.bytes = size

    def release(self) -> None:
        self._ingestor.release(self.bytes)
        self.bytes = 0


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _encode(message: Message, media_type: str) -> bytes:
    if media_type == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


def _declared_length(request: Request) -> int | None:
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isdigit() else None


async def _read_body(request: Request, limit: int, reservation: _Reservation) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        reservation.cover(size)  # a no-op while the declared Content-Length, reserved up front, covers it
        chunks.append(chunk)
    return b"".join(chunks)


def _gunzip(body: bytes, limit: int, reservation: _Reservation) -> bytes:
    """Inflate every gzip member (senders may concatenate several), at most `limit` bytes in all,
    reserving the inflated bytes before they are produced."""
    out, size, rest = [], 0, body
    while rest:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        while True:
            step = min(_INFLATE_STEP, limit + 1 - size)
            reservation.cover(len(body) + size + step)
            try:
                piece = inflater.decompress(rest, step)
            except zlib.error as exc:
                raise InvalidRequest(f"body is not valid gzip: {exc}") from None
            out.append(piece)
            size += len(piece)
            if size > limit:
                raise _TooLarge
            rest = inflater.unconsumed_tail
            if inflater.eof or (not rest and len(piece) < step):  # a full piece may leave output pending
                break
        if not inflater.eof:
            raise InvalidRequest("body is not valid gzip: truncated stream")
        rest = inflater.unused_data
    return b"".join(out)


def build_otlp_router(ingestor: Ingestor, metrics: ReceiverMetrics, *, auth: Callable[[Request], bool],
                      max_body_bytes: int, retry_after_s: int, recv_timeout_s: float = 30.0) -> APIRouter:
    """The `/v1/traces` route bound to one ingest path."""
    router = APIRouter()

    def reply(status: int, media_type: str, message: Message, outcome: str, retry: bool = False,
              close: bool = False) -> Response:
        metrics.requests.labels("http", outcome).inc()
        headers = {"Retry-After": str(retry_after_s)} if retry else {}
        if close:  # the rest of the body was not read: the connection cannot carry another request
            headers["Connection"] = "close"
        media = media_type if media_type in (PROTOBUF, JSON) else PROTOBUF
        return Response(_encode(message, media), status_code=status, media_type=media, headers=headers)

    def error(status: int, media_type: str, code: int, text: str, outcome: str, retry: bool = False,
              close: bool = False) -> Response:
        return reply(status, media_type, status_pb2.Status(code=code, message=text), outcome, retry, close)

    @router.post("/v1/traces")
    async def export_traces(request: Request) -> Response:
        media_type = _media_type(request)
        if not auth(request):
            return error(401, media_type, code_pb2.UNAUTHENTICATED, "missing or invalid bearer token",
                         "unauthenticated")
        if media_type not in (PROTOBUF, JSON):
            return error(415, media_type, code_pb2.INVALID_ARGUMENT,
                         f"unsupported content type {media_type!r}; use {PROTOBUF} or {JSON}", "invalid")
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", ""):
            return error(415, media_type, code_pb2.INVALID_ARGUMENT,
                         f"unsupported content encoding {encoding!r}; use gzip or none", "invalid")
        too_large = f"request body exceeds the {max_body_bytes} byte limit"
        overloaded = "receiver is over its in-flight memory bound; retry later"
        declared = _declared_length(request)
        if declared is not None and declared > max_body_bytes:
            return error(413, media_type, code_pb2.RESOURCE_EXHAUSTED, too_large, "too_large", close=True)
        reservation = _Reservation(ingestor)
        handed_over = False
        try:
            reservation.cover(declared or 0)
            async with asyncio.timeout(recv_timeout_s):
                body = await _read_body(request, max_body_bytes, reservation)
            if encoding == "gzip":
                body = await run_in_threadpool(_gunzip, body, max_body_bytes, reservation)
            handed_over = True  # from here the ingestor releases the reservation
            result = await ingestor.ingest_async(body, is_json=media_type == JSON, reserved=reservation.bytes)
        except _Overloaded:
            return error(429, media_type, code_pb2.RESOURCE_EXHAUSTED, overloaded, "overloaded", retry=True,
                         close=True)
        except TimeoutError:
            return error(408, media_type, code_pb2.DEADLINE_EXCEEDED,
                         f"the request body did not arrive within {recv_timeout_s:g} s", "receive_timeout",
                         close=True)
        except _TooLarge:
            return error(413, media_type, code_pb2.RESOURCE_EXHAUSTED, too_large, "too_large", close=True)
        except RequestTooLarge as exc:
            return error(413, media_type, code_pb2.RESOURCE_EXHAUSTED, str(exc), "too_large")
        except InvalidRequest as exc:
            return error(400, media_type, code_pb2.INVALID_ARGUMENT, str(exc), "invalid")
        finally:
            if not handed_over:
                reservation.release()
        if result.outcome is Outcome.FAILED:
            return error(500, media_type, code_pb2.INTERNAL, result.message, "failed")
        if result.outcome is Outcome.REJECTED:
            return error(400, media_type, code_pb2.INVALID_ARGUMENT, result.message, "rejected")
        if result.outcome is Outcome.OVERLOADED:
            return error(429, media_type, code_pb2.RESOURCE_EXHAUSTED, result.message, "overloaded", retry=True)
        if result.outcome is not Outcome.STORED:
            return error(503, media_type, code_pb2.UNAVAILABLE, result.message, result.outcome.value, retry=True)
        response = ExportTraceServiceResponse()
        if result.rejected:
            response.partial_success.CopyFrom(ExportTracePartialSuccess(
                rejected_spans=result.rejected, error_message=result.message))
        return reply(200, media_type, response, "partial" if result.rejected else "ok")

    return router


def bearer_auth(token: str | None) -> Callable[[Request], bool]:
    """A request check accepting `Authorization: Bearer <token>` (everything when token is None)."""

    def check(request: Request) -> bool:
        if token is None:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())

    return check


def build_http_app(routers: list[APIRouter], metrics: ReceiverMetrics,
                   not_ready: Callable[[], str | None]) -> FastAPI:
    """The FastAPI app served on the HTTP endpoint; `not_ready()` says why writes cannot be taken now."""
    app = FastAPI(title="llmrel", docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None)
    for router in routers:
        app.include_router(router)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(response: Response) -> dict[str, str]:
        if (problem := not_ready()) is not None:
            response.status_code = 503
            return {"status": "not ready", "reason": problem}
        return {"status": "ready"}

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
