"""`llmrel analyze`: tail `otel_traces` written by any writer, hand the spans to the one span -> call
adapter (a `llmrel.seams.StoredSpanIngest`, composed by the CLI: content policy, normalization,
pricing, the `llm_calls` insert), analyze the calls.

Progress is a durable watermark, the last (Timestamp, TraceId, SpanId) read, saved in the same
checkpoint row as the detector state. Each poll:

1. reads the next rows past the watermark (keyset order), up to `settle_s` before now so that
   in-flight inserts land first, and every `rescan_s` also re-reads the last `lateness_s` before
   the watermark for LLM spans that are still missing from `llm_calls` (late inserts); spans that
   leave that bound unanalyzed are counted (`llmrel_analyze_late_spans_dropped`) and logged;
2. turns them into calls through the adapter, only those of this shard's streams (`--shard i/N`:
   a stable CRC32 of service × requested model × operation, so each stream has exactly one
   analyzer), and asks it which of them `llm_calls` already holds;
3. analyzes them, writes the findings, has the adapter insert the new calls, then checkpoints
   state + watermark in one insert; if any step fails, the engine is rolled back and the watermark
   stays where it was.

A crash before the checkpoint replays the batch: calls already inserted are skipped, and
findings written again carry the same ids (collapsed by `llm_findings`' ReplacingMergeTree).
Window, budget and trace rules see only the calls of the shard's streams.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from clickhouse_connect.driver.client import Client

from llmrel.analyzers.callfields import shard_of
from llmrel.analyzers.runtime import Analyzer
from llmrel.analyzers.sink import Watermark
from llmrel.findings import write_findings
from llmrel.model import LlmCall, SpanRecord
from llmrel.seams import StoredSpanIngest
from llmrel.span_rows import SELECT_SPANS as _SELECT_SPANS
from llmrel.span_rows import span_reader
from llmrel_core.spans import MARKER_KEYS

log = structlog.get_logger(__name__)


# Stored spans that may be LLM calls (the normalizer decides; used by the late-data rescan): the keys are
# the classification's own.
_LLM_SPAN_FILTER = "(" + " OR ".join(f"mapContains(SpanAttributes, '{key}')" for key in MARKER_KEYS) + ")"


@dataclass(frozen=True)
class Shard:
    """This analyzer's share: streams whose key hashes to `index` modulo `count`."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`i/N` with 0 <= i < N.

        Raises:
            ValueError: on anything else.
        """
        index, sep, count = text.partition("/")
        if not sep or not index.isdigit() or not count.isdigit() or not 0 <= int(index) < int(count):
            raise ValueError(f"expected --shard i/N with 0 <= i < N, got {text!r}")
        return cls(int(index), int(count))

    @property
    def analyzer_id(self) -> str:
        return f"analyze-{self.index}-of-{self.count}"


@dataclass(frozen=True)
class PollResult:
    rows_read: int
    calls_inserted: int
    findings: int
    watermark: Watermark


class Tailer:
    """Tails one store for one shard. Not thread-safe; `run` until `stop` is set."""

    def __init__(self, client: Client, analyzer: Analyzer, *, ingest: StoredSpanIngest, shard: Shard = Shard(),
                 batch_rows: int = 20_000, settle_s: float = 2.0, lateness_s: float = 600.0,
                 rescan_s: float = 30.0) -> None:
        self.client = client
        self.analyzer = analyzer
        self.shard = shard
        self.ingest = ingest
        self.batch_rows = batch_rows
        self.settle_s = settle_s
        self.lateness_s = lateness_s
        self.rescan_s = rescan_s
        self._last_rescan = 0.0
        self._expired_low: int | None = None
        self._unsaved: set[tuple[str, str]] = set()  # calls of a poll whose checkpoint failed

    def poll_once(self, now_ns: int | None = None) -> PollResult:
        """One step: read, ingest, analyze, store the calls, checkpoint. Raises on storage errors."""
        now_ns = now_ns or time.time_ns()
        mark = self.analyzer.watermark
        spans = self._read_next(mark, now_ns - int(self.settle_s * 1e9))
        if spans:
            last = spans[-1]
            mark = Watermark(last.timestamp_ns, last.trace_id, last.span_id)
        if self.lateness_s > 0 and time.monotonic() - self._last_rescan >= self.rescan_s:
            spans += self._read_late(self.analyzer.watermark)
            self._count_expired(self.analyzer.watermark)
            self._last_rescan = time.monotonic()
        calls, new = self._new_calls(spans)
        # a data-only snapshot of what this batch can change, as the checkpoint stores it
        before = self.analyzer.engine.snapshot(calls) if calls else None
        try:
            findings = self.analyzer.process(calls)
            write_findings(self.client, findings)
            self.ingest.store(new)
            if spans:
                self.analyzer.checkpoint(mark)  # state and position in one insert: both move or neither
        except Exception:
            if before is not None:  # the retry reads these calls again: analyzed once more, counted once
                self.analyzer.engine.rollback(before)
                self._unsaved.update((c.trace_id, c.span_id) for c in calls)
            raise
        self._unsaved.clear()
        return PollResult(len(spans), len(new), len(findings), mark)

    def run(self, stop: threading.Event, *, once: bool = False, interval_s: float = 1.0) -> None:
        """Poll until `stop` is set (or, with `once`, until caught up). Errors are logged and retried."""
        while not stop.is_set():
            try:
                result = self.poll_once()
            except Exception:
                log.exception("analyze_poll_failed", shard=self.shard.analyzer_id)
                stop.wait(interval_s * 5)
                continue
            if result.rows_read:
                log.info("analyze_poll", rows=result.rows_read, calls=result.calls_inserted,
                         findings=result.findings, shard=self.shard.analyzer_id)
            if result.rows_read < self.batch_rows:
                if once:
                    return
                stop.wait(interval_s)

    def _spans(self, sql: str, parameters: dict[str, Any]) -> list[SpanRecord]:
        """The spans `sql` (selecting `SELECT_SPANS`) returns, read by column name."""
        result = self.client.query(sql, parameters=parameters)
        rows = result.result_rows
        if not rows:  # an empty answer may come without column names
            return []
        read = span_reader(result.column_names)
        return [read(row) for row in rows]

    def _read_next(self, mark: Watermark, until_ns: int) -> list[SpanRecord]:
        return self._spans(
            f"SELECT {_SELECT_SPANS} FROM otel_traces "
            "WHERE Timestamp >= fromUnixTimestamp64Nano({ts:Int64}) "  # lets ClickHouse skip older partitions
            "AND (Timestamp, TraceId, SpanId) > (fromUnixTimestamp64Nano({ts:Int64}), {trace:String}, {span:String}) "
            "AND Timestamp <= fromUnixTimestamp64Nano({until:Int64}) "
            "ORDER BY Timestamp, TraceId, SpanId LIMIT {limit:UInt32}",
            {"ts": mark.ts_ns, "trace": mark.trace_id, "span": mark.span_id, "until": until_ns,
             "limit": self.batch_rows})

    def _read_late(self, mark: Watermark) -> list[SpanRecord]:
        if mark.ts_ns == 0:
            return []
        low = mark.ts_ns - int(self.lateness_s * 1e9)
        return self._spans(
            f"SELECT {_SELECT_SPANS} FROM otel_traces "
            "WHERE Timestamp > fromUnixTimestamp64Nano({low:Int64}) "
            "AND (Timestamp, TraceId, SpanId) <= (fromUnixTimestamp64Nano({ts:Int64}), {trace:String}, {span:String}) "
            f"AND {_LLM_SPAN_FILTER} AND (TraceId, SpanId) NOT IN (SELECT TraceId, SpanId FROM llm_calls "
            "WHERE Timestamp > fromUnixTimestamp64Nano({low:Int64}))",
            {"low": low, "ts": mark.ts_ns, "trace": mark.trace_id, "span": mark.span_id})

    def _count_expired(self, mark: Watermark) -> None:
        """Count (metric + log) LLM spans that left the lateness bound since the last rescan without being
        analyzed: they arrived too late and are dropped. Spans arriving later still are not seen at all."""
        low = mark.ts_ns - int(self.lateness_s * 1e9)
        previous, self._expired_low = self._expired_low, low
        if mark.ts_ns == 0 or previous is None or low <= previous:
            return
        dropped = self.client.query(
            "SELECT count() FROM otel_traces WHERE Timestamp > fromUnixTimestamp64Nano({prev:Int64}) "
            f"AND Timestamp <= fromUnixTimestamp64Nano({{low:Int64}}) AND {_LLM_SPAN_FILTER} "
            "AND (TraceId, SpanId) NOT IN (SELECT TraceId, SpanId FROM llm_calls "
            "WHERE Timestamp > fromUnixTimestamp64Nano({prev:Int64}))",
            parameters={"prev": previous, "low": low}).result_rows[0][0]
        if dropped:
            self.analyzer.metrics.late_spans_dropped.inc(dropped)
            log.warning("analyze_late_spans_dropped", count=dropped, lateness_s=self.lateness_s,
                        shard=self.shard.analyzer_id)

    def _new_calls(self, spans: Sequence[SpanRecord]) -> tuple[list[LlmCall], list[LlmCall]]:
        """Calls of this shard to analyze, and those of them `llm_calls` does not hold yet.

        A call already in `llm_calls` was analyzed by whoever stored it, unless it is from a poll of ours
        whose checkpoint failed (rolled back): those are analyzed again."""
        keep = self._in_shard if self.shard.count > 1 else None
        calls = {(c.trace_id, c.span_id): c for c in self.ingest.calls(spans, keep)}
        if not calls:
            return [], []
        present = self.ingest.stored(list(calls.values()))
        analyze = [c for key, c in calls.items() if key not in present or key in self._unsaved]
        return analyze, [c for key, c in calls.items() if key not in present]

    def _in_shard(self, call: LlmCall) -> bool:
        return shard_of(self.analyzer.engine.stream_key(call), self.shard.count) == self.shard.index
