"""Group commit: concurrent exports become one INSERT per table; each export is acknowledged
only after its rows are committed. Large requests arrive already encoded (Native format, see
`llmrel.receiver.prepare`); the rows of all small ones in a commit are encoded here as one Native
block, since the embedded engine's cost is per block received far more than per row. A span the
encoder refuses is left out of its export alone (the export's future reports how many), as
preparation does for large requests.

Order of inserts: `llm_calls` first (a ReplacingMergeTree, so a retried batch collapses), then
`otel_traces`. A batch never spans more daily partitions than one insert may hold (the store's
`max_partitions_per_insert_block`); a request that alone spans more is committed on its own, one
block of days after another. When the store refuses a batch of several exports, each is retried
on its own, so one sender's rows cannot fail the others: the one the store refuses alone for
its data gets `RejectedByStore` (not retryable), any other failure fails its exports, so the
senders retry.

The writer also reports its queue delay (`queue_delay_s()`): how long the oldest export not yet
committed has waited. The ingest path refuses new exports while that exceeds its bound, so
overload becomes back-pressure (RESOURCE_EXHAUSTED / 429 with a retry delay) rather than latency
(a sojourn-time signal, as in CoDel: it needs no model of the store's speed).
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field

import structlog
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from llmrel.calls_ingest import insert_encoded
from llmrel.model import SPAN_COLUMNS, LlmCall
from llmrel.receiver.metrics import ReceiverMetrics
from llmrel.receiver.prepare import Prepared, RowBlock, RowEncoder
from llmrel.receiver.storehealth import StoreHealth
from llmrel.seams import CommitHook

log = structlog.get_logger(__name__)


_ERROR_CODE = re.compile(r"Code: (\d+)")
# ClickHouse errors about the inserted data itself: retrying the same rows cannot succeed.
_DATA_ERROR_CODES = frozenset({
    6,  # CANNOT_PARSE_TEXT
    27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    38,  # CANNOT_PARSE_DATE
    41,  # CANNOT_PARSE_DATETIME
    53,  # TYPE_MISMATCH
    69,  # ARGUMENT_OUT_OF_BOUND
    70,  # CANNOT_CONVERT_TYPE
    117,  # INCORRECT_DATA
    128,  # TOO_LARGE_ARRAY_SIZE
    131,  # TOO_LARGE_STRING_SIZE
})
_TOO_MANY_PARTS = 252  # about the data only when it is the per-insert partition limit


class WriterClosed(RuntimeError):
    """The writer is shutting down and takes no new work."""


class RejectedByStore(ValueError):
    """The store refused this export's rows for what they are: retrying them cannot succeed."""


def _is_data_error(error: BaseException) -> bool:
    if not isinstance(error, DatabaseError) or isinstance(error, OperationalError):
        return False
    text = str(error)
    match = _ERROR_CODE.search(text)
    if match is None:
        return False
    code = int(match.group(1))
    return code in _DATA_ERROR_CODES or (code == _TOO_MANY_PARTS and "partitions for single INSERT" in text)


def _may_isolate(error: BaseException) -> bool:
    """Whether the store answered about the rows (so one export's rows may be the cause), rather than
    being unreachable or full (then every export fails alike, and retrying each alone only adds load)."""
    return isinstance(error, DatabaseError) and not isinstance(error, OperationalError)


@dataclass
class _Pending:
    rows: Prepared
    future: Future[int] = field(default_factory=Future)  # result: spans the encoder refused
    submitted: float = field(default_factory=time.monotonic)
    refused: int = 0  # spans of unencoded blocks the encoder refused in this commit
    lost_calls: set[int] = field(default_factory=set)  # id() of calls left out with them

    def stored_calls(self) -> list[LlmCall]:
        if not self.lost_calls:
            return self.rows.calls
        return [c for c in self.rows.calls if id(c) not in self.lost_calls]


