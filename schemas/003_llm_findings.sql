-- One row per analyzer finding: a per-call invariant violation, a per-trace limit crossed, a windowed
-- rate or budget exceeded, or a drift in a stream metric (llmrel.analyzers).
-- FindingId is a hash of what identifies the finding (rule, keys, trace/span or window/onset), never of
-- DetectedAt, and it ends the sorting key: a finding written twice (restart, replay) collapses on merge;
-- read with FINAL (or argMax) for exact counts. All other sorting-key columns are fixed by FindingId.
-- Kind: invariant (one call), trace (per-trace limit), window (rate over a window), budget, drift.
-- Model is the call's model for per-call kinds and the requested model (the stream key) for drift;
-- EventTime is the call's time, or for drift the onset of the new regime; Observed/Expected are the
-- measured and allowed values (drift: mean after / mean before).
-- Grafana: time filter on EventTime (when it happened) or DetectedAt (when we noticed), then
-- ServiceName / RuleId / Severity / Kind filters.
CREATE TABLE IF NOT EXISTS ${db}.llm_findings ${on_cluster} (
    FindingId String CODEC(ZSTD(1)),
    Kind LowCardinality(String) CODEC(ZSTD(1)),
    RuleId LowCardinality(String) CODEC(ZSTD(1)),
    Severity LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Model LowCardinality(String) CODEC(ZSTD(1)),
    Operation LowCardinality(String) CODEC(ZSTD(1)),
    Feature LowCardinality(String) CODEC(ZSTD(1)),
    Tenant LowCardinality(String) CODEC(ZSTD(1)),
    Metric LowCardinality(String) CODEC(ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    Observed Nullable(Float64) CODEC(ZSTD(1)),
    Expected Nullable(Float64) CODEC(ZSTD(1)),
    Message String CODEC(ZSTD(3)),
    Calls UInt64 CODEC(ZSTD(1)),
    CostUSD Float64 CODEC(ZSTD(1)),
    ImpactUSD Float64 CODEC(ZSTD(1)),
    Confidence Nullable(Float64) CODEC(ZSTD(1)),
    EventTime DateTime64(9) CODEC(Delta, ZSTD(1)),
    DetectedAt DateTime64(3) CODEC(Delta, ZSTD(1)),
    Attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_rule RuleId TYPE set(512) GRANULARITY 4,
    INDEX idx_tenant Tenant TYPE bloom_filter(0.01) GRANULARITY 4
) ENGINE = ${ReplacingMergeTree}(DetectedAt)
PARTITION BY toYYYYMM(EventTime)
ORDER BY (ServiceName, Kind, RuleId, toStartOfHour(EventTime), FindingId)
${ttl_findings}
SETTINGS index_granularity = 8192;
