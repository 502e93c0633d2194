"""Reading `otel_traces` rows back as `SpanRecord`s: the select list and the row conversion.

Shared by everything that normalizes spans some other writer stored (`llmrel analyze`, inserts over
the ClickHouse HTTP interface), so they all see a row exactly as the receiver would have built it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmrel.model import SPAN_COLUMNS, SpanRecord

SELECT_SPANS = ", ".join(
    {"Timestamp": "toUnixTimestamp64Nano(Timestamp)",
     "Events.Timestamp": "arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`)"}.get(c, f"`{c}`")
    for c in SPAN_COLUMNS)


def row_to_span(row: Sequence[Any]) -> SpanRecord:
    """An `otel_traces` row selected with `SELECT_SPANS` (column order = `SPAN_COLUMNS`)."""
    values = list(row)
    values[0] = int(values[0])
    values[12] = int(values[12])
    values[15] = [int(t) for t in values[15]]
    for i in (8, 11):
        values[i] = dict(values[i])
    for i in (17, 21):
        values[i] = [dict(m) for m in values[i]]
    return SpanRecord(*values)
