-- Analyzer checkpoints: detector and rule state (zlib-compressed pickle, base64) plus the tailing
-- watermark of `llmrel analyze`, one logical row per analyzer (AnalyzerId, e.g. `serve`, `analyze-0-of-2`).
-- Version is the checkpoint time in ns; the latest version wins.
CREATE TABLE IF NOT EXISTS ${db}.llm_analyzer_state ${on_cluster} (
    AnalyzerId String,
    Version UInt64,
    WatermarkTs Int64,
    WatermarkTraceId String,
    WatermarkSpanId String,
    State String CODEC(ZSTD(1)),
    UpdatedAt DateTime64(3) DEFAULT now64(3)
) ENGINE = ${ReplacingMergeTree}(Version)
ORDER BY AnalyzerId;

-- Cost of failures per hour, service, model, feature and rule: the spend of the calls each finding
-- concerns (SpendUSD) plus the rules' declared business impact (BusinessImpactUSD). Findings of different
-- rules may concern the same call, so add up across rules only with that in mind; per-call kinds
-- (`invariant`, `trace`) are the least overlapping.
CREATE VIEW IF NOT EXISTS ${db}.llm_cost_of_failures ${on_cluster} AS
SELECT
    toStartOfHour(EventTime) AS Hour,
    ServiceName,
    Model,
    Feature,
    Kind,
    RuleId,
    any(Severity) AS RuleSeverity,
    count() AS Findings,
    sum(Calls) AS CallsConcerned,
    sum(CostUSD) AS SpendUSD,
    sum(ImpactUSD) AS BusinessImpactUSD,
    sum(CostUSD + ImpactUSD) AS TotalUSD
FROM ${db}.llm_findings FINAL
GROUP BY Hour, ServiceName, Model, Feature, Kind, RuleId;
