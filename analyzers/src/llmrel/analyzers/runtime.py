"""`Analyzer`: the engine plus its ClickHouse edges (findings out, checkpoints in and out).

`llmrel serve` builds one with `Analyzer.from_settings(settings, client)` and calls `on_commit`
after each committed batch (from one worker thread); `llmrel analyze` drives one from the tailer.
`process` stays pure for tests and benchmarks. State is checkpointed every
`checkpoint_interval_s` and on `close()`, and restored by `from_settings`, so a restart keeps
drifts in progress. A checkpoint is data only (`checkpoint`): one that does not validate is
logged, counted (`llmrel_analyzer_checkpoints_rejected`) and ignored, never executed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import structlog
from clickhouse_connect.driver.client import Client
from prometheus_client import CollectorRegistry, Counter, Gauge

from llmrel.analyzers.checkpoint import CheckpointError
from llmrel.analyzers.engine import Engine
from llmrel.analyzers.history import in_shard, load_history, stream_histories
from llmrel.analyzers.ruleaction import attach_actions
from llmrel.analyzers.ruleset import load_ruleset
from llmrel.analyzers.sink import Watermark, load_checkpoint, save_checkpoint
from llmrel.config import Settings
from llmrel.findings import Finding, write_findings
from llmrel.model import LlmCall

log = structlog.get_logger(__name__)

SERVE_ANALYZER_ID = "serve"
_DEFAULT_CHECKPOINT_INTERVAL_S = 60.0
_MAX_UNWRITTEN = 10_000


class Analyzer:
    """Invariants + drift over committed calls, findings written to `llm_findings`.

    Thread-safety: calls are serialized by an internal lock. `on_commit` and `close` never raise.
    """

    def __init__(self, engine: Engine, client: Client | None, analyzer_id: str = SERVE_ANALYZER_ID,
                 checkpoint_interval_s: float = _DEFAULT_CHECKPOINT_INTERVAL_S,
                 registry: CollectorRegistry | None = None, shard: tuple[int, int] = (0, 1)) -> None:
        self.engine = engine
        self.shard = shard  # (index, count): the warm start seeds only the streams of this shard
        self.metrics = AnalyzerMetrics(registry or CollectorRegistry())
        self.client = client
        self.analyzer_id = analyzer_id
        self.checkpoint_interval_s = checkpoint_interval_s
        self.watermark = Watermark()
        self.actions = engine.ruleset.actions()
        self.failures = 0
        self._lock = threading.Lock()
        self._last_checkpoint = time.monotonic()
        self._version = 0  # of the stored checkpoint: ours are written after it, even if it is dated ahead
        self._failing = False
        self._unwritten: list[Finding] = []  # findings whose write failed: retried with the next batch

    @classmethod
    def from_settings(cls, settings: Settings, client: Client, analyzer_id: str = SERVE_ANALYZER_ID,
                      **kwargs: Any) -> Analyzer:
        """Default pack + `settings.rules_file`, state restored from the last checkpoint of `analyzer_id`.

        Raises:
            RuleFileError: when the rule files are invalid (a configuration error, reported at start).
        """
        analyzer = cls(Engine(load_ruleset(settings.rules_file), settings.lateness_s), client, analyzer_id, **kwargs)
        analyzer.restore()
        analyzer.warm_start()
        return analyzer

    def warm_start(self, now_ns: int | None = None) -> int:
        """Seed the drift streams of this shard that no checkpoint restored from their stored calls (`history`).
        A failure is logged and leaves them to start from their parents' priors. Returns streams seeded."""
        drift = self.engine.ruleset.drift
        if self.client is None or not drift.enabled:
            return 0
        started = time.monotonic()
        try:
            now = now_ns if now_ns is not None else time.time_ns()
            frame = in_shard(load_history(self.client, drift, now), *self.shard, by_feature=drift.by_feature)
            with self._lock:
                seeded = self.engine.warm_start(stream_histories(frame, drift.by_feature), now)
        except Exception:
            log.exception("analyzer_warm_start_failed", analyzer_id=self.analyzer_id)
            return 0
        log.info("analyzer_warm_start", analyzer_id=self.analyzer_id, calls=frame.height, streams=seeded,
                 seconds=round(time.monotonic() - started, 2))
        return seeded

    def restore(self) -> None:
        """Load the last checkpoint. A missing one is a fresh start; an invalid one is logged, counted and
        ignored (detectors rebuild from the calls to come, seeded by their parents)."""
        if self.client is None:
            return
        try:
            stored = load_checkpoint(self.client, self.analyzer_id, self.engine.ruleset.drift.max_streams)
        except Exception:
            log.exception("analyzer_checkpoint_unreadable", analyzer_id=self.analyzer_id)
            return
        self._version = stored.version
        if stored.engine is None:
            return
        try:
            dropped = self.engine.restore(stored.engine, stored.streams)
        except CheckpointError as exc:
            self.metrics.checkpoints_rejected.inc()
            log.error("analyzer_checkpoint_rejected", analyzer_id=self.analyzer_id, reason=str(exc))
            dropped = self.engine.restore(None, stored.streams)
        if any("invalid" in d for d in dropped):
            self.metrics.checkpoints_rejected.inc()
        self.watermark = stored.watermark
        log.info("analyzer_restored", analyzer_id=self.analyzer_id, streams=len(self.engine.streams),
                 calls_seen=self.engine.calls_seen, dropped=dropped or None)

    def process(self, calls: Sequence[LlmCall], now_ns: int | None = None) -> list[Finding]:
        """Pure analysis (no I/O): the findings for `calls`, each carrying its rule's declared action."""
        with self._lock:
            evicted, late = self.engine.streams_evicted, self.engine.late_dropped
            findings = self.engine.process(calls, now_ns)
            if self.engine.streams_evicted > evicted:
                self.metrics.streams_evicted.inc(self.engine.streams_evicted - evicted)
            if self.engine.late_dropped > late:
                self.metrics.late_calls_dropped.inc(self.engine.late_dropped - late)
                log.warning("analyzer_late_calls_dropped", count=self.engine.late_dropped - late,
                            lateness_s=self.engine.lateness_ns / 1e9)
            self.metrics.streams.set(len(self.engine.streams))
        return attach_actions(findings, self.actions) if self.actions else findings

    def on_commit(self, calls: Sequence[LlmCall]) -> list[Finding]:
        """Analyze a committed batch and write its findings. Never raises; logs once per failing stretch."""
        try:
            findings = self.process(calls)
            if self.client is not None:
                # Rule state already counts these as fired, so a failed write is retried, never dropped
                # (stable finding ids make a repeated write harmless).
                pending = self._unwritten + findings
                self._unwritten = pending
                write_findings(self.client, pending)
                self._unwritten = []
                if time.monotonic() - self._last_checkpoint >= self.checkpoint_interval_s:
                    self.checkpoint()
        except Exception:
            if len(self._unwritten) > _MAX_UNWRITTEN:
                log.error("analyzer_findings_dropped", count=len(self._unwritten) - _MAX_UNWRITTEN)
                self._unwritten = self._unwritten[-_MAX_UNWRITTEN:]
            self.failures += 1
            if not self._failing:
                log.exception("analyzer_batch_failed", analyzer_id=self.analyzer_id, calls=len(calls))
            self._failing = True
            return []
        if self._failing:
            log.info("analyzer_recovered", analyzer_id=self.analyzer_id, failed_batches=self.failures)
        self._failing = False
        return findings

    def checkpoint(self, watermark: Watermark | None = None) -> None:
        """Save state and the tailing watermark in one insert. Raises on storage errors (then neither moves)."""
        if self.client is None:
            return
        with self._lock:
            mark = watermark if watermark is not None else self.watermark
            self._version = save_checkpoint(self.client, self.analyzer_id, self.engine.state(),
                                            self.engine.stream_rows(), mark, self._version)
            self.engine.mark_saved()
            self.watermark = mark
            self._last_checkpoint = time.monotonic()

    def close(self) -> None:
        """Write findings still pending, then a final checkpoint. Never raises."""
        try:
            if self._unwritten and self.client is not None:
                write_findings(self.client, self._unwritten)
                self._unwritten = []
            self.checkpoint()
        except Exception:
            log.exception("analyzer_checkpoint_failed", analyzer_id=self.analyzer_id)


class AnalyzerMetrics:
    """Prometheus self-metrics of the analyzers (on the receiver's registry in `llmrel serve`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.checkpoints_rejected = Counter(
            "llmrel_analyzer_checkpoints_rejected", "Stored checkpoints (or stream rows) that failed validation",
            registry=registry)
        self.streams_evicted = Counter(
            "llmrel_drift_streams_evicted", "Drift streams forgotten because drift.max_streams was reached",
            registry=registry)
        self.streams = Gauge("llmrel_drift_streams", "Drift streams held in memory", registry=registry)
        self.late_calls_dropped = Counter(
            "llmrel_analyzer_late_calls_dropped", "Calls too late for a window or budget period (lateness_s), per rule",
            registry=registry)
        self.late_spans_dropped = Counter(
            "llmrel_analyze_late_spans_dropped", "Spans that reached otel_traces later than the lateness bound",
            registry=registry)
