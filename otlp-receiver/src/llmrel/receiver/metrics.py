"""Prometheus self-metrics of one receiver (own registry, so several receivers can share a process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class ReceiverMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("llmrel_export_requests", "OTLP export requests by transport and outcome",
                                ["transport", "outcome"], registry=r)
        self.spans_received = Counter("llmrel_spans_received", "Spans decoded from export requests", registry=r)
        self.spans_rejected = Counter("llmrel_spans_rejected", "Spans rejected individually (partial success)",
                                      registry=r)
        self.spans_stored = Counter("llmrel_spans_stored", "Spans committed to otel_traces", registry=r)
        self.calls_stored = Counter("llmrel_llm_calls_stored", "LLM calls committed to llm_calls", ["cost_status"],
                                    registry=r)
        self.normalize_errors = Counter("llmrel_normalize_errors", "Spans whose normalization raised", registry=r)
        self.insert_seconds = Histogram("llmrel_insert_duration_seconds", "Duration of one group-commit insert",
                                        buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10), registry=r)
        self.insert_failures = Counter("llmrel_insert_failures", "Group commits that failed", registry=r)
        self.batch_spans = Histogram("llmrel_batch_spans", "Spans per group commit",
                                     buckets=(1, 10, 100, 1000, 5000, 20000, 100000), registry=r)
        self.inflight_bytes = Gauge("llmrel_inflight_bytes", "Request bytes accepted and not yet acknowledged",
                                    registry=r)
        self.queue_depth = Gauge("llmrel_queue_depth", "Exports waiting for the next group commit", registry=r)
        self.store_free_bytes = Gauge("llmrel_store_free_bytes", "Free space on the embedded store's volume",
                                      registry=r)
        self.store_disk_low = Gauge("llmrel_store_disk_low",
                                    "1 while free space is below the reserve (writes refused, merges paused)",
                                    registry=r)
        self.store_tables_reloaded = Counter("llmrel_store_tables_reloaded",
                                             "Tables reloaded after a disk incident left a broken part",
                                             registry=r)
        self.store_detached_parts = Gauge("llmrel_store_detached_parts",
                                          "Parts the engine set aside at start (broken, unexpected): data not "
                                          "visible in the tables", ["table", "reason"], registry=r)
        self.analyzer_queue_depth = Gauge("llmrel_analyzer_queue_depth", "Committed batches waiting for analysis",
                                          registry=r)
