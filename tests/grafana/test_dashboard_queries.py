"""Every dashboard query, expanded as Grafana + the ClickHouse datasource expand it, run on the real store.

Each query runs twice (every variable at All, then specific values) and must return the shape its
panel type reads; the figures the dashboards are for are then checked against the seeded traffic.
"""

from __future__ import annotations

import pytest

from llmrel.grafana.provisioning import build_bundle
from llmrel.model import LLM_CALL_COLUMNS
from tests.grafana.conftest import (
    CALL_COST_USD,
    CHECKOUT_CALLS,
    CHECKOUT_ERRORS,
    DRIFT_AFTER_MS,
    DRIFT_BEFORE_MS,
    FROM_MS,
    HOUR_S,
    LINKED_TRACE_ID,
    SEARCH_CALLS,
    T0_S,
    TO_MS,
    TRACE_ID,
    UNPRICED_CALLS,
    StoredQuery,
    dashboard_queries,
    make_call,
    result_columns,
    seeded_calls,
)
from tests.grafana.macros import ALL, expand_macros

FIXED = {"daily_budget_usd": "100", "drift_metric": "latency_ms", "trace_id": TRACE_ID, "finding_id": "0" * 32}
ALL_VALUES = {"environment": ALL, "service": ALL, "model": ALL, "feature": ALL, "tenant": ALL, **FIXED}
SPECIFIC = {"environment": ["prod", "staging"], "service": ["checkout"], "model": ["gpt-4o"],
            "feature": ["cart", "search-box"], "tenant": ["acme", "globex"], **FIXED}
TRACE_COLUMNS = ["traceID", "spanID", "parentSpanID", "serviceName", "operationName", "startTime", "duration",
                 "tags", "serviceTags"]
QUERIES = dashboard_queries(build_bundle())


def run(store, sql: str, variables=ALL_VALUES, interval_s: float = 60):
    return store.query(expand_macros(sql, FROM_MS, TO_MS, interval_s, variables))


def check_shape(query: StoredQuery, columns: list[tuple[str, str]], rows: list[tuple]) -> None:
    names, kinds = [c[0] for c in columns], [c[1] for c in columns]
    if query.kind in ("timeseries", "state-timeline"):
        assert names[0] == "time" and kinds[0] == "time", columns
        assert set(kinds[1:]) <= {"number", "text"} and "number" in kinds, columns
    elif query.kind == "stat":
        assert kinds == ["number"] and len(rows) == 1, (columns, rows)
    elif query.kind == "traces":
        assert names[:len(TRACE_COLUMNS)] == TRACE_COLUMNS
    elif query.kind == "variable":
        assert kinds == ["text"], columns
    elif query.kind == "annotation":
        assert names[:3] == ["time", "text", "tags"] and kinds[0] == "time", columns
    else:
        assert query.kind == "table" and names


def test_the_dashboards_hold_the_expected_panels():
    kinds = {(q.dashboard, q.kind) for q in QUERIES}
    assert {d for d, _ in kinds} == {"llmrel-overview", "llmrel-quality", "llmrel-drift", "llmrel-cost",
                                      "llmrel-traces", "llmrel-actions", "llmrel-explanations"}
    assert ("llmrel-traces", "traces") in kinds and ("llmrel-drift", "annotation") in kinds
    assert ("llmrel-actions", "state-timeline") in kinds and ("llmrel-overview", "annotation") in kinds
    assert sum(q.kind == "variable" for q in QUERIES) == 7 * 5


@pytest.mark.parametrize("variables", [ALL_VALUES, SPECIFIC], ids=["all", "specific"])
def test_every_dashboard_query_runs_and_has_its_panel_shape(traffic_store, variables):
    for query in QUERIES:
        sql = expand_macros(query.sql, FROM_MS, TO_MS, 60, variables)
        try:
            rows = traffic_store.query(sql).result_rows
            columns = result_columns(traffic_store, sql)
        except Exception as error:
            raise AssertionError(f"{query.id} failed: {error}") from error
        check_shape(query, columns, rows)


def value(store, dashboard: str, title: str, variables=ALL_VALUES, interval_s: float = HOUR_S):
    """Rows of the one query of panel `title`."""
    (query,) = [q for q in QUERIES if q.dashboard == dashboard and q.title == title]
    return run(store, query.sql, variables, interval_s).result_rows


