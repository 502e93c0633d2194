"""The gate's data: a service's calls by `ServiceVersion` over a recent window, read with polars.

A call counts as an invariant violation when an invariant finding (other than `no_error`, which
the error rate already covers) names it. Each version contributes at most `max_calls` of its
newest calls.
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl
from clickhouse_connect.driver.client import Client

from llmrel.actions.gate import VersionSample

_CALLS_SQL = """
SELECT ServiceVersion AS version, Duration / 1e6 AS latency_ms, toBool(StatusCode = 'Error') AS error,
       CostUSD AS cost, toBool(SpanId IN (
           SELECT SpanId FROM llm_findings
           WHERE Kind = 'invariant' AND Metric != 'no_error' AND ServiceName = {service:String}
             AND EventTime >= fromUnixTimestamp64Nano({since:Int64})
       )) AS violated
FROM llm_calls FINAL
WHERE ServiceName = {service:String} AND ServiceVersion IN {versions:Array(String)}
  AND Timestamp >= fromUnixTimestamp64Nano({since:Int64})
ORDER BY Timestamp DESC
LIMIT {max_calls:UInt32} BY ServiceVersion
"""

_VERSIONS_SQL = """
SELECT ServiceVersion, count() AS calls, min(Timestamp) AS first_seen
FROM llm_calls
WHERE ServiceName = {service:String} AND ServiceVersion != '' AND Timestamp >= fromUnixTimestamp64Nano({since:Int64})
GROUP BY ServiceVersion
"""


def window_start_ns(window_s: int, now_ns: int | None = None) -> int:
    return (now_ns if now_ns is not None else time.time_ns()) - window_s * 1_000_000_000


def guess_versions(client: Client, service: str, since_ns: int) -> tuple[str | None, str | None]:
    """(canary, baseline) when not given: the version seen first most recently, and the busiest other one."""
    rows = client.query(_VERSIONS_SQL, parameters={"service": service, "since": since_ns}).result_rows
    if not rows:
        return None, None
    canary = max(rows, key=lambda r: r[2])[0]
    others = [r for r in rows if r[0] != canary]
    baseline = max(others, key=lambda r: r[1])[0] if others else None
    return str(canary), (str(baseline) if baseline is not None else None)


def load_samples(client: Client, service: str, canary: str, baseline: str, since_ns: int,
                 max_calls: int = 50_000) -> tuple[VersionSample, VersionSample]:
    """Both versions' samples (empty when a version has no calls)."""
    table = client.query_arrow(_CALLS_SQL, parameters={"service": service, "versions": [canary, baseline],
                                                       "since": since_ns, "max_calls": max_calls})
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return _sample(frame, canary), _sample(frame, baseline)


def _sample(frame: pl.DataFrame, version: str) -> VersionSample:
    calls = frame.filter(pl.col("version") == version) if frame.height else frame
    if not calls.height:
        return VersionSample(version, 0, 0, 0)
    ok = calls.filter(~pl.col("error"))
    priced_ok = ok.filter(pl.col("cost").is_not_null())
    return VersionSample(
        version=version, calls=calls.height, errors=int(calls["error"].sum()),
        violations=int(calls["violated"].sum()),
        latencies_ms=calls["latency_ms"].cast(pl.Float64).to_numpy(),
        success_costs=priced_ok["cost"].cast(pl.Float64).to_numpy() if priced_ok.height else np.empty(0),
        cost_usd=float(calls["cost"].fill_null(0.0).sum()), successes=ok.height)
