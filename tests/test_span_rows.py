"""Stored spans are read back by the column names the query returned, not by position."""

from __future__ import annotations

import pytest

from llmrel.model import SPAN_COLUMNS, SpanRecord
from llmrel.span_rows import SELECT_ITEMS, SELECT_SPANS, span_reader

SPAN = SpanRecord(1_764_000_000_123_456_789, "ab" * 16, "cd" * 8, "ef" * 8, "k=v", "chat gpt-4o", "Client", "support",
                  {"service.name": "support"}, "scope", "1.0", {"gen_ai.request.model": "gpt-4o"}, 700_000_001,
                  "Error", "boom", [1_764_000_000_200_000_001], ["exception"], [{"exception.type": "E"}],
                  ["12" * 16], ["34" * 8], [""], [{"link": "yes"}])


def test_a_span_reads_back_as_stored_whatever_the_column_order(store):
    store.insert("otel_traces", [SPAN], column_names=list(SPAN_COLUMNS))
    for select in (SELECT_SPANS, ", ".join(reversed(SELECT_ITEMS)), f"'extra' AS note, {SELECT_SPANS}"):
        result = store.query(f"SELECT {select} FROM otel_traces")
        read = span_reader(result.column_names)
        assert [read(row) for row in result.result_rows] == [SPAN]


def test_a_missing_column_is_named():
    with pytest.raises(ValueError, match="duration_ns"):
        span_reader([f for f in SpanRecord._fields if f != "duration_ns"])
