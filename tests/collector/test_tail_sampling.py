"""`tail-sampling.yaml` keeps what it promises: LLM errors, slow and token-heavy LLM calls; samples the rest.

Thresholds are lowered through the config's environment placeholders (slow = 1 s, heavy =
5000 tokens, 25 % of the rest). Near misses (an error outside the LLM call, a 900 ms call,
4999 tokens) must not trigger the LLM policies. The per-policy decisions are read from the
tail-sampling processor's own metrics; what arrived is read from llmrel's store.
"""

from __future__ import annotations

import pytest

from tests.collector.collector_harness import AUTH_TOKEN, wait_until
from tests.collector.genai_app import GenAiApp, Request

pytestmark = pytest.mark.collector

KEPT_BY_POLICY = {
    "llm-error": [Request(llm_error="openai.RateLimitError")] * 3 + [Request(llm_error="openai.APITimeoutError")] * 2,
    "slow-llm-call": [Request(llm_duration_ms=1500)] * 5,
    "high-token-usage": [Request(input_tokens=8000)] * 3 + [Request(output_tokens=5000)] * 2,
}
ORDINARY = (
    [Request(request_error=True)] * 4  # an error, but not in the LLM call
    + [Request(llm_duration_ms=900)] * 4
    + [Request(input_tokens=4999, output_tokens=4999)] * 4
    + [Request()] * 28
)
SAMPLING_ENV = {
    "TAIL_SAMPLING_DECISION_WAIT": "3s",
    "TAIL_SAMPLING_AFTER_ROOT_WAIT": "500ms",
    "TAIL_SAMPLING_SLOW_LLM_MS": "1000",
    "TAIL_SAMPLING_HIGH_TOKENS": "5000",
    "TAIL_SAMPLING_PERCENT": "25",
}
TRACES_SAMPLED = "otelcol_processor_tail_sampling_count_traces_sampled"
GLOBAL_SAMPLED = "otelcol_processor_tail_sampling_global_count_traces_sampled"


def test_tail_sampling_keeps_llm_trouble_and_samples_the_rest(llmrel_server, start_collector):
    llmrel_server.start()
    env = {"LLMREL_OTLP_ENDPOINT": llmrel_server.grpc_endpoint, "LLMREL_AUTH_TOKEN": AUTH_TOKEN, **SAMPLING_ENV}
    collector = start_collector("tail-sampling.yaml", env)
    app = GenAiApp(f"127.0.0.1:{collector.grpc_port}", seed=61)
    kept_ids = {policy: {app.handle(r) for r in requests} for policy, requests in KEPT_BY_POLICY.items()}
    ordinary_ids = {app.handle(r) for r in ORDINARY}
    sent = app.flush()
    app.shutdown()
    traces = len(ordinary_ids) + sum(len(ids) for ids in kept_ids.values())

    def decided() -> bool:
        return collector.metric(GLOBAL_SAMPLED) == traces

    wait_until(decided, f"tail-sampling decisions on all {traces} traces", log=collector.log_path)
    kept_traces = collector.metric(GLOBAL_SAMPLED, sampled="true")
    collector.wait_metric("otelcol_exporter_sent_spans", 2 * kept_traces, exporter="otlp_grpc/llmrel")
    llmrel_server.stop()
    rows = llmrel_server.query({"spans": "SELECT TraceId, count() FROM otel_traces GROUP BY TraceId"})
    stored = {trace_id: spans for trace_id, spans in rows["spans"]}

    for policy, ids in kept_ids.items():
        assert collector.metric(TRACES_SAMPLED, policy=policy, sampled="true") == len(ids), policy
        assert ids <= stored.keys(), f"{policy}: traces missing from llmrel"
    sampled_ordinary = stored.keys() & ordinary_ids
    assert 0 < len(sampled_ordinary) < len(ordinary_ids)
    assert collector.metric(TRACES_SAMPLED, policy="baseline", sampled="true") >= len(sampled_ordinary)
    assert set(stored) <= ordinary_ids.union(*kept_ids.values())
    assert len(stored) == kept_traces
    assert all(spans == 2 for spans in stored.values()), "a kept trace lost spans"
    assert len(sent) == 2 * traces

