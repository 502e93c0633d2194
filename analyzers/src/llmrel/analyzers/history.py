"""Warm start: drift baselines from each stream's stored `llm_calls`, so a start without a checkpoint is not blind.

One bounded query reads the last `drift.history_hours` of calls, at most `drift.history_calls` of the
newest per stream, only the columns the drift metrics use; polars then computes, per stream, per
service and overall, each metric's sample count, mean and variance on the monitored scale (`log1p`
for sizes and times, 0/1 for rates) and, per stream, the response-model mix. `Engine.warm_start`
seeds the monitors of streams that no checkpoint restored; a sharded analyzer (`llmrel analyze
--shard i/N`) first keeps only its own streams' calls (`in_shard`), so its streams and their parents
start from what that shard will see. Refusal and rule-violation rates need
the text and the rules, so they are not seeded: they start from their parents' priors as before.
"""

from __future__ import annotations

import polars as pl
from clickhouse_connect.driver.client import Client

from llmrel.analyzers.callfields import FINISH_LENGTH, STATUS_ERROR, shard_of
from llmrel.analyzers.drift import METRICS, DriftConfig
from llmrel.analyzers.streams import ANY, StreamHistory

_MAX_ROWS = 2_000_000  # whatever the number of streams, the warm start reads at most this many calls

_QUERY = """
SELECT ServiceName AS service, if(RequestModel != '', RequestModel, Model) AS model, Operation AS operation,
       Feature AS feature, StatusCode = {error:String} AS failed, Duration / 1e6 AS latency_ms,
       TimeToFirstToken / 1e6 AS ttft_ms, InputTokens AS input_tokens, OutputTokens AS output_tokens,
       CostUSD AS cost_usd, FinishReason AS finish_reason, ToolCalls AS tool_calls, ResponseModel AS response_model,
       lengthUTF8(OutputText) AS output_chars
FROM llm_calls
WHERE Timestamp >= fromUnixTimestamp64Nano({since:Int64}) AND Timestamp < fromUnixTimestamp64Nano({until:Int64})
ORDER BY Timestamp DESC
LIMIT {per_stream:UInt32} BY service, model, operation, feature
LIMIT {total:UInt32}
"""


def load_history(client: Client, config: DriftConfig, now_ns: int) -> pl.DataFrame:
    """The stored calls a warm start learns from (newest first, bounded per stream and in total)."""
    if config.history_hours <= 0 or config.history_calls <= 0:
        return pl.DataFrame()
    since = now_ns - int(config.history_hours * 3600e9)
    table = client.query_arrow(_QUERY, parameters={
        "error": STATUS_ERROR, "since": since, "until": now_ns, "per_stream": config.history_calls,
        "total": _MAX_ROWS})
    return pl.from_arrow(table)  # type: ignore[return-value]


def in_shard(frame: pl.DataFrame, index: int, count: int, by_feature: bool = False) -> pl.DataFrame:
    """The calls of the streams shard `index` of `count` analyzes (`callfields.shard_of` of their stream key)."""
    if count <= 1 or frame.is_empty():
        return frame
    keys = _keys(by_feature)
    streams = frame.select(keys).unique()
    mine = streams.filter(pl.Series([shard_of(key, count) == index for key in streams.iter_rows()]))
    return frame.join(mine, on=keys, how="semi")


def _keys(by_feature: bool) -> list[str]:
    return ["service", "model", "operation", *(["feature"] if by_feature else [])]


def _metric_values() -> dict[str, pl.Expr]:
    """Each seeded metric on its monitored scale, null where the call does not inform it (as in `streams`)."""
    failed = pl.col("failed").cast(pl.Boolean)
    ok = ~failed

    def log_scale(column: str, scale: float = 1.0) -> pl.Expr:
        value = pl.col(column).cast(pl.Float64) * scale
        return pl.when(value > 0).then(value.log1p()).otherwise(pl.when(value.is_not_null()).then(0.0))

    return {
        "error_rate": failed.cast(pl.Float64),
        "cost_usd": log_scale("cost_usd", METRICS["cost_usd"].scale),
        "latency_ms": pl.when(ok).then(log_scale("latency_ms")),
        "ttft_ms": pl.when(ok).then(log_scale("ttft_ms")),
        "input_tokens": pl.when(ok).then(log_scale("input_tokens")),
        "output_tokens": pl.when(ok).then(log_scale("output_tokens")),
        "length_finish_rate": pl.when(ok & (pl.col("finish_reason") != "")).then(
            (pl.col("finish_reason") == FINISH_LENGTH).cast(pl.Float64)),
        "tool_call_rate": pl.when(ok).then((pl.col("tool_calls") > 0).cast(pl.Float64)),
        "output_chars": pl.when(ok & (pl.col("output_chars") > 0)).then(log_scale("output_chars")),
    }


def stream_histories(frame: pl.DataFrame, by_feature: bool = False) -> list[StreamHistory]:
    """Per stream, per service and overall: calls, (count, mean, variance) per metric, response models."""
    if frame.is_empty():
        return []
    keys = _keys(by_feature)
    values = _metric_values()
    frame = frame.select(*keys, "response_model", **values)
    aggregates = [pl.len().alias("calls")]
    for name in values:
        aggregates += [pl.col(name).count().alias(f"{name}:n"), pl.col(name).mean().alias(f"{name}:mean"),
                       pl.col(name).var().alias(f"{name}:var")]
    star = pl.lit(ANY)
    levels = [
        frame.group_by(keys).agg(aggregates),
        frame.group_by("service").agg(aggregates).with_columns(**{k: star for k in keys[1:]}),
        frame.select(aggregates).with_columns(**{k: star for k in keys}),
    ]
    mixes: dict[tuple[str, ...], dict[str, int]] = {}
    for *stream, model, count in (frame.filter(pl.col("response_model") != "")
                                  .group_by(*keys, "response_model").len().iter_rows()):
        mixes.setdefault(tuple(stream), {})[model] = count
    histories = []
    for level in levels:
        for row in level.iter_rows(named=True):
            key = tuple(row[k] for k in keys)
            metrics = {name: (row[f"{name}:n"], row[f"{name}:mean"], row[f"{name}:var"] or 0.0)
                       for name in values if row[f"{name}:n"]}
            histories.append(StreamHistory(key=key, calls=row["calls"], metrics=metrics, models=mixes.get(key, {})))
    return histories
