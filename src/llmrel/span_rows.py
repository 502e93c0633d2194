"""Reading `otel_traces` rows back as `SpanRecord`s: the select list and the row conversion.

Shared by everything that normalizes spans some other writer stored (`llmrel analyze`, inserts over
the ClickHouse HTTP interface), so they all see a row exactly as the receiver would have built it.
`SELECT_SPANS` names each column after its `SpanRecord` field, and rows are read by the column
names the query returned, never by position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from llmrel.model import SPAN_COLUMNS, SpanRecord

_EXPRESSIONS = {"Timestamp": "toUnixTimestamp64Nano(Timestamp)",
                "Events.Timestamp": "arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`)"}

SELECT_ITEMS: tuple[str, ...] = tuple(f"{_EXPRESSIONS.get(column, f'`{column}`')} AS {field}"
                                      for column, field in zip(SPAN_COLUMNS, SpanRecord._fields, strict=True))
SELECT_SPANS = ", ".join(SELECT_ITEMS)

_FIELDS = SpanRecord._fields
_INTS = tuple(_FIELDS.index(f) for f in ("timestamp_ns", "duration_ns"))
_INT_LISTS = tuple(_FIELDS.index(f) for f in ("events_timestamp",))
_MAPS = tuple(_FIELDS.index(f) for f in ("resource_attributes", "span_attributes"))
_MAP_LISTS = tuple(_FIELDS.index(f) for f in ("events_attributes", "links_attributes"))

SpanReader = Callable[[Sequence[Any]], SpanRecord]


def span_reader(column_names: Sequence[str]) -> SpanReader:
    """The conversion of rows whose columns are `column_names` (as a `SELECT_SPANS` query returned them,
    in any order, extra columns ignored) into `SpanRecord`s. Names are resolved once, not per row.

    Raises:
        ValueError: a `SpanRecord` field is not among `column_names`.
    """
    names = list(column_names)
    missing = [f for f in _FIELDS if f not in names]
    if missing:
        raise ValueError(f"span rows lack the columns {missing}")
    pick = itemgetter(*(names.index(f) for f in _FIELDS))

    def read(row: Sequence[Any]) -> SpanRecord:
        values = list(pick(row))
        for i in _INTS:
            values[i] = int(values[i])
        for i in _INT_LISTS:
            values[i] = [int(t) for t in values[i]]
        for i in _MAPS:
            values[i] = dict(values[i])
        for i in _MAP_LISTS:
            values[i] = [dict(m) for m in values[i]]
        return SpanRecord._make(values)

    return read
