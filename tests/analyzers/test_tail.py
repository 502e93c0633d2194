"""`llmrel analyze` tailing on the real embedded store: spans written by another writer into `otel_traces`
are normalized into `llm_calls` exactly once, across restarts and across two shards."""

from __future__ import annotations

import json
import threading

import pytest

from llmrel.analyzers.runtime import Analyzer
from llmrel.analyzers.tail import Shard, Tailer
from llmrel.cli.compose import build_tailer
from llmrel.model import SPAN_COLUMNS, SpanRecord

from .helpers import T0

STREAMS = [("support", "gpt-4o"), ("support", "gpt-4o-mini"), ("search", "claude-sonnet-4-5"),
           ("search", "gpt-4o"), ("billing", "gpt-4o-mini"), ("billing", "gpt-4.1")]


def _span(i: int, service: str, model: str, *, error: bool = False, ts_ns: int | None = None) -> SpanRecord:
    attrs = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic" if "claude" in model else "openai",
        "gen_ai.request.model": model, "gen_ai.response.model": model, "gen_ai.usage.input_tokens": "120",
        "gen_ai.usage.output_tokens": "40", "gen_ai.response.finish_reasons": json.dumps(["stop"]),
        "llmrel.feature": "faq", "llmrel.tenant": "acme",
    }
    if error:
        attrs["error.type"] = "RateLimitError"
    return SpanRecord(
        ts_ns if ts_ns is not None else T0 + i * 250_000_000, f"{i:032x}", f"{i:016x}", "", "", f"chat {model}",
        "Client", service, {"service.name": service}, "opentelemetry.instrumentation.openai", "0.1", attrs,
        700_000_000, "Error" if error else "Unset", "", [], [], [], [], [], [], [])


def _http_span(i: int) -> SpanRecord:
    return SpanRecord(T0 + i * 250_000_000 + 1, f"{i:032x}", f"{i:015x}f", "", "", "GET /orders", "Server",
                      "support", {}, "opentelemetry.instrumentation.fastapi", "0.1", {"http.route": "/orders"},
                      5_000_000, "Unset", "", [T0], ["start"], [{"k": "v"}], [], [], [], [])


def _write(store, spans: list[SpanRecord]) -> None:
    store.insert("otel_traces", spans, column_names=list(SPAN_COLUMNS))


def _traffic(count: int) -> list[SpanRecord]:
    spans = []
    for i in range(count):
        service, model = STREAMS[i % len(STREAMS)]
        spans.append(_span(i, service, model, error=i % 10 == 0))
        if i % 3 == 0:
            spans.append(_http_span(i))
    return spans


def _tailer(store, settings, shard: Shard | None = None, **kwargs) -> Tailer:
    return build_tailer(settings, store, shard or Shard(), settle_s=0, batch_rows=97, **kwargs)


def _catch_up(tailer: Tailer) -> None:
    tailer.run(threading.Event(), once=True)
    tailer.analyzer.close()


def _llm_calls(store) -> tuple[int, int]:
    return store.query("SELECT count(), uniqExact(TraceId, SpanId) FROM llm_calls").result_rows[0]


def test_spans_are_normalized_priced_and_analyzed_once_across_restarts(store, settings):
    _write(store, _traffic(300))
    _catch_up(_tailer(store, settings))
    assert _llm_calls(store) == (300, 300)
    assert store.query("SELECT countIf(CostUSD > 0), countIf(StatusCode = 'Error') FROM llm_calls"
                       ).result_rows[0] == (300, 30)
    errors = store.query("SELECT count(), sum(CostUSD) FROM llm_findings WHERE RuleId = 'call-error'").result_rows[0]
    assert errors[0] == 30

    _write(store, _traffic(360)[400:])  # new spans after a restart
    restarted = _tailer(store, settings)
    assert restarted.analyzer.watermark.ts_ns > 0
    _catch_up(restarted)
    assert _llm_calls(store) == (360, 360)
    assert store.query("SELECT count(), uniqExact(FindingId) FROM llm_findings WHERE RuleId = 'call-error'"
                       ).result_rows[0] == (36, 36)


