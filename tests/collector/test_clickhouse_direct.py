"""The clickhouse-direct path: the contrib ClickHouse exporter writes `otel_traces` in llmrel's database.

A ClickHouse server (which the exporter needs) cannot run here, so the exporter's INSERT is
reproduced: its column list and value formats (`exporter_rows`) sent over the native protocol
into llmrel's migrated schema on the embedded engine, the same SQL engine as the server.
"""

from __future__ import annotations

from llmrel.model import SPAN_COLUMNS, SpanRecord
from llmrel.normalize import normalize_span
from tests.collector.collector_harness import probe_store, run_llmrel
from tests.collector.exporter_rows import EXPORTER_INSERT_COLUMNS, chat_trace, insert_like_exporter

# The exporter's own DDL (v0.161.0 internal/sqltemplates/traces_table.sql), column by column.
EXPORTER_COLUMN_TYPES = {
    "Timestamp": "DateTime64(9)", "TraceId": "String", "SpanId": "String", "ParentSpanId": "String",
    "TraceState": "String", "SpanName": "LowCardinality(String)", "SpanKind": "LowCardinality(String)",
    "ServiceName": "LowCardinality(String)", "ResourceAttributes": "Map(LowCardinality(String), String)",
    "ScopeName": "String", "ScopeVersion": "String", "SpanAttributes": "Map(LowCardinality(String), String)",
    "Duration": "UInt64", "StatusCode": "LowCardinality(String)", "StatusMessage": "String",
    "Events.Timestamp": "Array(DateTime64(9))", "Events.Name": "Array(LowCardinality(String))",
    "Events.Attributes": "Array(Map(LowCardinality(String), String))", "Links.TraceId": "Array(String)",
    "Links.SpanId": "Array(String)", "Links.TraceState": "Array(String)",
    "Links.Attributes": "Array(Map(LowCardinality(String), String))",
}
# Times as integer nanoseconds, everything else as stored.
_READ_BACK = ", ".join(
    "toUnixTimestamp64Nano(Timestamp)" if c == "Timestamp"
    else "arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`)" if c == "Events.Timestamp"
    else f"`{c}`"
    for c in EXPORTER_INSERT_COLUMNS
)


def _rows():
    return (chat_trace(0, input_tokens=120, output_tokens=40)
            + chat_trace(1, input_tokens=3000, output_tokens=900, error_type="RateLimitError", duration_ms=2500))


def test_llmrel_schema_has_the_exporter_columns_and_types(store):
    types = dict(store.query("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                             "AND table = 'otel_traces'").result_rows)
    assert {c: types[c] for c in EXPORTER_INSERT_COLUMNS} == EXPORTER_COLUMN_TYPES
    assert list(EXPORTER_INSERT_COLUMNS) == list(SPAN_COLUMNS)


def test_exporter_insert_lands_in_otel_traces_unchanged(store):
    rows = _rows()
    insert_like_exporter(store, rows)

    stored = store.query(f"SELECT {_READ_BACK} FROM otel_traces ORDER BY SpanId").result_rows
    assert [tuple(r) for r in stored] == sorted(rows, key=lambda r: r[2])
    lookup = store.query("SELECT TraceId, min(Start), max(End) FROM otel_traces_trace_id_ts "
                         "GROUP BY TraceId ORDER BY TraceId").result_rows
    assert [r[0] for r in lookup] == sorted({r[1] for r in rows})


def test_exporter_rows_normalize_like_received_spans(store):
    insert_like_exporter(store, _rows())

    stored = store.query(f"SELECT {_READ_BACK} FROM otel_traces ORDER BY SpanId").result_rows
    calls = [call for row in stored if (call := normalize_span(SpanRecord(*row))) is not None]
    assert [(c.span_id, c.provider, c.operation, c.request_model, c.response_model, c.input_tokens,
             c.output_tokens, c.duration_ns, c.status_code, c.error_type) for c in calls] == [
        ("0000000000000002", "openai", "chat", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 120, 40,
         800_000_000, "Unset", ""),
        ("0000000000000004", "openai", "chat", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 3000, 900,
         2_500_000_000, "Error", "RateLimitError"),
    ]


def test_llmrel_analyze_turns_exporter_rows_into_llm_calls_and_findings(tmp_path):
    """The whole clickhouse-direct flow with the real CLI: `llmrel migrate`, the exporter's INSERT,
    then `llmrel analyze --once` (twice: a second run must add nothing). Each step is its own
    process, as in production, so each owns the embedded store in turn."""
    store_url = f"chdb://{tmp_path / 'store'}"
    keep_forever = {"LLMREL_TRACES_TTL_DAYS": "0", "LLMREL_CALLS_TTL_DAYS": "0", "LLMREL_FINDINGS_TTL_DAYS": "0"}
    run_llmrel("migrate", "--clickhouse-url", store_url, **keep_forever)  # the rows have fixed 2025 times
    probe_store(store_url, queries={}, inserts=[("otel_traces", list(EXPORTER_INSERT_COLUMNS), _rows())])
    for _ in range(2):
        run_llmrel("analyze", "--once", "--clickhouse-url", store_url, **keep_forever)

    rows = probe_store(store_url, queries={
        "calls": "SELECT SpanId, Provider, Model, InputTokens, OutputTokens, StatusCode, ErrorType, CostStatus "
                 "FROM llm_calls ORDER BY SpanId",
        "calls_final": "SELECT count() FROM llm_calls FINAL",
        "findings": "SELECT DISTINCT RuleId, TraceId, SpanId FROM llm_findings FINAL",
    })
    assert rows["calls"] == [
        ["0000000000000002", "openai", "gpt-4o-mini", 120, 40, "Unset", "", "priced"],
        ["0000000000000004", "openai", "gpt-4o-mini", 3000, 900, "Error", "RateLimitError", "priced"],
    ]
    assert rows["calls_final"] == [[2]]
    assert ["call-error", f"{2:032x}", "0000000000000004"] in rows["findings"]
    assert all(span != "0000000000000002" for _, _, span in rows["findings"]), "the successful call has no finding"
