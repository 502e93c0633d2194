"""Cheaper-model recommendations: per (service, operation, feature), the models actually used, compared.

For each group the incumbent is its most-used model. Another model is recommended only when it is
cheaper per successful call and its quality is statistically not worse: the one-sided upper confidence
bound of (its failure rate − the incumbent's) is below `margin` (a non-inferiority test; a failure is an
error or a call with a rule violation), and its p95 latency is within `latency_ratio` of the incumbent's.
The saving is the difference in cost per successful call (spend as priced at ingest by `llmrel.pricing`)
times the incumbent's successful calls, projected to 30 days at the group's observed rate. Groups also
report prompt growth (input tokens, second half of the period against the first) and the spend on
failed calls (what retries cost).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl
from clickhouse_connect.driver.client import Client
from scipy.stats import norm

_MONTH_NS = 30 * 86_400 * 1_000_000_000
_MIN_SPAN_NS = 3_600 * 1_000_000_000

_STATS_SQL = """
SELECT ServiceName AS service, Operation AS operation, Feature AS feature, Model AS model,
       count() AS calls, countIf(failed) AS failures, countIf(StatusCode = 'Error') AS errors,
       countIf(violated) AS violations, quantile(0.95)(Duration) / 1e6 AS latency_p95_ms,
       avg(OutputTokens) AS output_tokens, countIf(CostUSD IS NOT NULL) AS priced,
       sum(ifNull(CostUSD, 0)) AS spend_usd, varSamp(ifNull(CostUSD, 0)) AS cost_var,
       sumIf(ifNull(CostUSD, 0), failed) AS failed_spend_usd,
       avgIf(InputTokens, Timestamp < fromUnixTimestamp64Nano({mid:Int64})) AS input_tokens_first,
       avgIf(InputTokens, Timestamp >= fromUnixTimestamp64Nano({mid:Int64})) AS input_tokens_second,
       countIf(Timestamp < fromUnixTimestamp64Nano({mid:Int64})) AS calls_first,
       toUnixTimestamp64Nano(min(Timestamp)) AS first_ns, toUnixTimestamp64Nano(max(Timestamp)) AS last_ns