def test_two_shards_split_the_streams_and_share_nothing(store, settings):
    _write(store, _traffic(600))
    shards = [_tailer(store, settings, Shard(i, 2)) for i in range(2)]
    for tailer in shards:
        _catch_up(tailer)
    assert _llm_calls(store) == (600, 600)
    streams = [set(t.analyzer.engine.streams) for t in shards]
    assert streams[0] and streams[1] and not streams[0] & streams[1]
    assert len(streams[0] | streams[1]) == len(STREAMS)
    per_shard = [t.analyzer.engine.calls_seen for t in shards]
    assert sum(per_shard) == 600 and min(per_shard) > 0


def test_late_spans_behind_the_watermark_are_picked_up_by_the_rescan(store, settings):
    _write(store, _traffic(120))
    tailer = _tailer(store, settings, lateness_s=3600, rescan_s=0)
    _catch_up(tailer)
    late = _span(10_000, "support", "gpt-4o", error=True, ts_ns=T0 + 1_000_000_000)  # behind the watermark
    _write(store, [late])
    assert tailer.poll_once().calls_inserted == 1
    assert tailer.poll_once().calls_inserted == 0
    assert _llm_calls(store) == (121, 121)


@pytest.mark.parametrize("text", ["1", "2/2", "a/b", "-1/2"])
def test_bad_shard_specs_are_rejected(text):
    with pytest.raises(ValueError):
        Shard.parse(text)


def test_a_failed_checkpoint_keeps_the_position_and_every_call_counts_once(store, settings, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {id: tokens, kind: budget, window: 1h, max: 470, metric: output_tokens}\n")
    tailer = _tailer(store, settings.model_copy(update={"rules_file": rules}), rescan_s=3600)
    _write(store, [_span(i, "support", "gpt-4o") for i in range(8)])
    store.command("RENAME TABLE llm_analyzer_state TO llm_analyzer_state_away")
    with pytest.raises(Exception, match="llm_analyzer_state"):
        tailer.poll_once()
    assert tailer.analyzer.watermark.ts_ns == 0  # the position did not move without its state
    store.command("RENAME TABLE llm_analyzer_state_away TO llm_analyzer_state")
    tailer.poll_once()
    _write(store, [_span(i, "support", "gpt-4o") for i in range(8, 12)])  # 12 x 40 tokens > 470
    tailer.poll_once()
    budget = store.query("SELECT Observed, Calls FROM llm_findings FINAL WHERE RuleId = 'tokens'").result_rows
    assert budget == [(480.0, 12)]
    assert _llm_calls(store) == (12, 12)


def test_windows_count_calls_within_the_lateness_bound_and_count_those_beyond(store, settings, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {id: tokens, kind: budget, window: 1m, max: 100, metric: output_tokens}\n")
    analyzer = Analyzer.from_settings(settings.model_copy(update={"rules_file": rules, "lateness_s": 1800}), store)
    from .helpers import make_call

    analyzer.on_commit([make_call(3000)])  # a host 50 minutes ahead of the late one
    late = [make_call(i, output_tokens=40) for i in range(1200, 1203)]  # 30 min late: within the bound
    findings = analyzer.on_commit(late)
    assert [(f.rule_id, f.observed) for f in findings] == [("tokens", 120.0)]
    too_late = [make_call(i, output_tokens=40) for i in range(0, 3)]  # 50 min late: beyond the bound
    assert analyzer.on_commit(too_late) == []
    # counted once per windowed rule they miss (the budget and the default pack's error-rate window)
    assert analyzer.metrics.registry.get_sample_value("llmrel_analyzer_late_calls_dropped_total") == 6


def test_spans_that_leave_the_lateness_bound_unanalyzed_are_counted(store, settings):
    _write(store, _traffic(60))
    tailer = _tailer(store, settings, lateness_s=5, rescan_s=0)
    tailer.poll_once()  # sets the first bound
    tailer.lateness_s = 10_000  # keep the rescan off the late span; only the expiry count sees it
    _write(store, [_span(20_000, "support", "gpt-4o", ts_ns=T0 + 2_000_000_000)])
    tailer.lateness_s = 5
    _write(store, [_span(i, "support", "gpt-4o") for i in range(60, 200)])  # the watermark moves on
    tailer._read_late = lambda mark: []  # the span arrived after its rescan window: it is never read
    tailer.poll_once()
    assert tailer.analyzer.metrics.registry.get_sample_value("llmrel_analyze_late_spans_dropped_total") == 1
