"""app (OTel SDK) -> collector (`forward.yaml`) -> `llmrel serve`: every span once, also across an outage."""

from __future__ import annotations

import time

import pytest

from tests.collector.collector_harness import AUTH_TOKEN, wait_until
from tests.collector.genai_app import GenAiApp, Request

pytestmark = pytest.mark.collector

LLMREL_EXPORTER = "otlp_grpc/llmrel"
# Retry quickly so an outage of a few seconds is bridged within the test's time.
FAST_RETRY = (
    f"exporters::{LLMREL_EXPORTER}::retry_on_failure::initial_interval: 100ms",
    f"exporters::{LLMREL_EXPORTER}::retry_on_failure::max_interval: 1s",
)
STORE_QUERIES = {
    "span_ids": "SELECT SpanId FROM otel_traces ORDER BY SpanId",
    "calls": "SELECT count(), uniqExact(SpanId) FROM llm_calls",
    "calls_final": "SELECT count() FROM llm_calls FINAL",
    "call_fields": "SELECT DISTINCT ServiceName, Provider, Operation, RequestModel, InputTokens, OutputTokens "
                   "FROM llm_calls",
}


def _forward_env(server) -> dict[str, str]:
    return {"LLMREL_OTLP_ENDPOINT": server.grpc_endpoint, "LLMREL_AUTH_TOKEN": AUTH_TOKEN}


def _send(app: GenAiApp, requests: int) -> None:
    for _ in range(requests):
        app.handle(Request())


def test_every_span_arrives_once(llmrel_server, start_collector):
    llmrel_server.start()
    collector = start_collector("forward.yaml", _forward_env(llmrel_server))
    app = GenAiApp(f"127.0.0.1:{collector.grpc_port}", seed=6)
    _send(app, 30)
    sent = app.flush()
    app.shutdown()

    collector.wait_metric("otelcol_exporter_sent_spans", len(sent), exporter=LLMREL_EXPORTER)
    # The pipeline's existing backend still gets every span too.
    collector.wait_metric("otelcol_exporter_sent_spans", len(sent), exporter="debug")
    llmrel_server.stop()
    rows = llmrel_server.query(STORE_QUERIES)

    assert [r[0] for r in rows["span_ids"]] == sorted(format(s.context.span_id, "016x") for s in sent)
    assert rows["calls"] == [[30, 30]]
    assert rows["calls_final"] == [[30]]
    assert rows["call_fields"] == [["support-bot", "openai", "chat", "gpt-4o-mini", 120, 40]]


def test_outage_is_bridged_by_the_sending_queue(llmrel_server, start_collector):
    llmrel_server.start()
    collector = start_collector("forward.yaml", _forward_env(llmrel_server), overrides=FAST_RETRY)
    app = GenAiApp(f"127.0.0.1:{collector.grpc_port}", seed=7)
    _send(app, 20)
    before_outage = len(app.flush())
    collector.wait_metric("otelcol_exporter_sent_spans", before_outage, exporter=LLMREL_EXPORTER)

    llmrel_server.stop()
    _send(app, 25)
    sent = app.flush()
    app.shutdown()
    collector.wait_metric("otelcol_receiver_accepted_spans", len(sent))
    wait_until(lambda: "Exporting failed. Will retry" in collector.log(), "the exporter to retry",
               log=collector.log_path)
    time.sleep(3)  # llmrel stays down through several retries
    assert collector.metric("otelcol_exporter_sent_spans", exporter=LLMREL_EXPORTER) == before_outage

    llmrel_server.start()
    collector.wait_metric("otelcol_exporter_sent_spans", len(sent), exporter=LLMREL_EXPORTER)
    assert collector.metric("otelcol_exporter_send_failed_spans", exporter=LLMREL_EXPORTER) == 0
    llmrel_server.stop()
    rows = llmrel_server.query(STORE_QUERIES)

    assert [r[0] for r in rows["span_ids"]] == sorted(format(s.context.span_id, "016x") for s in sent)
    assert rows["calls"] == [[45, 45]]
    assert rows["calls_final"] == [[45]]


def test_a_wrong_token_is_refused_and_not_retried(llmrel_server, start_collector):
    llmrel_server.start()
    env = {**_forward_env(llmrel_server), "LLMREL_AUTH_TOKEN": "not-the-token"}
    collector = start_collector("forward.yaml", env, overrides=FAST_RETRY)
    app = GenAiApp(f"127.0.0.1:{collector.grpc_port}", seed=8)
    _send(app, 3)
    sent = app.flush()
    app.shutdown()

    # Unauthenticated is permanent for the exporter: the spans are dropped at once, not queued.
    collector.wait_metric("otelcol_exporter_send_failed_spans", len(sent), exporter=LLMREL_EXPORTER)
    assert collector.metric("otelcol_exporter_sent_spans", exporter=LLMREL_EXPORTER) == 0
    llmrel_server.stop()
    assert llmrel_server.query({"spans": "SELECT count() FROM otel_traces"}) == {"spans": [[0]]}
