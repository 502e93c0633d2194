"""Group commit: concurrent exports become one INSERT per table; each export is acknowledged
only after its rows are committed. Rows arrive already encoded (Native format, see
`llmrel.receiver.prepare`), so a commit concatenates bytes and inserts them.

Order of inserts: `llm_calls` first (a ReplacingMergeTree, so a retried batch collapses), then
`otel_traces`. A failure fails every export of the batch, so the senders retry.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import structlog
from clickhouse_connect.driver.client import Client

from llmrel.model import LLM_CALL_COLUMNS, SPAN_COLUMNS, LlmCall
from llmrel.receiver.metrics import ReceiverMetrics
from llmrel.receiver.prepare import Prepared
from llmrel.receiver.storehealth import StoreHealth

log = structlog.get_logger(__name__)

CommitHook = Callable[[list[LlmCall]], None]


class WriterClosed(RuntimeError):
    """The writer is shutting down and takes no new work."""


@dataclass
class _Pending:
    rows: Prepared
    future: Future[None] = field(default_factory=Future)


class BatchWriter:
    """One writer thread; `submit()` is thread-safe and returns a future resolved at commit.

    Args:
        client: a clickhouse-connect client used only by the writer thread.
        max_spans: a batch closes once it holds this many spans.
        max_wait_s: how long a batch stays open for more exports after the first arrives
            (bounds the insert rate, so ClickHouse is not flooded with tiny parts).
        on_commit: called in the writer thread with each committed batch's calls; must not raise.
        health: consulted before each commit (a full disk refuses it) and told each outcome.
    """

    def __init__(self, client: Client, metrics: ReceiverMetrics, *, max_spans: int = 20_000,
                 max_wait_s: float = 0.02, on_commit: CommitHook | None = None,
                 health: StoreHealth | None = None) -> None:
        self._client = client
        self._metrics = metrics
        self._health = health or StoreHealth()
        self._max_spans = max_spans
        self._max_wait_s = max_wait_s
        self._on_commit = on_commit
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="llmrel-writer", daemon=True)
        self._thread.start()

    def submit(self, rows: Prepared) -> Future[None]:
        """Queue prepared rows for the next commit. Raises `WriterClosed` after `close()`."""
        if self._closed:
            raise WriterClosed("receiver is shutting down")
        pending = _Pending(rows)
        self._queue.put(pending)
        self._metrics.queue_depth.inc()
        return pending.future

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop taking work, commit everything queued, then stop the thread."""
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch, stopping = self._collect(first)
            self._commit(batch)
        while True:  # fail whatever raced in after the sentinel
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and item.future.set_running_or_notify_cancel():
                item.future.set_exception(WriterClosed("receiver is shutting down"))

    def _collect(self, first: _Pending) -> tuple[list[_Pending], bool]:
        batch = [first]
        size = first.rows.span_count
        deadline = time.monotonic() + self._max_wait_s
        while size < self._max_spans:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
            size += item.rows.span_count
        return batch, False

    def _insert(self, table: str, columns: tuple[str, ...], blocks: list[bytes]) -> None:
        body = b"".join(blocks)
        if body:
            self._client.raw_insert(table, list(columns), insert_block=body, fmt="Native")

    def _commit(self, queued: list[_Pending]) -> None:
        self._metrics.queue_depth.dec(len(queued))
        # Exports whose sender already got "retry" were cancelled: they must not be stored.
        batch = [p for p in queued if p.future.set_running_or_notify_cancel()]
        if not batch:
            return
        span_count = sum(p.rows.span_count for p in batch)
        calls = [c for p in batch for c in p.rows.calls]
        started = time.perf_counter()
        try:
            self._health.before_commit()
            self._insert("llm_calls", LLM_CALL_COLUMNS, [p.rows.calls_native for p in batch])
            self._insert("otel_traces", SPAN_COLUMNS, [p.rows.spans_native for p in batch])
        except Exception as exc:
            self._health.failed(exc)
            self._metrics.insert_failures.inc()
            log.warning("insert_failed", error=str(exc)[:500], spans=span_count, calls=len(calls))
            for pending in batch:
                pending.future.set_exception(exc)
            return
        self._health.committed()
        self._metrics.insert_seconds.observe(time.perf_counter() - started)
        self._metrics.batch_spans.observe(span_count)
        self._metrics.spans_stored.inc(span_count)
        for status, count in Counter(call.cost_status for call in calls).items():
            self._metrics.calls_stored.labels(status).inc(count)
        for pending in batch:
            pending.future.set_result(None)
        if self._on_commit is not None and calls:
            try:
                self._on_commit(calls)
            except Exception:
                log.exception("on_commit_failed")
