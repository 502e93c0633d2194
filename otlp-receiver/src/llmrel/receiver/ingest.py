"""The transport-independent ingest path: prepare (decode, normalize, price, encode) -> group commit.

Both the gRPC servicer and the HTTP app call `Ingestor.ingest()` and map its outcome (or its
`InvalidRequest` / `RequestTooLarge`) to their protocol's statuses; neither knows about ClickHouse.

Memory: a request's in-flight reservation starts at its body size and grows, once prepared, by what
its encoded rows hold until committed (`Prepared.held_bytes`); each decode is bounded by
`check_decoded_size` (and, in worker processes, by the OS).

Admission: while the oldest request under way (in preparation, queued or being committed) has
waited longer than `max_queue_delay_s` on a healthy store, new requests are refused as OVERLOADED
before any work is spent on them, so senders back off instead of waiting towards their deadlines.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import structlog

from llmrel.receiver.decode import InvalidRequest, RequestTooLarge
from llmrel.receiver.metrics import ReceiverMetrics
from llmrel.receiver.prepare import Prepared
from llmrel.receiver.storehealth import StoreUnavailable
from llmrel.receiver.writer import BatchWriter, RejectedByStore, WriterClosed

Prepare = Callable[[bytes, bool], Prepared]
log = structlog.get_logger(__name__)


class Outcome(enum.Enum):
    STORED = "stored"  # all valid spans committed (maybe with rejected ones: partial success)
    RETRY = "retry"  # store failed or timed out: sender should retry (UNAVAILABLE / 503)
    OVERLOADED = "overloaded"  # in-flight bytes or queue-delay bound reached (RESOURCE_EXHAUSTED / 429)
    SHUTTING_DOWN = "shutting_down"  # draining (UNAVAILABLE / 503)
    REJECTED = "rejected"  # the store refuses these rows for what they are (INVALID_ARGUMENT / 400)
    FAILED = "failed"  # an unexpected error on our side, logged (INTERNAL / 500; retrying would not help)


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

    def acquire(self, size: int) -> None:
        """Account memory already in use (it may exceed the bound; new requests then wait)."""
        with self._lock:
            self._used += size
        self._metrics.inflight_bytes.inc(size)

    def release(self, size: int) -> None:
        with self._lock:
            self._used -= size
        self._metrics.inflight_bytes.dec(size)


class Ingestor:
    """Prepare a request's rows (maybe in worker processes), then wait for their group commit."""

    def __init__(self, writer: BatchWriter, metrics: ReceiverMetrics, *, prepare: Prepare,
                 max_inflight_bytes: int, commit_timeout_s: float, max_queue_delay_s: float | None = None) -> None:
        self._writer = writer
        self._max_queue_delay_s = max_queue_delay_s
        self._under_way: dict[int, float] = {}  # start times of requests being ingested, oldest first
        self._under_way_lock = threading.Lock()
        self._ids = itertools.count()
        self._metrics = metrics
        self._prepare = prepare
        self._limiter = InflightLimiter(max_inflight_bytes, metrics)
        self._timeout = commit_timeout_s

    def reserve(self, size: int) -> bool:
        """Reserve in-flight bytes for a request; False means overloaded."""
        return self._limiter.try_acquire(size)

    def release(self, size: int) -> None:
        self._limiter.release(size)

    def ingest(self, body: bytes, *, is_json: bool = False, reserved: int = 0) -> IngestResult:
        """Store one request body and wait for the commit (blocking the calling thread).

        Takes over `reserved` in-flight bytes and releases them once the request's rows are
        committed or abandoned, not when the caller replies, so memory stays bounded even when
        a commit outlives its request.

        Raises:
            InvalidRequest: the body is not a valid OTLP trace request.
            RequestTooLarge: decoding the body would take more memory than one request may.
        """
        started = self.start(body, is_json=is_json, reserved=reserved)
        if isinstance(started, IngestResult):
            return started
        try:
            return started.outcome(self._await_commit(started.future))
        finally:
            self._finished(started)

    async def ingest_async(self, body: bytes, *, is_json: bool = False, reserved: int = 0,
                           executor: Executor | None = None, inline: bool = False) -> IngestResult:
        """`ingest()` for an event loop: prepared in `executor` (a thread pool; on the loop itself with
        `inline`, for small bodies prepared in this process), and the commit awaited without holding a
        thread, so many small exports waiting for one group commit cost no threads."""
        admitted = self._admit()  # on arrival: time spent waiting for the executor counts as queue delay
        if isinstance(admitted, IngestResult):
            self.release(reserved)
            return admitted
        if inline:
            started = self.start(body, is_json=is_json, reserved=reserved, key=admitted)
        else:
            preparing = asyncio.get_running_loop().run_in_executor(
                executor, functools.partial(self.start, body, is_json=is_json, reserved=reserved, key=admitted))
            try:  # shielded: a call cancelled meanwhile still has its reservation released by `_abandoned`
                started = await asyncio.shield(preparing)
            except asyncio.CancelledError:
                preparing.add_done_callback(self._abandoned)
                raise
        if isinstance(started, IngestResult):
            return started
        try:
            return started.outcome(await self._await_commit_async(started.future))
        finally:
            self._finished(started)

    def _admit(self) -> int | IngestResult:
        """A key for a new export under way, or OVERLOADED while the receiver is behind."""
        if self._max_queue_delay_s and self._writer.behind(self._max_queue_delay_s, self._oldest_wait_s()):
            return IngestResult(Outcome.OVERLOADED, message="the receiver is behind: exports wait longer than "
                                f"{self._max_queue_delay_s:g} s to be stored; retry later")
        key = next(self._ids)
        with self._under_way_lock:
            self._under_way[key] = time.monotonic()
        return key

    def _abandoned(self, preparing: asyncio.Future[IngestResult | UnderWay]) -> None:
        """A call cancelled while its request was prepared: free what its export holds once committed."""
        if not preparing.cancelled() and preparing.exception() is None:
            started = preparing.result()
            if isinstance(started, UnderWay):
                self._finished(started)

    def start(self, body: bytes, *, is_json: bool = False, reserved: int = 0,
              key: int | None = None) -> IngestResult | UnderWay:
        """Admit (unless `key` says it was admitted), prepare and queue one request body for the next group
        commit, without waiting for it.

        Returns the outcome when there is nothing to wait for (refused, nothing to store, failed), else the
        export under way, which the caller must wait for and then pass to `_finished`.

        Raises:
            InvalidRequest: the body is not a valid OTLP trace request.
            RequestTooLarge: decoding the body would take more memory than one request may.
        """
        if key is None:
            admitted = self._admit()
            if isinstance(admitted, IngestResult):
                self.release(reserved)
                return admitted
            key = admitted
        handed_over = False
        try:
            rows = self._prepare(body, is_json)
            self._limiter.acquire(rows.held_bytes)  # the body is still held too, until the reply
            reserved += rows.held_bytes
            self._metrics.spans_received.inc(rows.span_count + rows.rejected)
            if rows.rejected:
                self._metrics.spans_rejected.inc(rows.rejected)
            if rows.normalize_errors:
                self._metrics.normalize_errors.inc(rows.normalize_errors)
            if not rows.span_count:
                return _stored(rows, 0)
            under_way = UnderWay(key, rows, self._writer.submit(rows), reserved)
            handed_over = True
            return under_way
        except BrokenProcessPool:
            return IngestResult(Outcome.RETRY, message="receiver workers restarted; retry")
        except WriterClosed:
            return IngestResult(Outcome.SHUTTING_DOWN, message="receiver is shutting down")
        except (InvalidRequest, RequestTooLarge):
            raise
        except Exception as exc:
            log.exception("ingest_failed")
            return IngestResult(Outcome.FAILED, message=f"internal error: {type(exc).__name__}")
        finally:
            if not handed_over:
                with self._under_way_lock:
                    self._under_way.pop(key, None)
                self.release(reserved)

    def _finished(self, under_way: UnderWay) -> None:
        with self._under_way_lock:
            self._under_way.pop(under_way.key, None)
        self._release_when_done(under_way.future, under_way.reserved)

    def _oldest_wait_s(self) -> float:
        with self._under_way_lock:
            oldest = next(iter(self._under_way.values()), None)
        return 0.0 if oldest is None else time.monotonic() - oldest

    def store(self, rows: Prepared) -> IngestResult:
        """Commit rows prepared by another route (inserts over the ClickHouse HTTP interface) and wait."""
        self._limiter.acquire(rows.held_bytes)
        self._metrics.spans_received.inc(rows.span_count + rows.rejected)
        future: Future[int] | None = None
        refused = 0
        try:
            if rows.span_count:
                future = self._writer.submit(rows)
                committed = self._await_commit(future)
                if isinstance(committed, IngestResult):
                    return committed
                refused = committed
        except WriterClosed:
            return IngestResult(Outcome.SHUTTING_DOWN, message="receiver is shutting down")
        finally:
            self._release_when_done(future, rows.held_bytes)
        return _stored(rows, refused)

    def _release_when_done(self, future: Future[int] | None, held: int) -> None:
        """Release `held` in-flight bytes now, or once the commit under way ends."""
        if future is None or future.done():
            self.release(held)
        else:
            future.add_done_callback(lambda _: self.release(held))

    def _await_commit(self, future: Future[int]) -> IngestResult | int:
        """Once committed, how many spans the encoder refused; otherwise the retryable outcome. A commit
        that has not started by the deadline is cancelled, so a request answered "retry" is never stored as well."""
        try:
            return future.result(timeout=self._timeout)
        except TimeoutError:
            if future.cancel():
                return _NOT_IN_TIME
        except Exception as exc:
            return _commit_failure(exc)
        try:  # the insert is under way: its outcome decides the answer
            return future.result(timeout=self._timeout)
        except TimeoutError:
            return _STILL_COMMITTING
        except Exception as exc:
            return _commit_failure(exc)

    async def _await_commit_async(self, future: Future[int]) -> IngestResult | int:
        """`_await_commit` without holding a thread."""
        waited = asyncio.wrap_future(future)
        try:  # shielded: a timeout must not cancel the commit; only `future.cancel()` below decides that
            return await asyncio.wait_for(asyncio.shield(waited), self._timeout)
        except TimeoutError:
            if future.cancel():
                return _NOT_IN_TIME
        except Exception as exc:
            return _commit_failure(exc)
        try:
            return await asyncio.wait_for(asyncio.shield(waited), self._timeout)
        except TimeoutError:
            return _STILL_COMMITTING
        except Exception as exc:
            return _commit_failure(exc)


