"""Hostile variable values cannot change a dashboard query: expanded as Grafana does, run on the real engine.

Values come from any viewer (`?var-service=…`, the text boxes) or from senders (a service or model
name sent over OTLP and then picked in a filter). Each value goes through the same expansion the
ClickHouse datasource and Grafana's template service apply (`tests/grafana/macros.py`), then runs
on the embedded ClickHouse engine; its result must equal the result for a harmless value that
matches nothing, i.e. the value stayed a string literal.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from llmrel.grafana.provisioning import build_bundle
from llmrel.model import LLM_CALL_COLUMNS
from tests.grafana.conftest import FROM_MS, TO_MS, TRACE_ID, dashboard_queries, make_call, new_store, seeded_calls
from tests.grafana.macros import ALL, expand_macros

HOSTILE = [
    "x\\') OR 1=1 --",
    "x\\' OR 1=1 --",
    "\\",
    "'",
    "\\'",
    "') OR ('1'='1",
    "x'; DROP TABLE llm_calls; --",
    "x' UNION ALL SELECT 1 --",
    "%27) OR 1=1 --",
    "a\nOR 1=1",
    "é😀\t\"",
    "${service}",
    "$__timeFilter(x)",
]
MISSING = "no-such-value"
MULTI = ("environment", "service", "model", "feature", "tenant")
SINGLE = {"trace_id": TRACE_ID, "daily_budget_usd": "100", "drift_metric": "latency_ms"}
BASE = {**dict.fromkeys(MULTI, ALL), **SINGLE}
QUERIES = dashboard_queries(build_bundle())
HOSTILE_SERVICE = "svc\\') OR 1=1 --"  # stored, so not among HOSTILE (which must match nothing)
HOSTILE_CALLS = 3


@pytest.fixture(scope="module")
def store(chdb_dir) -> Iterator[Client]:
    client = new_store(chdb_dir)
    calls = seeded_calls() + [make_call(i, service_name=HOSTILE_SERVICE, model="o'b\\", trace_id=f"{1_000 + i:032x}",
                                        span_id=f"{1_000 + i:016x}") for i in range(HOSTILE_CALLS)]
    client.insert("llm_calls", calls, column_names=list(LLM_CALL_COLUMNS))
    yield client
    client.command(f"DROP DATABASE IF EXISTS {client.database}")
    client.close()


def _run(store: Client, sql: str, variables: dict) -> list[tuple]:
    return store.query(expand_macros(sql, FROM_MS, TO_MS, 60, variables)).result_rows


def _used(sql: str) -> set[str]:
    return set(re.findall(r"\$\{?(\w+)", sql)) & set(BASE)


@pytest.mark.parametrize("query", QUERIES, ids=[q.id for q in QUERIES])
def test_no_value_escapes_its_literal(store, query):
    """Multi-value filters get every hostile value in one selection; text boxes get each on its own."""
    for name in sorted(_used(query.sql)):
        harmless = [MISSING] if name in MULTI else MISSING
        expected = repr(_run(store, query.sql, {**BASE, name: harmless}))  # repr: NaN is not equal to itself
        for value in [HOSTILE] if name in MULTI else HOSTILE:
            try:
                got = _run(store, query.sql, {**BASE, name: value})
            except Exception as error:
                raise AssertionError(f"{query.id}: ${name}={value!r} broke the query: {error}") from error
            assert repr(got) == expected, (query.id, name, value)


def test_hostile_names_picked_in_filters_match_exactly(store):
    calls = next(q for q in QUERIES if q.dashboard == "llmrel-overview" and q.title == "Calls")
    assert _run(store, calls.sql, {**BASE, "service": [HOSTILE_SERVICE]}) == [(HOSTILE_CALLS,)]
    assert _run(store, calls.sql, {**BASE, "model": ["o'b\\"]}) == [(HOSTILE_CALLS,)]
    assert _run(store, calls.sql, {**BASE, "service": [HOSTILE_SERVICE, "search"]}) == [(HOSTILE_CALLS + 80,)]
    assert _run(store, calls.sql, {**BASE, "service": HOSTILE_SERVICE}) == [(HOSTILE_CALLS,)]  # a single string


def test_text_boxes_read_values_not_sql(store):
    trace = next(q for q in QUERIES if q.title == "LLM calls in this trace")
    upper = _run(store, trace.sql, {**BASE, "trace_id": f" {'0000000000000000000000000000' + '03E8'} "})
    assert len(upper) == 1  # pasted with spaces and upper case: still found
    burn = next(q for q in QUERIES if q.title == "Budget burn")
    assert _run(store, burn.sql, {**BASE, "daily_budget_usd": "1/0) OR (1"}) == [(None,)]


@pytest.mark.parametrize("fmt", ["singlequote", "sqlstring"])
def test_grafanas_sql_formats_do_not_hold_on_clickhouse(store, fmt):
    """Why the dashboards use `percentencode`: a backslash ends the literal of both SQL formats."""
    sql = f"SELECT count() FROM llm_calls WHERE ServiceName IN (${{service:{fmt}}})"
    injected = {"singlequote": "x\\') OR 1=1 --", "sqlstring": ["x\\", ") OR 1=1 --"]}[fmt]
    everything = _run(store, "SELECT count() FROM llm_calls", {})
    assert _run(store, sql, {"service": injected}) == everything


def test_every_variable_in_dashboard_sql_is_percent_encoded():
    """`$var` only as `$__conditionalAll`'s second argument; everywhere else `${var:percentencode}`."""
    for query in QUERIES:
        sql = re.sub(r", \$\w+\)", ")", query.sql)  # conditionalAll's variable argument
        for match in re.finditer(r"\$\{?(\w+)(?::(\w+))?\}?", sql):
            if not match.group(1).startswith("__"):
                assert match.group(2) == "percentencode", (query.id, match.group(0))
