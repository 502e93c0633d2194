"""`llmrel report`: what happened per service and model, computed in ClickHouse, shaped with polars."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import polars as pl
from clickhouse_connect.driver.client import Client

from llmrel.durations import parse_duration
from llmrel.pricing import UNPRICED_SQL, USAGE_UNKNOWN_SQL

_MAX_NS = 1 << 63  # DateTime64(9): signed 64-bit nanoseconds

_REPORT_SQL = f"""
SELECT
    ServiceName AS service,
    Model AS model,
    arraySort(groupUniqArrayIf(ResponseModel, ResponseModel != '')) AS response_models,
    count() AS calls,
    countIf(StatusCode = 'Error') AS errors,
    round(errors / calls, 4) AS error_rate,
    round(quantile(0.5)(Duration) / 1e6, 1) AS p50_ms,
    round(quantile(0.95)(Duration) / 1e6, 1) AS p95_ms,
    round(quantile(0.99)(Duration) / 1e6, 1) AS p99_ms,
    round(quantileIf(0.5)(TimeToFirstToken, TimeToFirstToken IS NOT NULL) / 1e6, 1) AS ttft_p50_ms,
    sum(ifNull(InputTokens, 0)) AS input_tokens,
    sum(ifNull(OutputTokens, 0)) AS output_tokens,
    countIf({UNPRICED_SQL}) AS unpriced_calls,
    countIf({USAGE_UNKNOWN_SQL}) AS no_usage_calls,
    countIf({USAGE_UNKNOWN_SQL} AND IsStreaming) AS no_usage_streams,
    unpriced_calls + no_usage_calls AS cost_unknown_calls,
    if(cost_unknown_calls = calls, NULL, round(sum(ifNull(CostUSD, 0)), 6)) AS cost_usd
FROM llm_calls FINAL
WHERE Timestamp >= fromUnixTimestamp64Nano({{since:Int64}}) AND Timestamp < fromUnixTimestamp64Nano({{until:Int64}})
GROUP BY service, model
ORDER BY ifNull(cost_usd, 0) DESC, calls DESC
"""
_COUNTS = ("calls", "errors", "input_tokens", "output_tokens", "unpriced_calls", "no_usage_calls",
           "no_usage_streams", "cost_unknown_calls")


def parse_since(text: str, now_s: float | None = None) -> int:
    """`1h`, `30m`, `7d` (ago) or an ISO-8601 time -> epoch nanoseconds.

    Raises:
        ValueError: on anything else, or on a time outside what the store holds (1970 to 2262).
    """
    now_s = time.time() if now_s is None else now_s
    try:
        ns = int(now_s * 1e9) - parse_duration(text) * 1_000_000_000
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(f"expected a duration like 1h/30m/7d or an ISO time, got {text[:80]!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        ns = int(moment.timestamp() * 1e9)
    if not 0 <= ns < _MAX_NS:
        raise ValueError(f"{text[:80]!r} is out of range: times go from 1970-01-01 to 2262-04-11 UTC")
    return ns


def call_stats(client: Client, since_ns: int, until_ns: int) -> pl.DataFrame:
    """One row per (service, model): calls, errors, latency quantiles, tokens, cost and the calls whose
    cost is unknown (`unpriced`, or successful without usage; `cost_usd` is null when that is all of them)."""
    table = client.query_arrow(_REPORT_SQL, parameters={"since": since_ns, "until": until_ns})
    return pl.from_arrow(table)  # type: ignore[return-value]


def _findings(client: Client, since_ns: int) -> dict[str, Any] | None:
    try:
        from llmrel.findings_summary import findings_summary
    except ImportError:
        return None
    return findings_summary(client, since_ns)


def build_report(client: Client, since_ns: int, until_ns: int | None = None) -> dict[str, Any]:
    """The whole report as plain data (what `--json` prints and the REST API returns)."""
    until_ns = until_ns or time.time_ns()
    stats = call_stats(client, since_ns, until_ns)
    totals: dict[str, Any] = {name: int(stats[name].sum()) if stats.height else 0 for name in _COUNTS}
    totals["cost_usd"] = round(float(stats["cost_usd"].sum()), 6) if stats.height else 0.0
    report: dict[str, Any] = {"since_ns": since_ns, "until_ns": until_ns, "totals": totals,
                              "by_service_model": stats.to_dicts()}
    findings = _findings(client, since_ns)
    if findings is not None:
        report["findings"] = findings
    return report
