"""`Analyzer` on the real embedded ClickHouse store: findings rows, checkpoints, restart, report section."""

from __future__ import annotations

import dataclasses
import json
import time

from rich.console import Console

from llmrel.analyzers.engine import Engine
from llmrel.analyzers.ruleset import load_ruleset
from llmrel.analyzers.runtime import Analyzer
from llmrel.analyzers.testing import SCENARIOS, Traffic, generate
from llmrel.findings_summary import findings_summary, recent_findings, render_findings_summary

from .helpers import T0, make_call

SHIFT = SCENARIOS[0]  # output tokens x2 at call 3000


def _count(store, where: str = "1") -> int:
    return store.query(f"SELECT count() FROM llm_findings FINAL WHERE {where}").result_rows[0][0]


def test_on_commit_writes_findings_with_keys_and_cost(store, settings):
    analyzer = Analyzer.from_settings(settings, store)
    calls = [make_call(1), make_call(2, status_code="Error", error_type="RateLimitError", cost_usd=0.25),
             make_call(3, finish_reason="length", cost_usd=0.5, tenant="globex", feature="search")]
    findings = analyzer.on_commit(calls)
    assert sorted(f.rule_id for f in findings) == ["call-error", "output-truncated"]
    rows = store.query("SELECT RuleId, Kind, Severity, ServiceName, Model, Feature, Tenant, TraceId, CostUSD, "
                       "toUnixTimestamp64Nano(EventTime) FROM llm_findings ORDER BY RuleId").result_rows
    assert rows == [
        ("call-error", "invariant", "warning", "support", "gpt-4o-2024-08-06", "faq", "acme", f"{2:032x}", 0.25,
         T0 + 2_000_000_000),
        ("output-truncated", "invariant", "warning", "support", "gpt-4o-2024-08-06", "search", "globex",
         f"{3:032x}", 0.5, T0 + 3_000_000_000),
    ]
    lag_s = store.query("SELECT max(dateDiff('second', DetectedAt, now64(3))) FROM llm_findings").result_rows[0][0]
    assert 0 <= lag_s < 120
    cost = store.query("SELECT RuleId, SpendUSD, Findings FROM llm_cost_of_failures ORDER BY RuleId").result_rows
    assert cost == [("call-error", 0.25, 1), ("output-truncated", 0.5, 1)]


def test_on_commit_never_raises(store, settings):
    analyzer = Analyzer.from_settings(settings, store)
    store.command("DROP TABLE llm_findings")
    assert analyzer.on_commit([make_call(1, status_code="Error")]) == []
    assert analyzer.failures == 1


def test_restart_mid_stream_keeps_the_drift_in_progress_and_never_duplicates(store, settings):
    calls = list(generate(Traffic(), 4000, seed=11, shift=SHIFT, start_ns=T0))
    # Reference: one analyzer over the whole stream.
    reference = Engine(load_ruleset())
    produced = [f for i in range(0, 4000, 200) for f in reference.process(calls[i:i + 200], now_ns=1)]
    expected = {f.finding_id for f in produced}
    assert [f.metric for f in produced if f.kind == "drift" and f.event_time_ns >= calls[2900].timestamp_ns] \
        == ["output_tokens"] or "output_tokens" in {f.metric for f in produced if f.kind == "drift"}

    first = Analyzer.from_settings(settings, store)
    for i in range(0, 3010, 160):  # stops 10 calls after the onset: the drift is in progress
        first.on_commit(calls[i:min(i + 160, 3010)])
    first.close()
    assert _count(store, "Kind = 'drift' AND Metric = 'output_tokens'") == 0

    second = Analyzer.from_settings(settings, store)
    assert second.engine.calls_seen == 3010  # restored: no new warm-up
    for i in range(3010, 4000, 160):
        second.on_commit(calls[i:i + 160])
    second.close()

    stored = {r[0] for r in store.query("SELECT FindingId FROM llm_findings FINAL").result_rows}
    assert stored == expected
    assert _count(store, "Kind = 'drift' AND Metric = 'output_tokens'") == 1


