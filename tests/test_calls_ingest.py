"""One span -> call adapter for both ways spans arrive: the receiver's (OTLP, prepared by `Preparer`) and
`llmrel analyze`'s (spans a collector wrote into `otel_traces`), on the real embedded store.

Built from the defect where `llmrel analyze` normalized stored spans without the server's content
policy: with `LLMREL_CONTENT_POLICY=redacted`, prompts and completions reached `llm_calls` as written
(emails, API keys, phone numbers), and with `off` they were stored at all.
"""

from __future__ import annotations

import json
import threading

import pytest

from llmrel.analyzers.tail import Shard
from llmrel.cli.compose import build_tailer
from llmrel.model import LLM_CALL_COLUMNS, SPAN_COLUMNS, SpanRecord
from llmrel.receiver.prepare import PrepareConfig, Preparer
from llmrel.receiver.server import _column_types
from tests.faults import poison_redaction

T0 = 1_764_000_000_000_000_000
SECRETS = ("ann@example.com", "sk-proj-abcdefghijklmnopqrstuvwxyz123456", "+33 6 12 34 56 78")


def _span(i: int, prompt: str, answer: str = "call +33 6 12 34 56 78") -> SpanRecord:
    attrs = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": "12", "gen_ai.usage.output_tokens": "4",
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": prompt}]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": answer}]}]),
    }
    return SpanRecord(T0 + i * 1_000_000, f"{i:032x}", f"{i:016x}", "", "", "chat gpt-4o-mini", "Client", "support",
                      {"service.name": "support"}, "opentelemetry.instrumentation.openai", "0.1", attrs, 700_000_000,
                      "Unset", "", [], [], [], [], [], [], [])


SPANS = [_span(i, f"mail {SECRETS[0]} with key {SECRETS[1]} (#{i})") for i in range(6)]
CONTENT = "SELECT SpanId, InputText, OutputText, Attributes['llmrel.redactions.server'], CostUSD FROM llm_calls " \
          "FINAL ORDER BY SpanId"


def _analyze(store, settings, spans: list[SpanRecord]) -> None:
    """What `llmrel analyze --once` does, over spans another writer stored."""
    store.insert("otel_traces", spans, column_names=list(SPAN_COLUMNS))
    tailer = build_tailer(settings, store, settle_s=0)
    try:
        tailer.run(threading.Event(), once=True)
    finally:
        tailer.analyzer.close()


def _received_calls(store, policy: str, spans: list[SpanRecord]) -> list[tuple]:
    """The calls the receiver builds from the same spans (its preparer, as for an OTLP request)."""
    preparer = Preparer(PrepareConfig(policy, None, _column_types(store, "otel_traces", SPAN_COLUMNS),
                                      _column_types(store, "llm_calls", LLM_CALL_COLUMNS)))
    calls = preparer.prepare_spans(list(spans)).calls
    return sorted((c.span_id, c.input_text, c.output_text, c.attributes.get("llmrel.redactions.server", ""),
                   pytest.approx(c.cost_usd)) for c in calls)


@pytest.mark.parametrize("policy", ["redacted", "off"])
def test_llmrel_analyze_stores_call_content_under_the_servers_policy(store, settings, policy):
    _analyze(store, settings.model_copy(update={"content_policy": policy}), SPANS)
    rows = store.query(CONTENT).result_rows
    assert len(rows) == len(SPANS)
    stored_text = " ".join(r[1] + r[2] for r in rows)
    assert not [s for s in SECRETS if s in stored_text]
    if policy == "redacted":
        assert all("[REDACTED:EMAIL]" in r[1] and "[REDACTED:API_KEY]" in r[1] and r[3] == "3" for r in rows)
    else:
        assert stored_text.strip() == ""
    assert rows == _received_calls(store, policy, SPANS)  # the same rows the receiver would have stored


def test_full_policy_keeps_content_on_both_paths(store, settings):
    _analyze(store, settings, SPANS)
    rows = store.query(CONTENT).result_rows
    assert SECRETS[0] in rows[0][1]
    assert rows == _received_calls(store, "full", SPANS)


def test_a_stored_span_the_policy_fails_on_gives_no_call_and_the_tailer_moves_on(store, settings, monkeypatch):
    """Fault injection: redaction raises on one marked value. The receiver rejects such a span; a stored
    one cannot be rejected, so it gets no call (never an unredacted one) and the others are stored."""
    poison_redaction(monkeypatch)
    spans = [*SPANS[:3], _span(99, f"POISON {SECRETS[0]}")]
    redacted = settings.model_copy(update={"content_policy": "redacted"})
    _analyze(store, redacted, spans)
    assert [r[0] for r in store.query(CONTENT).result_rows] == [s.span_id for s in SPANS[:3]]
    tailer = build_tailer(redacted, store, settle_s=0)
    assert tailer.analyzer.watermark.span_id == f"{99:016x}"  # read past it, not stuck on it


def test_shards_store_the_receivers_rows_between_them(store, settings):
    """With `--shard i/N` each worker applies the policy to its own streams' calls only; together they store
    every call once, each as the receiver would."""
    spans = [_span(i, f"mail {SECRETS[0]} (#{i})") for i in range(12)]
    spans = [s._replace(service_name=f"svc-{i % 4}") for i, s in enumerate(spans)]
    redacted = settings.model_copy(update={"content_policy": "redacted"})
    store.insert("otel_traces", spans, column_names=list(SPAN_COLUMNS))
    seen = []
    for index in range(2):
        tailer = build_tailer(redacted, store, Shard(index, 2), settle_s=0)
        tailer.run(threading.Event(), once=True)
        tailer.analyzer.close()
        seen.append(tailer.analyzer.engine.calls_seen)
    assert sum(seen) == len(spans) and min(seen) > 0
    assert store.query(CONTENT).result_rows == _received_calls(store, "redacted", spans)
