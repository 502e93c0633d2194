"""The transport-independent ingest path: decode -> normalize -> price -> group commit.

Both the gRPC servicer and the HTTP app call `Ingestor.ingest()` and map its outcome to
their protocol's statuses; neither knows about ClickHouse.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import structlog
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmrel.model import LlmCall, SpanRecord
from llmrel.receiver.decode import DecodeResult, decode_request
from llmrel.receiver.metrics import ReceiverMetrics
from llmrel.receiver.writer import BatchWriter, WriterClosed

log = structlog.get_logger(__name__)

Normalizer = Callable[[SpanRecord], LlmCall | None]
Transform = Callable[[LlmCall], LlmCall]


class Outcome(enum.Enum):
    STORED = "stored"  # all valid spans committed (maybe with rejected ones: partial success)
    RETRY = "retry"  # store failed or timed out: sender should retry (UNAVAILABLE / 503)
    OVERLOADED = "overloaded"  # in-flight bytes bound reached (RESOURCE_EXHAUSTED / 429)
    SHUTTING_DOWN = "shutting_down"  # draining (UNAVAILABLE / 503)


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    accepted: int = 0
    rejected: int = 0
    message: str = ""


class InflightLimiter:
    """Bounds the request bytes held between receipt and acknowledgement."""

    def __init__(self, max_bytes: int, metrics: ReceiverMetrics) -> None:
        self._max = max_bytes
        self._used = 0
        self._lock = threading.Lock()
        self._metrics = metrics

    def try_acquire(self, size: int) -> bool:
        with self._lock:
            if self._used + size > self._max and self._used > 0:
                return False
            self._used += size
        self._metrics.inflight_bytes.inc(size)
        return True

    def release(self, size: int) -> None:
        with self._lock:
            self._used -= size
        self._metrics.inflight_bytes.dec(size)


class Ingestor:
    """Decode, normalize and price a request, then wait for its group commit."""

    def __init__(self, writer: BatchWriter, metrics: ReceiverMetrics, *, normalize: Normalizer,
                 transforms: tuple[Transform, ...] = (),
                 span_transform: Callable[[SpanRecord], SpanRecord] | None = None,
                 max_inflight_bytes: int, commit_timeout_s: float) -> None:
        self._writer = writer
        self._metrics = metrics
        self._normalize = normalize
        self._transforms = transforms
        self._span_transform = span_transform
        self._limiter = InflightLimiter(max_inflight_bytes, metrics)
        self._timeout = commit_timeout_s

    def reserve(self, size: int) -> bool:
        """Reserve in-flight bytes for a request; False means overloaded."""
        return self._limiter.try_acquire(size)

    def release(self, size: int) -> None:
        self._limiter.release(size)

    def submit(self, request: ExportTraceServiceRequest) -> tuple[DecodeResult, Future[None] | None]:
        """Decode and queue a request; returns the decode result and the commit future (None if empty)."""
        decoded = decode_request(request)
        self._metrics.spans_received.inc(len(decoded.spans) + decoded.rejected)
        if decoded.rejected:
            self._metrics.spans_rejected.inc(decoded.rejected)
        if not decoded.spans:
            return decoded, None
        spans = decoded.spans
        if self._span_transform is not None:
            spans = [self._span_transform(s) for s in spans]
        calls = self._calls(spans)
        return decoded, self._writer.submit(spans, calls)

    def _calls(self, spans: list[SpanRecord]) -> list[LlmCall]:
        calls = []
        for span in spans:
            try:
                call = self._normalize(span)
                if call is None:
                    continue
                for transform in self._transforms:
                    call = transform(call)
            except Exception:
                self._metrics.normalize_errors.inc()
                log.exception("normalize_failed", trace_id=span.trace_id, span_id=span.span_id)
                continue
            calls.append(call)
        return calls

    def ingest(self, request: ExportTraceServiceRequest) -> IngestResult:
        """Blocking ingest of a decoded request (the caller holds a reservation)."""
        try:
            decoded, future = self.submit(request)
        except WriterClosed:
            return IngestResult(Outcome.SHUTTING_DOWN, message="receiver is shutting down")
        if future is not None:
            try:
                future.result(timeout=self._timeout)
            except FutureTimeout:
                return IngestResult(Outcome.RETRY, message="storage did not commit in time")
            except WriterClosed:
                return IngestResult(Outcome.SHUTTING_DOWN, message="receiver is shutting down")
            except Exception as exc:
                return IngestResult(Outcome.RETRY, message=f"storage unavailable: {type(exc).__name__}")
        return IngestResult(Outcome.STORED, accepted=len(decoded.spans), rejected=decoded.rejected,
                            message=decoded.error_message() if decoded.rejected else "")