def test_overview_figures(traffic_store):
    calls = CHECKOUT_CALLS + SEARCH_CALLS
    assert value(traffic_store, "llmrel-overview", "Calls") == [(calls,)]
    assert value(traffic_store, "llmrel-overview", "Error rate")[0][0] == pytest.approx(CHECKOUT_ERRORS / calls)
    only_checkout = {**ALL_VALUES, "service": ["checkout"]}
    assert value(traffic_store, "llmrel-overview", "Error rate", only_checkout)[0][0] == pytest.approx(0.1)
    assert value(traffic_store, "llmrel-overview", "Spend")[0][0] == pytest.approx(
        (calls - UNPRICED_CALLS) * CALL_COST_USD)
    assert value(traffic_store, "llmrel-overview", "Calls of unknown cost") == [(UNPRICED_CALLS,)]
    series = {row[1]: row[2] for row in value(traffic_store, "llmrel-overview", "Error rate by service")}
    assert series == pytest.approx({"checkout": 0.1, "search": 0.0})
    ((_, p50, p95, p99),) = value(traffic_store, "llmrel-overview", "Latency p50 / p95 / p99")
    assert (p50, p95, p99) == pytest.approx((200.0, 30_000.0, 30_000.0))
    unpriced = value(traffic_store, "llmrel-overview", "Calls of unknown cost by model")
    assert unpriced == [("openai", "mystery-1", UNPRICED_CALLS, 0, UNPRICED_CALLS * 100, UNPRICED_CALLS * 50)]


def test_successful_calls_without_usage_count_as_unknown_cost(store):
    """A stream without include_usage costs an unknown amount; a rejected call without usage costs nothing."""
    stream = make_call(0, model="gpt-4o-mini", input_tokens=None, output_tokens=None, cost_usd=None,
                       cost_status="no_usage", is_streaming=True)
    rejected = make_call(1, model="gpt-4o-mini", input_tokens=None, output_tokens=None, cost_usd=None,
                         cost_status="no_usage", status_code="Error", error_type="RateLimitError")
    store.insert("llm_calls", [stream, rejected, make_call(2)], column_names=list(LLM_CALL_COLUMNS))
    assert value(store, "llmrel-overview", "Calls of unknown cost") == [(1,)]
    assert value(store, "llmrel-overview", "Calls of unknown cost by model") == [("openai", "gpt-4o-mini", 0, 1, 0, 0)]
    by_feature = value(store, "llmrel-cost", "Spend by feature")
    assert [(row[0], row[1], row[-1]) for row in by_feature] == [("cart", 3, 1)]


def test_every_variable_lists_the_seeded_values(traffic_store):
    assert value(traffic_store, "llmrel-overview", "service") == [("checkout",), ("search",)]
    narrowed = {**ALL_VALUES, "service": ["search"]}
    assert value(traffic_store, "llmrel-overview", "model", narrowed) == [("gpt-4o-mini",), ("mystery-1",)]


def test_cost_figures(traffic_store):
    spend = (CHECKOUT_CALLS + SEARCH_CALLS - UNPRICED_CALLS) * CALL_COST_USD
    run_rate = spend / HOUR_S * 86400
    assert value(traffic_store, "llmrel-cost", "Daily run rate")[0][0] == pytest.approx(run_rate)
    assert value(traffic_store, "llmrel-cost", "Budget burn")[0][0] == pytest.approx(run_rate / 100)
    assert value(traffic_store, "llmrel-cost", "Cost of failed calls")[0][0] == pytest.approx(
        CHECKOUT_ERRORS * CALL_COST_USD)
    cumulative = value(traffic_store, "llmrel-cost", "Cumulative spend against the daily budget", interval_s=600)
    assert cumulative[-1][1:] == pytest.approx((spend, 100.0))
    by_rule = value(traffic_store, "llmrel-cost", "Cost of failures by rule")
    assert by_rule == [("latency_budget", "invariant", CHECKOUT_ERRORS, CHECKOUT_ERRORS,
                        pytest.approx(CHECKOUT_ERRORS * CALL_COST_USD), pytest.approx(CHECKOUT_ERRORS * 0.5))]


