"""`llmrel analyze` tailing on the real embedded store: spans written by another writer into `otel_traces`
are normalized into `llm_calls` exactly once, across restarts and across two shards."""

from __future__ import annotations

import json
import threading

import pytest

from llmrel.analyzers.runtime import Analyzer
from llmrel.analyzers.tail import Shard, Tailer
from llmrel.model import SPAN_COLUMNS, SpanRecord
from llmrel.normalize import normalize_span
from llmrel.pricing import Pricer

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
    shard = shard or Shard()
    analyzer = Analyzer.from_settings(settings, store, analyzer_id=shard.analyzer_id)
    return Tailer(store, analyzer, shard=shard, normalize=normalize_span, price=Pricer().price, settle_s=0,
                  batch_rows=97, **kwargs)


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
