"""`llmrel serve` composed: the receiver, with the analyzers, the action layer and the intelligence layer
beside it. The composition root: the one module that knows every area; areas know only the core."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from clickhouse_connect.driver.client import Client
from prometheus_client import CollectorRegistry

from llmrel.actions.runtime import Actions
from llmrel.analyzers.runtime import Analyzer
from llmrel.analyzers.tail import Shard, Tailer
from llmrel.calls_ingest import CallIngest, StoredSpanCalls
from llmrel.config import Settings
from llmrel.intel.runtime import Intel
from llmrel.model import LlmCall
from llmrel.receiver.server import Receiver


class ServeParts:
    """Analyzers -> findings -> actions (breakers) and the intelligence layer, as one `ServeExtension`."""

    def __init__(self, settings: Settings, client_factory: Callable[[], Client], registry: CollectorRegistry) -> None:
        self._client = client_factory()
        self.analyzer = (Analyzer.from_settings(settings, self._client, registry=registry)
                         if settings.analyzers_enabled else None)
        self.actions = Actions(settings, client_factory, registry)
        wants_intel = settings.explain_findings or settings.content_drift_enabled
        self.intel = Intel(settings, client_factory) if self.analyzer is not None and wants_intel else None

    def on_commit(self, calls: list[LlmCall]) -> None:
        if self.analyzer is None:
            return
        findings = self.analyzer.on_commit(calls)
        self.actions.observe(findings)  # findings declaring a breaker reach it at once
        if self.intel is not None:
            self.intel.observe(calls, findings)  # queued: explained and content-checked on its own thread

    def routers(self, auth: Callable[[Any], bool]) -> Sequence[Any]:
        return [self.actions.router(auth), *([self.intel.router(auth)] if self.intel is not None else [])]

    def start(self) -> None:
        self.actions.start()
        if self.intel is not None:
            self.intel.start()

    def close(self) -> None:
        """Checkpoint the analyzers, then stop the actions and the intelligence layer."""
        try:
            if self.analyzer is not None:
                self.analyzer.close()
        finally:
            self.actions.close()
            if self.intel is not None:
                self.intel.close()
            self._client.close()


def build_receiver(settings: Settings, *, client_factory: Callable[[], Client] | None = None) -> Receiver:
    """The whole `llmrel serve`: ingest plus everything that acts on what it stores."""
    return Receiver(settings, client_factory=client_factory, extension=ServeParts)


def build_tailer(settings: Settings, client: Client, shard: Shard | None = None, **kwargs: Any) -> Tailer:
    """`llmrel analyze`: the analyzers' tailer of `shard`, its spans turned into calls and stored by the same
    adapter the receiver uses (content policy, normalization, pricing, the one `llm_calls` writer).

    Raises:
        RuleFileError: the rule files are invalid.
        PriceFileError: the price file is invalid.
    """
    shard = shard or Shard()
    analyzer = Analyzer.from_settings(settings, client, analyzer_id=shard.analyzer_id, shard=(shard.index, shard.count))
    ingest = StoredSpanCalls(client, CallIngest.from_settings(settings))
    return Tailer(client, analyzer, ingest=ingest, shard=shard, **{"lateness_s": settings.lateness_s, **kwargs})
