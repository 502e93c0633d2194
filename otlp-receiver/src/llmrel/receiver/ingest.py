"""The transport-independent ingest path: prepare (decode, normalize, price, encode) -> group commit.

Both the gRPC servicer and the HTTP app call `Ingestor.ingest()` and map its outcome (or its
`InvalidRequest`) to their protocol's statuses; neither knows about ClickHouse.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from llmrel.receiver.metrics import ReceiverMetrics
from llmrel.receiver.prepare import Prepared
from llmrel.receiver.writer import BatchWriter, WriterClosed

Prepare = Callable[[bytes, bool], Prepared]
_MAX_ERRORS_REPORTED = 5


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
    """Prepare a request's rows (maybe in worker processes), then wait for their group commit."""

    def __init__(self, writer: BatchWriter, metrics: ReceiverMetrics, *, prepare: Prepare,
                 max_inflight_bytes: int, commit_timeout_s: float) -> None:
        self._writer = writer
        self._metrics = metrics
        self._prepare = prepare
        self._limiter = InflightLimiter(max_inflight_bytes, metrics)
        self._timeout = commit_timeout_s

    def reserve(self, size: int) -> bool:
        """Reserve in-flight bytes for a request; False means overloaded."""
        return self._limiter.try_acquire(size)

    def release(self, size: int) -> None:
        self._limiter.release(size)

    def ingest(self, body: bytes, *, is_json: bool = False) -> IngestResult:
        """Store one request body and wait for the commit (the caller holds a reservation).

        Raises:
            InvalidRequest: the body is not a valid OTLP trace request.
        """
        try:
            rows = self._prepare(body, is_json)
        except BrokenProcessPool:
            return IngestResult(Outcome.RETRY, message="receiver workers restarted; retry")
        self._metrics.spans_received.inc(rows.span_count + rows.rejected)
        if rows.rejected:
            self._metrics.spans_rejected.inc(rows.rejected)
        if rows.normalize_errors:
            self._metrics.normalize_errors.inc(rows.normalize_errors)
        if rows.span_count:
            try:
                self._writer.submit(rows).result(timeout=self._timeout)
            except FutureTimeout:
                return IngestResult(Outcome.RETRY, message="storage did not commit in time")
            except WriterClosed:
                return IngestResult(Outcome.SHUTTING_DOWN, message="receiver is shutting down")
            except Exception as exc:
                return IngestResult(Outcome.RETRY, message=f"storage unavailable: {type(exc).__name__}")
        message = ""
        if rows.rejected:
            shown = "; ".join(rows.errors[:_MAX_ERRORS_REPORTED])
            more = len(rows.errors) - _MAX_ERRORS_REPORTED
            message = f"{shown}; and {more} more" if more > 0 else shown
        return IngestResult(Outcome.STORED, accepted=rows.span_count, rejected=rows.rejected, message=message)
