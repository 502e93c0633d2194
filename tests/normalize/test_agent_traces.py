"""Agent, tool and workflow spans are steps around LLM calls, never calls, in every convention.

Built from the defect where `invoke_agent` and OpenInference `AGENT` roots became `llm_calls` rows
(empty model, no usage, Error whenever a child failed) while Traceloop workflow roots did not.
"""

from __future__ import annotations

import threading

from llmrel.analyzers.tail import Shard
from llmrel.cli.compose import build_tailer
from llmrel.model import SPAN_COLUMNS
from llmrel.normalize import normalize_span
from llmrel.receiver.decode import decode_request, parse_json_request
from tests.normalize.test_golden import FIXTURES, normalized_rows


def test_only_the_llm_calls_of_agent_traces_are_rows():
    spans = decode_request(parse_json_request((FIXTURES / "agent-traces.json").read_bytes())).spans
    rows = normalized_rows("agent-traces")
    assert (len(spans), len(rows)) == (13, 6)
    assert {(r.service_name, r.operation, r.model, r.status_code, r.error_type) for r in rows} == {
        (service, "chat", "gpt-4o-mini", status, error)
        for service in ("agent-genai", "agent-openinference", "agent-openllmetry")
        for status, error in (("Unset", ""), ("Error", "RateLimitError"))
    }
    # Each failure is counted once, on the call that failed, not again on the agent root above it.
    assert sum(r.status_code == "Error" for r in rows) == 3
    assert sum(s.status_code == "Error" for s in spans) == 7
    # The steps stay in the trace: every call's parent is a stored span.
    assert {r.parent_span_id for r in rows} <= {s.span_id for s in spans if normalize_span(s) is None}


def test_the_collector_path_stores_the_same_calls(store, settings):
    """Spans a collector wrote into `otel_traces`, tailed by `llmrel analyze` (including its late-data
    rescan, whose SQL prefilter also matches steps): the same six calls, no step, nothing twice."""
    spans = decode_request(parse_json_request((FIXTURES / "agent-traces.json").read_bytes())).spans
    store.insert("otel_traces", spans, column_names=list(SPAN_COLUMNS))
    tailer = build_tailer(settings, store, Shard(), settle_s=0, rescan_s=0)
    try:
        tailer.run(threading.Event(), once=True)
        tailer.poll_once()  # a rescan: the steps are never "missing" calls
    finally:
        tailer.analyzer.close()
    rows = store.query("SELECT SpanId, Operation FROM llm_calls FINAL ORDER BY SpanId").result_rows
    assert rows == sorted((r.span_id, r.operation) for r in normalized_rows("agent-traces"))
