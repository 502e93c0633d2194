"""Every alert rule evaluated the way Grafana does: query A over the rule's relative time range (backend
macros only), reduce B = last of each row's one number, threshold C; checked against an oracle
computed in Python from the seeded calls."""

from __future__ import annotations

import math
import time
from collections import Counter

import pytest

from llmrel.grafana.alerts import AlertSettings
from llmrel.grafana.provisioning import build_bundle
from llmrel.model import LLM_CALL_COLUMNS
from tests.grafana.conftest import (
    DRIFT_AT_S,
    T0_S,
    make_call,
    new_store,
    result_columns,
    seeded_calls,
)
from tests.grafana.macros import expand_macros

SETTINGS = AlertSettings()
RULES = {rule["uid"]: rule for group in build_bundle().rule_groups for rule in group["rules"]}
NOW_S = T0_S + 3000  # just after the last seeded call


def evaluate(store, rule: dict, now_s: int = NOW_S) -> dict[tuple[tuple[str, str], ...], float]:
    """Firing instances (labels -> reduced value) of `rule` at `now_s`."""
    query, reduce, threshold = rule["data"]
    assert reduce["model"] == {"datasource": {"type": "__expr__", "uid": "__expr__"}, "expression": "A",
                               "reducer": "last", "refId": "B", "type": "reduce", "settings": {"mode": "dropNN"}}
    window = query["relativeTimeRange"]["from"]
    sql = expand_macros(query["model"]["rawSql"], (now_s - window) * 1000, now_s * 1000, 1, None)
    columns = result_columns(store, sql)
    kinds = [kind for _, kind in columns]
    assert kinds.count("number") == 1 and set(kinds) <= {"number", "text"}, columns
    rows = store.query(sql).result_rows
    instances = {}
    for row in rows:
        labels = tuple((name, v) for (name, kind), v in zip(columns, row, strict=True) if kind == "text")
        (number,) = [v for (_, kind), v in zip(columns, row, strict=True) if kind == "number"]
        assert labels not in instances, f"duplicate label set {labels}"
        instances[labels] = number
    evaluator = threshold["model"]["conditions"][0]["evaluator"]
    limit = evaluator["params"][0]
    compare = (lambda v: v > limit) if evaluator["type"] == "gt" else (lambda v: v < limit)
    return {k: v for k, v in instances.items() if v is not None and not math.isnan(v) and compare(v)}


def in_window(now_s: int, window_s: int):
    low, high = (now_s - window_s) * 1_000_000_000, now_s * 1_000_000_000
    return [c for c in seeded_calls() if low <= c.timestamp_ns <= high]


def test_error_rate_fires_for_the_failing_service_only(traffic_store):
    calls = in_window(NOW_S, 600)
    checkout = [c for c in calls if c.service_name == "checkout"]
    expected = sum(c.status_code == "Error" for c in checkout) / len(checkout)
    assert expected > SETTINGS.error_rate
    assert evaluate(traffic_store, RULES["llmrel-error-rate"]) == {(("service", "checkout"),): pytest.approx(expected)}


def test_invariant_violation_rate_per_rule_and_service(traffic_store):
    checkout = [c for c in in_window(NOW_S, 900) if c.service_name == "checkout"]
    expected = sum(c.status_code == "Error" for c in checkout) / len(checkout)
    fired = evaluate(traffic_store, RULES["llmrel-invariant-violation-rate"])
    assert fired == {(("rule", "latency_budget"), ("service", "checkout")): pytest.approx(expected)}


def test_latency_p99_against_the_slo(traffic_store):
    fired = evaluate(traffic_store, RULES["llmrel-latency-p99-slo"])
    assert fired == {(("service", "checkout"), ("model", "gpt-4o")): pytest.approx(30_000.0)}


def test_new_drift_finding_fires_once_per_stream(traffic_store):
    labels = (("service", "search"), ("model", "gpt-4o-mini"), ("operation", "chat"), ("metric", "latency_ms"))
    assert evaluate(traffic_store, RULES["llmrel-drift-detected"], now_s=DRIFT_AT_S + 60) == {labels: 1}
    assert evaluate(traffic_store, RULES["llmrel-drift-detected"], now_s=DRIFT_AT_S + 3600) == {}


def test_unpriced_calls_fire_per_model(traffic_store):
    expected = Counter(c.model for c in in_window(NOW_S, 3600) if c.cost_status == "unpriced")
    assert evaluate(traffic_store, RULES["llmrel-unpriced-spend"]) == {(("model", "mystery-1"),): expected["mystery-1"]}


def test_cost_burn_and_budget(traffic_store):
    hour_spend = sum(c.cost_usd or 0 for c in in_window(NOW_S, 3600))
    assert hour_spend * 24 < SETTINGS.daily_budget_usd
    assert evaluate(traffic_store, RULES["llmrel-cost-burn"]) == {}
    burn = with_threshold(RULES["llmrel-cost-burn"], hour_spend * 24 - 1)
    assert evaluate(traffic_store, burn) == {(): pytest.approx(hour_spend * 24)}
    midnight_s = NOW_S - NOW_S % 86400
    today = sum(c.cost_usd or 0 for c in in_window(NOW_S, NOW_S - midnight_s))
    assert evaluate(traffic_store, RULES["llmrel-budget-exceeded"]) == {}
    assert evaluate(traffic_store, with_threshold(RULES["llmrel-budget-exceeded"], 1.0)) == {
        (): pytest.approx(today)}


def with_threshold(rule: dict, limit: float) -> dict:
    """`rule` with its threshold moved to `limit` (the committed budget is far above the seeded spend)."""
    query, reduce, threshold = rule["data"]
    model = {**threshold["model"], "conditions": [{"evaluator": {"type": "gt", "params": [limit]}}]}
    return {**rule, "data": [query, reduce, {**threshold, "model": model}]}


def test_ingestion_stalled_fires_on_an_empty_window(chdb_dir):
    store = new_store(chdb_dir)
    try:
        now_s = int(time.time())
        store.insert("llm_calls", [make_call(0, timestamp_ns=now_s * 1_000_000_000)],
                     column_names=list(LLM_CALL_COLUMNS))
        rule = RULES["llmrel-ingestion-stalled"]
        assert rule["noDataState"] == "Alerting" and rule["execErrState"] == "Alerting"
        assert evaluate(store, rule, now_s=now_s + 60) == {}
        assert evaluate(store, rule, now_s=now_s + 2 * SETTINGS.ingestion_window_s) == {(): 0}
    finally:
        store.command(f"DROP DATABASE IF EXISTS {store.database}")
        store.close()
