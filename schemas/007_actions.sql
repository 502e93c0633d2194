-- The action layer (llmrel.actions): circuit breakers that apps honour, Grafana alert inputs, canary gates.

-- The version of the service that made each call (resource attribute `service.version`): the canary gate
-- compares a canary version's calls with the baseline version's.
ALTER TABLE ${db}.llm_calls ${on_cluster}
    ADD COLUMN IF NOT EXISTS ServiceVersion LowCardinality(String) CODEC(ZSTD(1)) AFTER ServiceName;

-- Audit log and state of the breakers: one row per transition (or dry-run / override change) of a scope,
-- written only by the breaker leader. Seq numbers a scope's rows 1, 2, 3, ...; a scope's current state is
-- its row with the highest Seq. (Scope, Seq) is the sorting key of a ReplacingMergeTree versioned by the
-- leader's Term, so if two leaders ever wrote the same step (a lease overlap), the newer term's row is the
-- one that stays: a step is decided once. Read with FINAL or argMax for exact results.
-- Cause: findings | alert | alert_resolved | manual | release | min_open | probe_healthy | probe_unhealthy
-- | dry_run. FindingIds / AlertFingerprint say which inputs caused it; Actor who (llmrel, grafana, a user);
-- Override is the state a person pinned ('' when automated); Since when the scope entered ToState.
CREATE TABLE IF NOT EXISTS ${db}.llm_breaker_events ${on_cluster} (
    Scope String CODEC(ZSTD(1)),
    Seq UInt64 CODEC(Delta, ZSTD(1)),
    Time DateTime64(3) CODEC(Delta, ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    FromState LowCardinality(String) CODEC(ZSTD(1)),
    ToState LowCardinality(String) CODEC(ZSTD(1)),
    Cause LowCardinality(String) CODEC(ZSTD(1)),
    Reason String CODEC(ZSTD(3)),
    FindingIds Array(String) CODEC(ZSTD(1)),
    AlertFingerprint String CODEC(ZSTD(1)),
    Actor String CODEC(ZSTD(1)),
    DryRun Bool CODEC(ZSTD(1)),
    Override LowCardinality(String) CODEC(ZSTD(1)),
    OpenedBy LowCardinality(String) CODEC(ZSTD(1)),
    Since DateTime64(3) CODEC(Delta, ZSTD(1)),
    Term UInt64 CODEC(ZSTD(1))
) ENGINE = ${ReplacingMergeTree}(Term)
ORDER BY (Scope, Seq);

-- Inputs that arrive over HTTP at any receiver (Grafana alerts, manual overrides, dry-run switches), kept
-- until the breaker leader has applied them. SignalId is derived from the input (an alert's fingerprint,
-- status and start), so a notification delivered twice is one signal. Payload is JSON.
CREATE TABLE IF NOT EXISTS ${db}.llm_breaker_signals ${on_cluster} (
    SignalId String CODEC(ZSTD(1)),
    ReceivedAt DateTime64(3) CODEC(Delta, ZSTD(1)),
    Kind LowCardinality(String) CODEC(ZSTD(1)),
    Scope String CODEC(ZSTD(1)),
    Payload String CODEC(ZSTD(3)),
    Actor String CODEC(ZSTD(1))
) ENGINE = ${ReplacingMergeTree}
ORDER BY (ReceivedAt, SignalId)
TTL toDateTime(ReceivedAt) + toIntervalDay(7);

-- Leader lease of the breaker controller: one row per (term, holder), renewed by the holder. The leader of
-- a term is the first holder (by name) among the claims made within the claim window; SignalCursor and
-- FindingCursor tell the next leader where the inputs were applied up to.
CREATE TABLE IF NOT EXISTS ${db}.llm_breaker_leases ${on_cluster} (
    Name LowCardinality(String),
    Term UInt64,
    Holder String,
    ClaimedAt DateTime64(3),
    RenewedAt DateTime64(3),
    ExpiresAt DateTime64(3),
    SignalCursor DateTime64(3),
    FindingCursor DateTime64(3)
) ENGINE = ${ReplacingMergeTree}(RenewedAt)
ORDER BY (Name, Term, Holder)
TTL toDateTime(RenewedAt) + toIntervalDay(1);

ALTER TABLE ${db}.llm_breaker_events ${on_cluster} MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_compressed_bytes_to_fsync_after_merge = 1,
    old_parts_lifetime = 480;
ALTER TABLE ${db}.llm_breaker_signals ${on_cluster} MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_compressed_bytes_to_fsync_after_merge = 1,
    old_parts_lifetime = 480;