@dataclass(frozen=True)
class UnderWay:
    """An export whose rows are queued for a group commit."""

    key: int
    rows: Prepared
    future: Future[int]
    reserved: int

    def outcome(self, committed: IngestResult | int) -> IngestResult:
        return committed if isinstance(committed, IngestResult) else _stored(self.rows, committed)


_NOT_IN_TIME = IngestResult(Outcome.RETRY, message="storage did not commit in time; nothing was stored")
_STILL_COMMITTING = IngestResult(Outcome.RETRY, message="storage did not commit in time")


def _commit_failure(error: BaseException) -> IngestResult:
    if isinstance(error, WriterClosed):
        return IngestResult(Outcome.SHUTTING_DOWN, message="receiver is shutting down")
    if isinstance(error, RejectedByStore):
        return IngestResult(Outcome.REJECTED, message=f"the store refuses these spans: {error}")
    if isinstance(error, StoreUnavailable):
        return IngestResult(Outcome.RETRY, message=f"storage unavailable: {error}; nothing was stored")
    return IngestResult(Outcome.RETRY, message=f"storage unavailable: {type(error).__name__}")


def _stored(rows: Prepared, refused: int) -> IngestResult:
    """The outcome of committed `rows`, of which the encoder refused `refused` spans at commit."""
    message = rows.message
    if refused:
        more = f"{refused} span(s): a value cannot be stored"
        message = f"{message}; {more}" if message else more
    rejected = rows.rejected + refused
    return IngestResult(Outcome.STORED, accepted=rows.span_count - refused, rejected=rejected,
                        message=message if rejected else "")
