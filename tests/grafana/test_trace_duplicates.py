"""A span stored twice in `otel_traces` (an export retried after a commit its sender never heard of,
or a table committed while its materialized view failed) shows once in the trace view."""

from __future__ import annotations

from llmrel.grafana.provisioning import build_bundle
from llmrel.model import SPAN_COLUMNS
from tests.grafana.conftest import FROM_MS, TO_MS, TRACE_ID, dashboard_queries, new_store, trace_spans
from tests.grafana.macros import expand_macros


def test_trace_view_shows_each_span_once(chdb_dir):
    store = new_store(chdb_dir)
    try:
        for _ in range(2):  # two inserts: two parts, as a retried export writes them
            store.insert("otel_traces", trace_spans(), column_names=list(SPAN_COLUMNS))
        assert store.query(f"SELECT count() FROM otel_traces WHERE TraceId = '{TRACE_ID}'").result_rows == [(4,)]
        (trace,) = [q for q in dashboard_queries(build_bundle())
                    if q.dashboard == "llmrel-traces" and q.title == "Trace"]
        rows = store.query(expand_macros(trace.sql, FROM_MS, TO_MS, 60, {"trace_id": TRACE_ID})).result_rows
        assert [r[1] for r in rows] == ["b7ad6b7169203331", "00f067aa0ba902b7"]
    finally:
        store.command(f"DROP DATABASE IF EXISTS {store.database}")
        store.close()
