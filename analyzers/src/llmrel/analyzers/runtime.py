"""`Analyzer`: the engine plus its ClickHouse edges (findings out, checkpoints in and out).

`llmrel serve` builds one with `Analyzer.from_settings(settings, client)` and calls `on_commit`
after each committed batch (from one worker thread); `llmrel analyze` drives one from the tailer.
`process` stays pure for tests and benchmarks. State is checkpointed every
`checkpoint_interval_s` and on `close()`, and restored by `from_settings`, so a restart keeps
drifts in progress and needs no new warm-up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import structlog
from clickhouse_connect.driver.client import Client

from llmrel.analyzers.engine import Engine
from llmrel.analyzers.findings import Finding
from llmrel.analyzers.ruleaction import attach_actions
from llmrel.analyzers.ruleset import load_ruleset
from llmrel.analyzers.sink import Watermark, load_checkpoint, save_checkpoint, write_findings
from llmrel.config import Settings
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
                 checkpoint_interval_s: float = _DEFAULT_CHECKPOINT_INTERVAL_S) -> None:
        self.engine = engine
        self.client = client
        self.analyzer_id = analyzer_id
        self.checkpoint_interval_s = checkpoint_interval_s
        self.watermark = Watermark()
        self.actions = engine.ruleset.actions()
        self.failures = 0
        self._lock = threading.Lock()
        self._last_checkpoint = time.monotonic()
        self._failing = False
        self._unwritten: list[Finding] = []  # findings whose write failed: retried with the next batch

    @classmethod
    def from_settings(cls, settings: Settings, client: Client, analyzer_id: str = SERVE_ANALYZER_ID,
                      **kwargs: float) -> Analyzer:
        """Default pack + `settings.rules_file`, state restored from the last checkpoint of `analyzer_id`.

        Raises:
            RuleFileError: when the rule files are invalid (a configuration error, reported at start).
        """
        analyzer = cls(Engine(load_ruleset(settings.rules_file)), client, analyzer_id, **kwargs)
        analyzer.restore()
        return analyzer

    def restore(self) -> None:
        """Load the last checkpoint; a missing or unreadable one means a fresh start (logged)."""
        if self.client is None:
            return
        try:
            state, self.watermark = load_checkpoint(self.client, self.analyzer_id)
        except Exception:
            log.exception("analyzer_checkpoint_unreadable", analyzer_id=self.analyzer_id)
            return
        if state is not None:
            dropped = self.engine.restore(state)
            log.info("analyzer_restored", analyzer_id=self.analyzer_id, streams=len(self.engine.streams),
                     calls_seen=self.engine.calls_seen, dropped=dropped or None)

    def process(self, calls: Sequence[LlmCall], now_ns: int | None = None) -> list[Finding]:
        """Pure analysis (no I/O): the findings for `calls`, each carrying its rule's declared action."""
        with self._lock:
            findings = self.engine.process(calls, now_ns)
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
        """Save state (and the tailing watermark) now. Raises on storage errors."""
        if self.client is None:
            return
        with self._lock:
            if watermark is not None:
                self.watermark = watermark
            save_checkpoint(self.client, self.analyzer_id, self.engine.state(), self.watermark)
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
