"""`llmrel rules test`: replay stored calls through a rule file (a dry run) and tabulate what would fire.

Calls are read from `llm_calls` with Arrow into polars, analyzed by a fresh `Engine` (nothing is
written), and the findings are summarised per rule with polars.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import polars as pl
from clickhouse_connect.driver.client import Client

from llmrel.analyzers.engine import Engine
from llmrel.analyzers.ruleset import RuleSet
from llmrel.findings import Finding
from llmrel.model import LLM_CALL_COLUMNS, LlmCall, call_from_columns

_CHUNK = 50_000


def load_calls(client: Client, since_ns: int, until_ns: int | None = None) -> pl.DataFrame:
    """`llm_calls` rows in event-time order as a polars frame (Timestamp as int ns)."""
    columns = ", ".join("toUnixTimestamp64Nano(Timestamp) AS TimestampNs" if c == "Timestamp" else f"`{c}`"
                        for c in LLM_CALL_COLUMNS)
    where = "Timestamp >= fromUnixTimestamp64Nano({since:Int64})"
    if until_ns is not None:
        where += " AND Timestamp < fromUnixTimestamp64Nano({until:Int64})"
    table = client.query_arrow(f"SELECT {columns} FROM llm_calls FINAL WHERE {where} ORDER BY Timestamp",
                               parameters={"since": since_ns, "until": until_ns})
    return pl.from_arrow(table)  # type: ignore[return-value]


def frame_to_calls(frame: pl.DataFrame) -> Iterator[LlmCall]:
    """`LlmCall`s from a `load_calls` frame (the Map column arrives as a list of key/value structs)."""
    for row in frame.iter_rows(named=True):
        attributes = row["Attributes"]
        yield call_from_columns({**row, "Timestamp": int(row["TimestampNs"]), "Attributes": (
            {kv["key"]: kv["value"] for kv in attributes} if isinstance(attributes, list) else dict(attributes or {}))})


def replay(ruleset: RuleSet, calls: pl.DataFrame, *, drift: bool = False) -> list[Finding]:
    """Every finding `ruleset` would produce over `calls` (drift off unless asked: it needs warm-up)."""
    if not drift:
        ruleset = dataclasses.replace(ruleset, drift=dataclasses.replace(ruleset.drift, enabled=False))
    engine = Engine(ruleset)
    findings: list[Finding] = []
    for offset in range(0, calls.height, _CHUNK):
        findings += engine.process(list(frame_to_calls(calls.slice(offset, _CHUNK))))
    return findings


def summarize(findings: list[Finding], calls: int) -> pl.DataFrame:
    """One row per rule: findings, share of calls, spend concerned, declared impact, an example message."""
    schema: dict[str, Any] = {"rule_id": pl.String, "kind": pl.String, "severity": pl.String, "calls": pl.Int64,
                              "cost_usd": pl.Float64, "impact_usd": pl.Float64, "message": pl.String}
    frame = pl.DataFrame([{k: getattr(f, k) for k in schema} for f in findings], schema=schema)
    return (frame.group_by("rule_id", "kind", "severity")
            .agg(pl.len().alias("findings"), pl.col("calls").sum().alias("calls_concerned"),
                 pl.col("cost_usd").sum(), pl.col("impact_usd").sum(), pl.col("message").first().alias("example"))
            .with_columns((pl.col("findings") / max(calls, 1)).alias("per_call"))
            .sort(["findings", "rule_id"], descending=[True, False]))
