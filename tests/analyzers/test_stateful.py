"""Per-trace limits, windowed rates and budgets: fire once, by event time, with the spend concerned."""

from __future__ import annotations

import dataclasses
import random
import textwrap

from llmrel.analyzers.engine import Engine

from .helpers import make_call, ruleset_from


def _engine(tmp_path, text: str) -> Engine:
    ruleset = ruleset_from(tmp_path, textwrap.dedent(text))
    return Engine(dataclasses.replace(ruleset, drift=dataclasses.replace(ruleset.drift, enabled=False)))


def test_retries_per_trace_fire_once_with_the_retried_spend(tmp_path):
    engine = _engine(tmp_path, """\
        rules:
          - {id: retries, kind: trace_limit, count: retries, max: 2, impact_usd: 0.5}
        """)
    trace = "ab" * 16
    calls = [make_call(i, trace_id=trace, span_id=f"{i:016x}", status_code="Error" if i < 4 else "Ok",
                       cost_usd=0.01 * (i + 1)) for i in range(6)]
    findings = engine.process(calls[:4]) + engine.process(calls[4:])
    assert len(findings) == 1
    finding = findings[0]
    assert (finding.kind, finding.trace_id, finding.observed, finding.expected) == ("trace", trace, 3.0, 2.0)
    assert finding.span_id == calls[3].span_id
    assert finding.cost_usd == 0.02 + 0.03 + 0.04  # the three retries
    assert finding.impact_usd == 0.5


def test_tool_calls_per_trace_count_requests_or_executions(tmp_path):
    engine = _engine(tmp_path, "rules:\n  - {id: tools, kind: trace_limit, count: tool_calls, max: 3}\n")
    trace = "cd" * 16
    calls = [make_call(0, trace_id=trace, tool_calls=2)]
    calls += [make_call(i, trace_id=trace, operation="execute_tool", span_id=f"{i:016x}") for i in (1, 2)]
    assert engine.process(calls) == []  # the executions were already counted as requests
    assert engine.process([make_call(3, trace_id=trace, operation="execute_tool", span_id="e" * 16)]) == []
    [finding] = engine.process([make_call(4, trace_id=trace, operation="execute_tool", span_id="f" * 16)])
    assert finding.observed == 4.0


def test_window_rate_per_tenant(tmp_path):
    engine = _engine(tmp_path, """\
        rules:
          - {id: truncated, kind: finish_reason, not_in: [length]}
          - {id: truncation-rate, kind: window_rate, of: truncated, window: 10m, threshold: 0.05, min_calls: 20,
             by: [tenant], severity: error, impact_usd: 10}
        """)
    rng = random.Random(3)
    calls = [make_call(i, tenant="acme", finish_reason="length" if rng.random() < 0.02 else "stop")
             for i in range(300)]
    calls += [make_call(i, tenant="globex", span_id=f"{i:015x}g"[-16:], trace_id=f"{i:031x}g"[-32:],
                        finish_reason="length" if i % 5 == 0 else "stop") for i in range(300)]
    windows = [f for f in engine.process(calls) if f.kind == "window"]
    assert {f.tenant for f in windows} == {"globex"}
    assert len(windows) == 1  # all 300 s fall in one 10-minute window
    finding = windows[0]
    assert finding.observed > 0.05 and finding.calls >= 20 and finding.impact_usd == 10
    assert finding.cost_usd == 0.001 * round(finding.observed * finding.calls)


def test_budget_per_feature_per_hour_fires_once_per_window(tmp_path):
    engine = _engine(tmp_path, "rules:\n  - {id: spend, kind: budget, window: 1h, max: 0.5, by: [feature]}\n")
    calls = [make_call(i * 10, cost_usd=0.01) for i in range(1000)]  # 10 000 s = 3 windows (+1 partial)
    findings = engine.process(calls)
    assert len(findings) == 3
    assert all(f.kind == "budget" and f.feature == "faq" and f.observed > 0.5 for f in findings)
    assert len({f.attributes["window_start_ns"] for f in findings}) == 3


def test_window_findings_do_not_depend_on_batching_or_order(tmp_path):
    text = """\
        rules:
          - {id: err, kind: no_error}
          - {id: err-rate, kind: window_rate, of: err, window: 5m, threshold: 0.1, min_calls: 10}
        """
    calls = [make_call(i, status_code="Error" if i % 4 == 0 else "Ok") for i in range(200)]
    one = {f.finding_id for f in _engine(tmp_path, text).process(calls) if f.kind == "window"}
    shuffled = calls[:]
    random.Random(1).shuffle(shuffled)
    engine = _engine(tmp_path, text)
    other = {f.finding_id for i in range(0, 200, 50)
             for f in engine.process(sorted(shuffled[i:i + 50], key=lambda c: c.timestamp_ns)) if f.kind == "window"}
    assert one and one == other


def test_late_calls_beyond_the_open_windows_are_dropped(tmp_path):
    engine = _engine(tmp_path, "rules:\n  - {id: spend, kind: budget, window: 1m, max: 0.0}\n")
    assert len(engine.process([make_call(1000)])) == 1
    assert engine.process([make_call(10)]) == []  # 990 s late, its window is long closed
    assert engine.budgets["spend"].late_dropped == 1
