"""ClickHouse I/O of the analyzers: findings rows and state checkpoints (the edges; the engine stays pure)."""

from __future__ import annotations

import base64
import pickle
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client

from llmrel.analyzers.findings import FINDING_COLUMNS, Finding

FINDINGS_TABLE = "llm_findings"
STATE_TABLE = "llm_analyzer_state"
STATE_COLUMNS = ("AnalyzerId", "Version", "WatermarkTs", "WatermarkTraceId", "WatermarkSpanId", "State")


@dataclass(frozen=True)
class Watermark:
    """Position of `llmrel analyze` in `otel_traces`: the last row read, by (Timestamp, TraceId, SpanId)."""

    ts_ns: int = 0
    trace_id: str = ""
    span_id: str = ""


def write_findings(client: Client, findings: Sequence[Finding]) -> None:
    """One insert of all findings (a no-op for none)."""
    if findings:
        client.insert(FINDINGS_TABLE, [f.row() for f in findings], column_names=list(FINDING_COLUMNS))


def encode_state(state: dict[str, Any]) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 3)).decode()


def decode_state(blob: str) -> dict[str, Any]:
    # The blob is our own checkpoint, written by this analyzer id into our own database.
    return pickle.loads(zlib.decompress(base64.b64decode(blob)))


def save_checkpoint(client: Client, analyzer_id: str, state: dict[str, Any], watermark: Watermark) -> None:
    """Write the state and watermark as one row, so they always move together."""
    row = (analyzer_id, time.time_ns(), watermark.ts_ns, watermark.trace_id, watermark.span_id, encode_state(state))
    client.insert(STATE_TABLE, [row], column_names=list(STATE_COLUMNS))


def load_checkpoint(client: Client, analyzer_id: str) -> tuple[dict[str, Any] | None, Watermark]:
    """The latest checkpoint of `analyzer_id`, or `(None, Watermark())` when there is none."""
    rows = client.query(
        f"SELECT WatermarkTs, WatermarkTraceId, WatermarkSpanId, State FROM {STATE_TABLE} "
        "WHERE AnalyzerId = {id:String} ORDER BY Version DESC LIMIT 1", parameters={"id": analyzer_id}).result_rows
    if not rows:
        return None, Watermark()
    ts, trace_id, span_id, blob = rows[0]
    return decode_state(blob), Watermark(int(ts), trace_id, span_id)
