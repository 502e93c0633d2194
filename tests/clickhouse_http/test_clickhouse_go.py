"""clickhouse-go v2 over HTTP (the driver of Grafana's ClickHouse datasource, gzip as the datasource sets it)
against `llmrel serve`: every dashboard query and every alert query, macros expanded as the datasource
expands them, returns through the interface what the same query returns directly on the store.

The Go program (tests/clickhouse_go) is built with modules from the Go module proxy by
scripts/build-chgo.sh and cached. A Grafana server cannot run here: the queries are the provisioned
dashboards' and alert rules' SQL, expanded by llmrel's implementation of the datasource's macros.
"""

from __future__ import annotations

import json
import math
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from llmrel.actions.store import write_transitions
from llmrel.findings import FINDING_COLUMNS
from llmrel.grafana.provisioning import build_bundle
from llmrel.model import LLM_CALL_COLUMNS, SPAN_COLUMNS
from llmrel.store import database_name
from tests.clickhouse_http.conftest import READER_PASSWORD
from tests.grafana.conftest import (
    FROM_MS,
    T0_S,
    TO_MS,
    dashboard_queries,
    seeded_breaker_steps,
    seeded_calls,
    seeded_findings,
    trace_spans,
)
from tests.grafana.macros import expand_macros
from tests.grafana.test_dashboard_queries import ALL_VALUES, SPECIFIC

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def chgo() -> Path:
    done = subprocess.run([str(REPO / "scripts" / "build-chgo.sh")], capture_output=True, text=True, timeout=1800,
                          check=False)
    assert done.returncode == 0, f"scripts/build-chgo.sh failed:\n{done.stderr[-5000:]}"
    return Path(done.stdout.strip().splitlines()[-1])


def _queries() -> list[dict[str, str]]:
    bundle = build_bundle()
    queries = []
    for query in dashboard_queries(bundle):
        for label, variables in (("all", ALL_VALUES), ("specific", SPECIFIC)):
            queries.append({"name": f"{query.id}:{label}",
                            "sql": expand_macros(query.sql, FROM_MS, TO_MS, 60, variables)})
    now_s = T0_S + 3000
    for group in bundle.rule_groups:
        for rule in group["rules"]:
            model = rule["data"][0]
            window = model["relativeTimeRange"]["from"]
            queries.append({"name": f"alert:{rule['uid']}",
                            "sql": expand_macros(model["model"]["rawSql"], (now_s - window) * 1000, now_s * 1000, 1,
                                                 None)})
    return queries


def _same(go: str, value: object) -> bool:
    """Whether the Go driver's rendering of a cell (fmt, times as RFC 3339 UTC) is the store's value."""
    if value is None:
        return go == "NULL"
    if isinstance(value, datetime):
        parsed = datetime.fromisoformat(go.replace("Z", "+00:00"))
        expected = value if value.tzinfo else value.replace(tzinfo=UTC)
        return parsed == expected
    if isinstance(value, bool):
        return go == str(value).lower()
    if isinstance(value, (int, float, Decimal)):
        number = float(go)
        return (math.isnan(number) and math.isnan(float(value))) or math.isclose(number, float(value), rel_tol=1e-9,
                                                                                   abs_tol=1e-12)
    return go == _fmt(value)


def _fmt(value: object) -> str:
    """Go's fmt rendering of a nested string value (maps with sorted keys)."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_fmt(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_fmt(v) for v in value) + "]"
    return str(value)


def test_every_dashboard_and_alert_query_through_clickhouse_go(chgo, served, store):
    store.insert("llm_calls", seeded_calls(), column_names=list(LLM_CALL_COLUMNS))
    store.insert("otel_traces", trace_spans(), column_names=list(SPAN_COLUMNS))
    store.insert("llm_findings", [f.row() for f in seeded_findings()], column_names=list(FINDING_COLUMNS))
    write_transitions(store, seeded_breaker_steps(), term=1)
    queries = _queries()
    done = subprocess.run([str(chgo), f"127.0.0.1:{served.clickhouse_http_port}", "llmrel_reader", READER_PASSWORD,
                           database_name(served.settings.clickhouse_url)], input=json.dumps(queries),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    results = {r["name"]: r for r in json.loads(done.stdout)}
    assert len(results) == len(queries)
    non_empty = 0
    for query in queries:
        got = results[query["name"]]
        assert not got.get("error"), (query["name"], got["error"])
        direct = store.query(query["sql"])
        assert got.get("columns", []) == list(direct.column_names), query["name"]
        assert len(got["rows"]) == len(direct.result_rows), query["name"]
        for go_row, row in zip(got["rows"], direct.result_rows, strict=True):
            mismatched = [(g, v) for g, v in zip(go_row, row, strict=True) if not _same(g, v)]
            assert not mismatched, (query["name"], mismatched)
        non_empty += bool(direct.result_rows)
    assert non_empty > len(queries) // 2  # the seeded traffic makes most panels show something
