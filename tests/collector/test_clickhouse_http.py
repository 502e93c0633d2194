"""app (OTel SDK) -> collector (`clickhouse-direct.yaml`, the contrib clickhouseexporter with its defaults:
clickhouse-go over HTTP, LZ4 compressed blocks, async_insert) -> `llmrel serve`'s ClickHouse HTTP
interface as `llmrel_writer`: the spans land in `otel_traces`, become `llm_calls` once, and are analyzed."""

from __future__ import annotations

import pytest

from tests.collector.collector_harness import WRITER_PASSWORD
from tests.collector.genai_app import GenAiApp, Request

pytestmark = pytest.mark.collector

QUERIES = {
    "span_ids": "SELECT SpanId FROM otel_traces ORDER BY SpanId",
    "calls": "SELECT count(), uniqExact(SpanId) FROM llm_calls",
    "call_fields": "SELECT DISTINCT ServiceName, Provider, Operation, RequestModel, InputTokens, OutputTokens, "
                   "ErrorType FROM llm_calls ORDER BY ErrorType",
    "findings": "SELECT DISTINCT RuleId FROM llm_findings FINAL",
}


def test_collector_writes_through_the_clickhouse_interface(llmrel_server, start_collector):
    llmrel_server.start()
    collector = start_collector("clickhouse-direct.yaml", {
        "CLICKHOUSE_ENDPOINT": f"http://127.0.0.1:{llmrel_server.clickhouse_http_port}",
        "CLICKHOUSE_DB": "default", "CLICKHOUSE_USER": "llmrel_writer", "CLICKHOUSE_PASSWORD": WRITER_PASSWORD,
    }, overrides=("exporters::clickhouse::sending_queue::batch::flush_timeout: 200ms",))
    app = GenAiApp(f"127.0.0.1:{collector.grpc_port}", seed=11)
    for index in range(20):
        app.handle(Request(llm_error="RateLimitError" if index % 5 == 0 else None))
    sent = app.flush()
    app.shutdown()

    collector.wait_metric("otelcol_exporter_sent_spans", len(sent), exporter="clickhouse")
    assert collector.metric("otelcol_exporter_send_failed_spans", exporter="clickhouse") == 0
    llmrel_server.stop()
    rows = llmrel_server.query(QUERIES)

    assert [r[0] for r in rows["span_ids"]] == sorted(format(s.context.span_id, "016x") for s in sent)
    assert rows["calls"] == [[20, 20]]
    assert rows["call_fields"] == [["support-bot", "openai", "chat", "gpt-4o-mini", 120, 40, ""],
                                   ["support-bot", "openai", "chat", "gpt-4o-mini", 120, 40, "RateLimitError"]]
    assert ["call-error"] in rows["findings"]  # analyzed in serve, as spans received over OTLP are
