"""`Intel`: the intelligence layer as `llmrel serve` runs it (wiring only).

The receiver creates one, includes `router(auth)` in its HTTP app, hands every analyzed batch (its calls
and findings) to `observe`, and calls `close()` on shutdown. Work runs on one thread of its own, behind a
bounded queue, so neither explaining nor the output-content detector ever slows the analyzers: when the
queue is full a batch is dropped and counted. Output-content drift findings are written through the
analyzers' findings writer, then explained like any other finding.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from clickhouse_connect.driver.client import Client
from fastapi import APIRouter, Request

from llmrel.config import Settings
from llmrel.findings import Finding, write_findings
from llmrel.intel.content_drift import ContentDriftConfig, ContentDriftMonitor
from llmrel.intel.narrative import Narrator
from llmrel.model import LlmCall

log = structlog.get_logger(__name__)

_QUEUE_BATCHES = 256
_PER_CALL_KINDS = ("invariant", "trace")


class Intel:
    """Explainer + output-content drift of one receiver, on their own worker thread."""

    def __init__(self, settings: Settings, client_factory: Callable[[], Client]) -> None:
        self.settings = settings
        self._client_factory = client_factory
        self._api_client = client_factory()
        self._client = client_factory()
        self.monitor = (ContentDriftMonitor(ContentDriftConfig(window=settings.content_drift_window))
                        if settings.content_drift_enabled else None)
        self.narrator = (Narrator(settings.narrative_url, settings.narrative_model,
                                  settings.narrative_api_key.get_secret_value() if settings.narrative_api_key else None,
                                  settings.narrative_timeout_s) if settings.narrative_url else None)
        self.dropped = 0
        self.explained = 0
        self.failures = 0
        self._last_explained: dict[tuple[str, str], float] = {}
        self._queue: queue.Queue[tuple[Sequence[LlmCall], Sequence[Finding]] | None] = queue.Queue(_QUEUE_BATCHES)
        self._thread = threading.Thread(target=self._run, name="llmrel-intel", daemon=True)

    def start(self) -> Intel:
        self._thread.start()
        return self

    def observe(self, calls: Sequence[LlmCall], findings: Sequence[Finding]) -> None:
        """Queue one analyzed batch. Never blocks, never raises."""
        try:
            self._queue.put_nowait((calls, findings))
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            calls, findings = item
            try:
                self.handle(calls, findings)
            except Exception:
                self.failures += 1
                log.exception("intel_batch_failed", calls=len(calls), findings=len(findings))

    def handle(self, calls: Sequence[LlmCall], findings: Sequence[Finding]) -> list[Finding]:
        """Detect output-content drift in `calls`, write it, and explain the new findings. Returns the drifts."""
        drifts: list[Finding] = []
        if self.monitor is not None and calls:
            drifts = self.monitor.process(list(calls), time.time_ns())
            write_findings(self._client, drifts)
        if self.settings.explain_findings and (findings or drifts):
            from llmrel.intel.explain import explain_and_store  # polars, scipy: loaded with the first finding

            for finding in (*findings, *drifts):
                if self._due(finding):
                    explain_and_store(self._client, finding.finding_id, self.narrator)
                    self.explained += 1
        return drifts

    def _due(self, finding: Finding) -> bool:
        """Per-call findings are explained once per rule and service per interval; others always."""
        if finding.kind not in _PER_CALL_KINDS:
            return True
        key = (finding.rule_id, finding.service_name)
        now = time.monotonic()
        last = self._last_explained.get(key)
        if last is not None and now - last < self.settings.explain_interval_s:
            return False
        self._last_explained[key] = now
        return True

    def status(self) -> dict[str, Any]:
        return {"explain_findings": self.settings.explain_findings, "explained": self.explained,
                "dropped_batches": self.dropped, "failed_batches": self.failures,
                "content_drift": self.monitor.status() if self.monitor is not None
                else {"enabled": False, "reason": "content_drift_enabled is false"}}

    def router(self, auth: Callable[[Request], bool]) -> APIRouter:
        from llmrel.intel.api import build_intel_router

        return build_intel_router(self._api_client, auth, self.status, self.narrator)

    def close(self) -> None:
        """Finish the queued batches, then stop. Never raises."""
        try:
            if self._thread.is_alive():
                self._queue.put(None, timeout=30)
                self._thread.join(60)
        except Exception:
            log.exception("intel_close_failed")
        for client in (self._client, self._api_client):
            client.close()