def test_quality_reads_a_ten_percent_violation_rate(traffic_store):
    rows = value(traffic_store, "llmrel-quality", "Violation rate by rule and service")
    assert rows == [("latency_budget", "checkout", CHECKOUT_ERRORS, CHECKOUT_CALLS, pytest.approx(0.1))]
    only_checkout = {**ALL_VALUES, "service": ["checkout"]}
    assert value(traffic_store, "llmrel-quality", "Violation rate", only_checkout)[0][0] == pytest.approx(0.1)
    ((_, rule, rate),) = value(traffic_store, "llmrel-quality", "Invariant violation rate by rule", only_checkout)
    assert (rule, rate) == ("latency_budget", pytest.approx(0.1))
    recent = value(traffic_store, "llmrel-quality", "Recent violations")
    failed = {c.trace_id for c in seeded_calls() if c.status_code == "Error"}
    assert len(recent) == CHECKOUT_ERRORS and {r[-1] for r in recent} == failed


def test_drift_shows_what_moved(traffic_store):
    (row,) = value(traffic_store, "llmrel-drift", "What moved")
    assert row[1:8] == ("adwin", "latency_ms", "search", "gpt-4o-mini", "chat", DRIFT_BEFORE_MS, DRIFT_AFTER_MS)
    assert row[8] == pytest.approx(1.0)
    ((_, text, tags),) = value(traffic_store, "llmrel-drift", "Drift")
    assert "moved from 200 to 400" in text and tags == ["adwin", "latency_ms", "search", "gpt-4o-mini"]
    streams = {r[1]: r[2] for r in value(traffic_store, "llmrel-drift", "${drift_metric} by stream")}
    assert streams["search/gpt-4o-mini/chat"] == pytest.approx(200.0)


def test_trace_drilldown_returns_the_trace(traffic_store):
    rows = value(traffic_store, "llmrel-traces", "Trace")
    assert [(r[1], r[2], r[4]) for r in rows] == [("b7ad6b7169203331", "", "POST /cart"),
                                                  ("00f067aa0ba902b7", "b7ad6b7169203331", "chat gpt-4o")]
    assert rows[1][6] == pytest.approx(800.0)
    # Span events and links reach the trace view as the datasource's own trace query returns them.
    logs, references = rows[1][-2], rows[1][-1]
    assert [(e["name"], e["fields"]) for e in logs] == [
        ("exception", [{"key": "exception.type", "value": "RateLimitError"}])]
    assert int(logs[0]["timestamp"]) == (T0_S + 100) * 1000 + 2  # ms, as a string
    assert [(r["traceID"], r["spanID"], r["tags"]) for r in references] == [
        (LINKED_TRACE_ID, "1111111111111111", [{"key": "link.kind", "value": "retry-of"}])]
    assert rows[0][-2:] == ([], [])
    worst = value(traffic_store, "llmrel-traces", "Traces with failing or slow LLM calls")
    assert worst[0][4] == 1 and worst[0][5] == pytest.approx(30_000.0)


def test_actions_show_breaker_state_and_transitions(traffic_store):
    assert value(traffic_store, "llmrel-actions", "Open breakers") == [(1,)]
    assert value(traffic_store, "llmrel-actions", "Half-open breakers") == [(0,)]
    assert value(traffic_store, "llmrel-actions", "State changes") == [(4,)]
    assert value(traffic_store, "llmrel-actions", "Pinned or dry run") == [(1,)]
    now = value(traffic_store, "llmrel-actions", "Breakers now")
    assert [(r[0], r[1], r[3], r[4]) for r in now] == [("search", "open", "pinned open", "manual"),
                                                       ("checkout/chat", "closed", "auto", "probe_healthy")]
    timeline = value(traffic_store, "llmrel-actions", "Breaker state")
    assert [(r[1], r[2]) for r in timeline] == [("checkout/chat", 2), ("checkout/chat", 1), ("checkout/chat", 0),
                                               ("search", 2)]
    only_search = {**ALL_VALUES, "service": ["search"]}
    assert [r[1] for r in value(traffic_store, "llmrel-actions", "Transitions", only_search)] == ["search"]
    annotations = value(traffic_store, "llmrel-overview", "Breakers")
    assert annotations[0][1] == "checkout/chat: closed → open (findings) r by llmrel"
    assert annotations[-1][2] == ["search", "open", "manual"]