def test_crash_then_replay_from_the_checkpoint_gives_the_same_findings_once(store, settings):
    calls = list(generate(Traffic(), 4000, seed=12, shift=SHIFT, start_ns=T0))
    reference = Engine(load_ruleset())
    expected = {f.finding_id for i in range(0, 4000, 160) for f in reference.process(calls[i:i + 160], now_ns=1)}

    crashed = Analyzer.from_settings(settings, store)
    for i in range(0, 2880, 160):
        crashed.on_commit(calls[i:i + 160])
    crashed.checkpoint()
    for i in range(2880, 3520, 160):  # findings written after the checkpoint, then the process dies
        crashed.on_commit(calls[i:i + 160])

    replaying = Analyzer.from_settings(settings, store)
    assert replaying.engine.calls_seen == 2880
    for i in range(2880, 4000, 160):  # the tailer re-reads from the checkpointed watermark
        replaying.on_commit(calls[i:i + 160])
    replaying.close()

    stored = [r[0] for r in store.query("SELECT FindingId FROM llm_findings FINAL").result_rows]
    assert set(stored) == expected and len(stored) == len(expected)
    assert _count(store, "Kind = 'drift' AND Metric = 'output_tokens'") == 1


def test_changed_drift_config_restarts_only_the_monitors(store, settings, tmp_path):
    analyzer = Analyzer.from_settings(settings, store)
    analyzer.on_commit([make_call(i) for i in range(50)])
    analyzer.close()
    rules = tmp_path / "rules.yaml"
    rules.write_text("drift:\n  warmup: 1000\n")
    restarted = Analyzer.from_settings(settings.model_copy(update={"rules_file": rules}), store)
    assert restarted.engine.streams == {} and restarted.engine.calls_seen == 50


def test_findings_summary_and_recent_findings(store, settings):
    analyzer = Analyzer.from_settings(settings, store)
    analyzer.on_commit([make_call(i, status_code="Error" if i % 2 else "Ok", cost_usd=0.1) for i in range(10)])
    summary = findings_summary(store, T0)
    json.dumps(summary)  # `llmrel report --json` and the REST API serve it as is
    assert summary["totals"]["findings"] == 5 and summary["totals"]["by_kind"] == {"invariant": 5}
    [row] = summary["cost_of_failures"]
    assert (row["rule_id"], row["findings"], round(row["cost_usd"], 6)) == ("call-error", 5, 0.5)
    recent = recent_findings(store, T0, limit=3, by="event", kind="invariant", service="support")
    assert [r["trace_id"] for r in recent] == [f"{i:032x}" for i in (9, 7, 5)]
    assert recent_findings(store, T0, service="other") == []
    # calls from long ago, noticed now: a client polling "the last minute" sees them by detection time
    minute_ago = time.time_ns() - 60 * 10**9
    assert len(recent_findings(store, minute_ago)) == 5
    assert recent_findings(store, minute_ago, by="event") == []
    console = Console(record=True, width=160)
    render_findings_summary(console, summary)
    text = console.export_text()
    assert "Findings: 5 (invariant 5)" in text and "call-error" in text and "0.5000" in text


def test_process_is_pure(settings):
    ruleset = load_ruleset()
    analyzer = Analyzer(Engine(dataclasses.replace(ruleset)), client=None)
    assert [f.rule_id for f in analyzer.process([make_call(1, status_code="Error")])] == ["call-error"]
    analyzer.close()  # no client: nothing to write, no error


def test_findings_whose_write_failed_are_written_with_the_next_batch(store, settings):
    from llmrel.store import migrate

    analyzer = Analyzer.from_settings(settings, store)
    store.command("DROP TABLE llm_findings")  # the store loses the table: the write fails
    assert analyzer.on_commit([make_call(1, status_code="Error")]) == []
    migrate(store, settings)  # back
    analyzer.on_commit([make_call(2)])
    assert _count(store, "RuleId = 'call-error'") == 1


def test_a_call_from_a_clock_years_ahead_does_not_stop_time_windows(settings):
    engine = Engine(load_ruleset(None))
    now = T0 + 10_000_000_000
    engine.process([make_call(1, timestamp_ns=T0 + 10 * 365 * 86_400 * 10**9)], now_ns=now)
    assert engine.newest_ns < now + 10 * 60 * 10**9
    engine.process([make_call(2)], now_ns=now)
    assert engine.newest_ns == T0 + 2_000_000_000
