"""ClickHouse I/O of the analyzers' state checkpoints (the edges; the engine stays pure; findings are
written with `llmrel.findings.write_findings`).

A checkpoint is one insert into `llm_analyzer_state`: the engine row (`AnalyzerId` = the analyzer id,
with the tailing watermark) and one row per drift stream changed since the last checkpoint
(`AnalyzerId` = `<analyzer id>/stream/<key>`). One insert is one part, so the rows and the watermark
are stored together or not at all. Rows are JSON (`llmrel.analyzers.checkpoint`), never code.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

STATE_TABLE = "llm_analyzer_state"
STATE_COLUMNS = ("AnalyzerId", "Version", "WatermarkTs", "WatermarkTraceId", "WatermarkSpanId", "State")
_STREAM_INFIX = "/stream/"


@dataclass(frozen=True)
class Watermark:
    """Position of `llmrel analyze` in `otel_traces`: the last row read, by (Timestamp, TraceId, SpanId)."""

    ts_ns: int = 0
    trace_id: str = ""
    span_id: str = ""


@dataclass(frozen=True)
class StoredCheckpoint:
    """Raw rows of the latest checkpoint: the engine row (or None) and stream rows, newest first."""

    engine: str | None
    streams: list[str]
    watermark: Watermark
    version: int = 0


def save_checkpoint(client: Client, analyzer_id: str, engine_state: str, stream_rows: Iterable[tuple[str, str]],
                    watermark: Watermark, after_version: int = 0) -> int:
    """Write the engine row, the changed streams and the watermark in one insert, so they move together.

    Returns:
        The version written: now, or just past `after_version` (a stored row dated in the future).
    """
    version = max(time.time_ns(), after_version + 1)
    rows = [(analyzer_id, version, watermark.ts_ns, watermark.trace_id, watermark.span_id, engine_state)]
    rows += [(f"{analyzer_id}{_STREAM_INFIX}{key}", version, 0, "", "", blob) for key, blob in stream_rows]
    client.insert(STATE_TABLE, rows, column_names=list(STATE_COLUMNS))
    return version


def load_checkpoint(client: Client, analyzer_id: str, max_streams: int) -> StoredCheckpoint:
    """The latest engine row of `analyzer_id` and its newest `max_streams` stream rows (unparsed)."""
    rows = client.query(
        f"SELECT WatermarkTs, WatermarkTraceId, WatermarkSpanId, State, Version FROM {STATE_TABLE} "
        "WHERE AnalyzerId = {id:String} ORDER BY Version DESC LIMIT 1", parameters={"id": analyzer_id}).result_rows
    if not rows:
        return StoredCheckpoint(None, [], Watermark())
    ts, trace_id, span_id, blob, version = rows[0]
    streams = client.query(
        f"SELECT State FROM (SELECT AnalyzerId, Version, State FROM {STATE_TABLE} "
        "WHERE startsWith(AnalyzerId, {prefix:String}) ORDER BY Version DESC LIMIT 1 BY AnalyzerId) "
        "ORDER BY Version DESC LIMIT {cap:UInt32}",
        parameters={"prefix": analyzer_id + _STREAM_INFIX, "cap": 2 * max_streams + 1}).result_rows
    return StoredCheckpoint(blob, [r[0] for r in streams], Watermark(int(ts), trace_id, span_id), int(version))
