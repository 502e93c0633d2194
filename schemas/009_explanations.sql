-- The intelligence layer (llmrel.intel): what the calls behind a finding have in common.
--
-- One row per explained finding: the affected calls (violations, or the calls of a stream after a drift's
-- onset) contrasted with a baseline (the same stream before, and healthy calls beside them) over every
-- stored dimension. Causes.* are parallel arrays, best first: a cause is one `dimension=value` or a pair
-- joined by ` & `; TargetShare/BaselineShare the fraction of affected/baseline calls that have it, Lift
-- their ratio, PValue the one-sided Fisher test corrected for the number of comparisons (Bonferroni).
-- Verdict: explained | unexplained (no single dimension explains it) | insufficient (too few calls).
-- Narrative is an optional generated summary of these numbers (NarrativeModel says which model wrote it).
-- Recomputing an explanation writes a new row: read with FINAL (newest ComputedAt wins).
CREATE TABLE IF NOT EXISTS ${db}.llm_explanations ${on_cluster} (
    FindingId String CODEC(ZSTD(1)),
    ComputedAt DateTime64(3) CODEC(Delta, ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    RuleId LowCardinality(String) CODEC(ZSTD(1)),
    Kind LowCardinality(String) CODEC(ZSTD(1)),
    Verdict LowCardinality(String) CODEC(ZSTD(1)),
    TopCause String CODEC(ZSTD(1)),
    Summary String CODEC(ZSTD(3)),
    Scope String CODEC(ZSTD(3)),
    TargetCalls UInt64 CODEC(ZSTD(1)),
    BaselineCalls UInt64 CODEC(ZSTD(1)),
    Causes Nested(
        Cause String,
        TargetCalls UInt64,
        BaselineCalls UInt64,
        TargetShare Float64,
        BaselineShare Float64,
        Lift Float64,
        PValue Float64
    ),
    Narrative String CODEC(ZSTD(3)),
    NarrativeModel LowCardinality(String) CODEC(ZSTD(1)),
    ElapsedMs Float64 CODEC(ZSTD(1))
) ENGINE = ${ReplacingMergeTree}(ComputedAt)
ORDER BY FindingId
${ttl_explanations};