class BatchWriter:
    """One writer thread; `submit()` is thread-safe and returns a future resolved at commit.

    Args:
        client: a clickhouse-connect client used only by the writer thread.
        encoder: encodes the rows that exports hand over unencoded.
        max_spans: a batch closes once it holds this many spans.
        max_wait_s: how long a batch stays open for more exports after the first arrives
            (bounds the insert rate, so ClickHouse is not flooded with tiny parts).
        on_commit: called in the writer thread with each committed batch's calls; must not raise.
        health: consulted before each commit (a full disk refuses it) and told each outcome.
        max_partitions: the store's `max_partitions_per_insert_block` (0: no limit).
    """

    def __init__(self, client: Client, metrics: ReceiverMetrics, encoder: RowEncoder, *, max_spans: int = 20_000,
                 max_wait_s: float = 0.02, on_commit: CommitHook | None = None,
                 health: StoreHealth | None = None, max_partitions: int = 100) -> None:
        self._client = client
        self._encoder = encoder
        self._metrics = metrics
        self._health = health or StoreHealth()
        self._max_spans = max_spans
        self._max_wait_s = max_wait_s
        self._max_partitions = max_partitions
        self._on_commit = on_commit
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._held: _Pending | None = None  # taken from the queue, left for the next batch
        self._closed = False
        self._waiting_lock = threading.Lock()
        self._waiting: dict[int, float] = {}  # id -> submit time of exports not yet committed, oldest first
        self._thread = threading.Thread(target=self._run, name="llmrel-writer", daemon=True)
        self._thread.start()

    def submit(self, rows: Prepared) -> Future[int]:
        """Queue prepared rows for the next commit; the future's result is how many of the spans the
        encoder refused (left out, the rest stored). Raises `WriterClosed` after `close()`."""
        if self._closed:
            raise WriterClosed("receiver is shutting down")
        pending = _Pending(rows)
        with self._waiting_lock:
            self._waiting[id(pending)] = pending.submitted
        self._queue.put(pending)
        self._metrics.queue_depth.inc()
        return pending.future

    def queue_delay_s(self) -> float:
        """How long the oldest export not yet committed (queued, or in the commit under way) has waited."""
        with self._waiting_lock:
            oldest = next(iter(self._waiting.values()), None)
        return 0.0 if oldest is None else time.monotonic() - oldest

    def behind(self, max_delay_s: float, waited_s: float = 0.0) -> bool:
        """Whether the store is healthy but slower than the load: the queue delay (or `waited_s`, how long
        the caller's oldest export has waited so far, preparation included) exceeds `max_delay_s`.
        A store that fails (full disk, unreachable) is not "behind": its exports fail as retryable."""
        return max(waited_s, self.queue_delay_s()) > max_delay_s and self._health.problem() is None

    def _done(self, batch: list[_Pending]) -> None:
        with self._waiting_lock:
            for pending in batch:
                self._waiting.pop(id(pending), None)

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop taking work, commit everything queued, then stop the thread."""
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first, self._held = self._held or self._queue.get(), None
            if first is None:
                break
            batch, stopping = self._collect(first)
            self._commit(batch)
        if self._held is not None:
            self._commit([self._held])
        while True:  # fail whatever raced in after the sentinel
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is None:
                continue
            self._metrics.queue_depth.dec()
            if item.future.set_running_or_notify_cancel():
                item.future.set_exception(WriterClosed("receiver is shutting down"))

    def _collect(self, first: _Pending) -> tuple[list[_Pending], bool]:
        """The exports of the next commit: until `max_spans`, `max_wait_s`, or the partition limit."""
        batch = [first]
        if len(first.rows.blocks) > 1:
            return batch, False  # wider than one insert: committed alone
        size = first.rows.span_count
        days = set(first.rows.days)
        deadline = time.monotonic() + self._max_wait_s
        while size < self._max_spans:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            more_days = days | item.rows.days
            if len(item.rows.blocks) > 1 or (self._max_partitions and len(more_days) > self._max_partitions):
                self._held = item
                break
            batch.append(item)
            days = more_days
            size += item.rows.span_count
        return batch, False

    def _insert(self, table: str, columns: tuple[str, ...], blocks: list[bytes]) -> None:
        body = b"".join(blocks)
        if body:
            self._client.raw_insert(table, list(columns), insert_block=body, fmt="Native")

    def _encode(self, items: list[tuple[_Pending, RowBlock]]) -> tuple[list[bytes], list[bytes]]:
        """Both tables' Native bytes for `items`: encoded blocks as they are, the others encoded together
        as one block (or, if the encoder refuses a value, block by block without the refused spans)."""
        spans = [b.spans_native for _, b in items if b.encoded]
        calls = [b.calls_native for _, b in items if b.encoded]
        raw = [(p, b) for p, b in items if not b.encoded]
        if not raw:
            return spans, calls
        try:
            return ([*spans, self._encoder.spans([s for _, b in raw for s in b.spans])],
                    [*calls, self._encoder.calls([c for _, b in raw for c in b.calls])])
        except Exception:
            log.warning("rows_not_encodable_encoding_each_export", exports=len({id(p) for p, _ in raw}))
        for pending, block in raw:
            encoded = self._encoder.block(block.spans, block.calls)
            spans.append(encoded.spans_native)
            calls.append(encoded.calls_native)
            pending.refused += len(encoded.refused_spans)
            if len(encoded.calls) < len(block.calls):
                pending.lost_calls |= {id(c) for c in block.calls} - {id(c) for c in encoded.calls}
        return spans, calls

    def _insert_blocks(self, items: list[tuple[_Pending, RowBlock]]) -> None:
        """One insert per table of `items` (blocks that fit in one insert's partitions)."""
        self._health.before_commit()
        spans, calls = self._encode(items)
        insert_encoded(self._client, calls)
        self._insert("otel_traces", SPAN_COLUMNS, spans)

    def _write(self, batch: list[_Pending]) -> None:
        for pending in batch:
            pending.refused, pending.lost_calls = 0, set()
        if len(batch) == 1:
            for block in batch[0].rows.blocks:  # a request wider than one insert: block after block
                self._insert_blocks([(batch[0], block)])
        else:
            self._insert_blocks([(p, block) for p in batch for block in p.rows.blocks])

    def _commit(self, queued: list[_Pending]) -> None:
        try:
            self._commit_batch(queued)
        finally:
            self._done(queued)

    def _commit_batch(self, queued: list[_Pending]) -> None:
        self._metrics.queue_depth.dec(len(queued))
        # Exports whose sender already got "retry" were cancelled: they must not be stored.
        batch = [p for p in queued if p.future.set_running_or_notify_cancel()]
        if not batch:
            return
        started = time.perf_counter()
        try:
            self._write(batch)
        except Exception as exc:
            self._failed(batch, exc)
            if len(batch) > 1 and _may_isolate(exc):
                log.warning("batch_refused_committing_each_export", exports=len(batch))
                for pending in batch:
                    self._commit_alone(pending)
                return
            error = RejectedByStore(str(exc)[:500]) if _is_data_error(exc) else exc
            for pending in batch:
                pending.future.set_exception(error)
            return
        self._committed(batch, started)

    def _commit_alone(self, pending: _Pending) -> None:
        started = time.perf_counter()
        try:
            self._write([pending])
        except Exception as exc:
            self._failed([pending], exc)
            pending.future.set_exception(RejectedByStore(str(exc)[:500]) if _is_data_error(exc) else exc)
            return
        self._committed([pending], started)

    def _failed(self, batch: list[_Pending], error: Exception) -> None:
        self._health.failed(error)
        self._metrics.insert_failures.inc()
        log.warning("insert_failed", error=str(error)[:500], exports=len(batch),
                    spans=sum(p.rows.span_count for p in batch), calls=sum(len(p.rows.calls) for p in batch))

    def _committed(self, batch: list[_Pending], started: float) -> None:
        self._health.committed()
        span_count = sum(p.rows.span_count - p.refused for p in batch)
        calls = [c for p in batch for c in p.stored_calls()]
        self._metrics.insert_seconds.observe(time.perf_counter() - started)
        self._metrics.batch_spans.observe(span_count)
        self._metrics.spans_stored.inc(span_count)
        for status, count in Counter(call.cost_status for call in calls).items():
            self._metrics.calls_stored.labels(status).inc(count)
        for pending in batch:
            pending.future.set_result(pending.refused)
        if self._on_commit is not None and calls:
            try:
                self._on_commit(calls)
            except Exception:
                log.exception("on_commit_failed")