FROM (
    SELECT ServiceName, Operation, Feature, Model, StatusCode, Duration, InputTokens, OutputTokens, CostUSD, Timestamp,
           (TraceId, SpanId) IN (SELECT TraceId, SpanId FROM llm_findings WHERE Kind = 'invariant'
               AND EventTime >= fromUnixTimestamp64Nano({since:Int64})) AS violated,
           StatusCode = 'Error' OR violated AS failed
    FROM llm_calls
    WHERE Timestamp >= fromUnixTimestamp64Nano({since:Int64}) AND Timestamp < fromUnixTimestamp64Nano({until:Int64})
      AND Operation NOT IN ('execute_tool', 'invoke_agent', 'create_agent')
)
GROUP BY service, operation, feature, model
ORDER BY service, operation, feature, calls DESC, model
"""


@dataclass(frozen=True)
class RecommendConfig:
    """Thresholds of a recommendation.

    Attributes:
        margin: largest acceptable increase of the failure rate (absolute, 0.02 = 2 points).
        confidence: one-sided confidence of the non-inferiority test.
        min_calls: fewer calls than this on either model is "too little data".
        latency_ratio: the candidate's p95 latency may be at most this multiple of the incumbent's.
        min_saving: the candidate must be at least this much cheaper per successful call (relative).
        bloat: input tokens growing by more than this share between the halves of the period is flagged.
    """

    margin: float = 0.02
    confidence: float = 0.95
    min_calls: int = 200
    latency_ratio: float = 1.25
    min_saving: float = 0.1
    bloat: float = 0.3


@dataclass
class ModelStats:
    model: str
    calls: int
    failure_rate: float
    failure_rate_ci: tuple[float, float]
    error_rate: float
    violation_rate: float
    latency_p95_ms: float
    output_tokens: float | None
    cost_per_success_usd: float | None
    cost_per_success_ci: tuple[float, float] | None
    spend_usd: float
    failed_spend_usd: float
    monthly_calls: float


@dataclass
class GroupAdvice:
    service: str
    operation: str
    feature: str
    incumbent: str
    models: list[ModelStats]
    recommendation: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _wilson(failures: int, n: int, z: float) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = failures / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _stats(row: dict[str, Any], z: float) -> ModelStats:
    n, failures = int(row["calls"]), int(row["failures"])
    successes = n - failures
    priced = int(row["priced"]) == n and n > 0
    cps = row["spend_usd"] / successes if priced and successes else None
    ci = None
    if cps is not None:
        half = z * math.sqrt(max(row["cost_var"] or 0.0, 0.0) / n) * n / successes
        ci = (max(0.0, cps - half), cps + half)
    span = max(int(row["last_ns"]) - int(row["first_ns"]), _MIN_SPAN_NS)
    return ModelStats(
        model=row["model"], calls=n, failure_rate=failures / n, failure_rate_ci=_wilson(failures, n, z),
        error_rate=int(row["errors"]) / n, violation_rate=int(row["violations"]) / n,
        latency_p95_ms=float(row["latency_p95_ms"]), output_tokens=row["output_tokens"],
        cost_per_success_usd=cps, cost_per_success_ci=ci, spend_usd=float(row["spend_usd"]),
        failed_spend_usd=float(row["failed_spend_usd"]), monthly_calls=n * _MONTH_NS / span)


def non_inferior(fail_c: int, n_c: int, fail_m: int, n_m: int, margin: float, confidence: float) -> tuple[bool, float]:
    """Whether the candidate's failure rate is at most `margin` above the incumbent's, and the upper bound."""
    p_c, p_m = fail_c / n_c, fail_m / n_m
    # Add-one smoothing keeps the standard error honest when a model has no failures in the sample.
    s_c, s_m = (fail_c + 1) / (n_c + 2), (fail_m + 1) / (n_m + 2)
    se = math.sqrt(s_c * (1 - s_c) / n_c + s_m * (1 - s_m) / n_m)
    upper = p_c - p_m + norm.ppf(confidence) * se
    return upper < margin, upper


def recommend(client: Client, since_ns: int, until_ns: int, config: RecommendConfig | None = None) -> list[GroupAdvice]:
    """Advice for every (service, operation, feature) with calls in [since, until)."""
    config = config or RecommendConfig()
    z = float(norm.ppf(1 - (1 - config.confidence) / 2))
    params = {"since": since_ns, "until": until_ns, "mid": since_ns + (until_ns - since_ns) // 2}
    frame = pl.from_arrow(client.query_arrow(_STATS_SQL, parameters=params))
    assert isinstance(frame, pl.DataFrame)
    frame = frame.with_columns(pl.col("service", "operation", "feature", "model").cast(pl.Utf8))
    advice = []
    for (service, operation, feature), group in frame.group_by(["service", "operation", "feature"],
                                                               maintain_order=True):
        rows = group.sort(["calls", "model"], descending=[True, False]).to_dicts()
        advice.append(_advise(str(service), str(operation), str(feature), rows, config, z))
    return advice


def _advise(service: str, operation: str, feature: str, rows: list[dict[str, Any]], config: RecommendConfig,
            z: float) -> GroupAdvice:
    models = [_stats(r, z) for r in rows]
    incumbent, inc_row = models[0], rows[0]
    out = GroupAdvice(service, operation, feature, incumbent.model, models)
    first, second = inc_row["input_tokens_first"], inc_row["input_tokens_second"]
    if (first and second and inc_row["calls_first"] >= config.min_calls
            and inc_row["calls"] - inc_row["calls_first"] >= config.min_calls and second > first * (1 + config.bloat)):
        out.notes.append(f"prompt growth: {incumbent.model} input tokens {first:.0f} -> {second:.0f} "
                         f"({second / first - 1:+.0%}) between the halves of the period")
    if incumbent.failed_spend_usd > 0:
        out.notes.append(f"failed calls cost ${incumbent.failed_spend_usd:.4f} on {incumbent.model} "
                         "(spend that retries repeat)")
    if len(models) < 2:
        out.notes.append("only one model seen: nothing to compare")
        return out
    if incumbent.cost_per_success_usd is None:
        out.notes.append(f"{incumbent.model} is not fully priced: no saving can be computed")
        return out
    best: tuple[float, dict[str, Any]] | None = None
    for cand, cand_row in zip(models[1:], rows[1:], strict=True):
        if cand.cost_per_success_usd is None:
            out.notes.append(f"{cand.model}: not fully priced")
            continue
        if cand.cost_per_success_usd > incumbent.cost_per_success_usd * (1 - config.min_saving):
            continue
        if cand.calls < config.min_calls or incumbent.calls < config.min_calls:
            out.notes.append(f"{cand.model}: too little data ({cand.calls} calls vs {incumbent.calls}; "
                             f"{config.min_calls} each needed)")
            continue
        ok, upper = non_inferior(int(cand_row["failures"]), cand.calls, int(inc_row["failures"]), incumbent.calls,
                                 config.margin, config.confidence)
        if not ok:
            out.notes.append(f"{cand.model}: cheaper but quality may be worse (failure rate "
                             f"{cand.failure_rate:.2%} vs {incumbent.failure_rate:.2%}, upper bound of the "
                             f"difference {upper:+.2%} >= margin {config.margin:.0%})")
            continue
        if cand.latency_p95_ms > incumbent.latency_p95_ms * config.latency_ratio:
            out.notes.append(f"{cand.model}: cheaper and as reliable but slower (p95 {cand.latency_p95_ms:.0f} ms "
                             f"vs {incumbent.latency_p95_ms:.0f} ms)")
            continue
        successes = incumbent.monthly_calls * (1 - incumbent.failure_rate)
        saving = (incumbent.cost_per_success_usd - cand.cost_per_success_usd) * successes
        rec = {"from_model": incumbent.model, "to_model": cand.model, "monthly_saving_usd": round(saving, 2),
               "cost_per_success_usd": [incumbent.cost_per_success_usd, cand.cost_per_success_usd],
               "failure_rate": [incumbent.failure_rate, cand.failure_rate],
               "failure_rate_difference_upper": upper, "margin": config.margin, "confidence": config.confidence,
               "latency_p95_ms": [incumbent.latency_p95_ms, cand.latency_p95_ms]}
        if best is None or saving > best[0]:
            best = (saving, rec)
    if best is not None:
        out.recommendation = best[1]
    return out
