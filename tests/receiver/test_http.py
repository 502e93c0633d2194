"""OTLP/HTTP on the receiver: protobuf, hand-written JSON per the spec, gzip, and error statuses."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.otlp_builders import chat_span, request

PB = {"Content-Type": "application/x-protobuf"}

# Written by hand from the OTLP/JSON rules: hex ids, enums as integers, int64 as decimal strings,
# an unknown field that must be ignored.
JSON_REQUEST = {
    "resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "refund-bot"}},
            {"key": "deployment.environment.name", "value": {"stringValue": "prod"}},
        ]},
        "scopeSpans": [{
            "scope": {"name": "opentelemetry.instrumentation.openai.v1", "version": "0.62.4"},
            "spans": [{
                "traceId": "5B8EFFF798038103D269B633813FC60C",
                "spanId": "EEE19B7EC3C1B174",
                "parentSpanId": "EEE19B7EC3C1B173",
                "name": "openai.chat",
                "kind": 3,
                "startTimeUnixNano": "1764115200123456789",
                "endTimeUnixNano": "1764115201000000001",
                "attributes": [
                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                    {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1200"}},
                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 80}},
                    {"key": "gen_ai.request.temperature", "value": {"doubleValue": 0.5}},
                    {"key": "gen_ai.response.finish_reasons",
                     "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}}},
                ],
                "events": [{"timeUnixNano": "1764115200500000000", "name": "first-token"}],
                "status": {"code": 1},
                "someFutureField": {"x": 1},
            }],
        }],
    }],
}


def post(receiver, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{receiver.http_port}/v1/traces", content=body, headers=headers, timeout=30)


def test_protobuf_request_is_stored(receiver, query):
    response = post(receiver, request([chat_span(1), chat_span(2)]).SerializeToString(), PB)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    assert query("SELECT count() FROM llm_calls") == [(2,)]


def test_hand_written_json_request_decodes_exactly(receiver, query):
    response = post(receiver, json.dumps(JSON_REQUEST).encode(), {"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    rows = query("SELECT TraceId, SpanId, ParentSpanId, toUnixTimestamp64Nano(Timestamp), Duration, SpanKind, "
                 "StatusCode, ServiceName, SpanAttributes['gen_ai.usage.input_tokens'], "
                 "SpanAttributes['gen_ai.response.finish_reasons'], toUnixTimestamp64Nano(Events.Timestamp[1]) "
                 "FROM otel_traces")
    assert rows == [("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "eee19b7ec3c1b173",
                     1764115200123456789, 876543212, "Client", "Ok", "refund-bot", "1200", '["stop"]',
                     1764115200500000000)]
    calls = query("SELECT ServiceName, Environment, Model, InputTokens, OutputTokens, Temperature, FinishReason "
                  "FROM llm_calls")
    assert calls == [("refund-bot", "prod", "gpt-4o-mini", 1200, 80, 0.5, "stop")]


def test_gzip_protobuf(receiver, query):
    body = gzip.compress(request([chat_span(1)]).SerializeToString())
    response = post(receiver, body, {**PB, "Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert query("SELECT count() FROM otel_traces") == [(1,)]


def test_corrupt_gzip_is_400(receiver):
    response = post(receiver, b"\x1f\x8b\x08\x00garbage", {**PB, "Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert "gzip" in status_pb2.Status.FromString(response.content).message


@pytest.mark.parametrize("body, media, expected", [
    (b"{not json", "application/json", "not valid JSON"),
    (json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}).encode(),
     "application/json", "not hex"),
    (b"\x0a\xff\xff\xff\xff\x0f", "application/x-protobuf", "not a valid protobuf"),
])
def test_malformed_bodies_are_400_with_a_status_message(receiver, body, media, expected):
    response = post(receiver, body, {"Content-Type": media})
    assert response.status_code == 400
    if media == "application/json":
        status = response.json()
        assert status["code"] == code_pb2.INVALID_ARGUMENT
        assert expected in status["message"]
    else:
        assert expected in status_pb2.Status.FromString(response.content).message


def test_wrong_content_type_is_415(receiver):
    assert post(receiver, b"hello", {"Content-Type": "text/plain"}).status_code == 415


def test_oversized_body_and_gzip_bomb_are_413(make_receiver, query):
    receiver = make_receiver(max_recv_mib=1)
    big = request([chat_span(1, extra={"blob": "x" * (1 << 20)})]).SerializeToString()
    assert post(receiver, big, PB).status_code == 413
    assert post(receiver, gzip.compress(big), {**PB, "Content-Encoding": "gzip"}).status_code == 413
    assert query("SELECT count() FROM otel_traces") == [(0,)]


def test_bearer_token_required_when_configured(make_receiver):
    receiver = make_receiver(auth_token="s3cret")
    body = request([chat_span(1)]).SerializeToString()
    assert post(receiver, body, PB).status_code == 401
    assert post(receiver, body, {**PB, "Authorization": "Bearer nope"}).status_code == 401
    assert post(receiver, body, {**PB, "Authorization": "Bearer s3cret"}).status_code == 200
    api = httpx.get(f"http://127.0.0.1:{receiver.http_port}/api/v1/report", timeout=30)
    assert api.status_code == 401


def test_partial_success_in_json(receiver, query):
    doc = json.loads(json.dumps(JSON_REQUEST))
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**spans[0], "spanId": "", "name": "no id"})
    response = post(receiver, json.dumps(doc).encode(), {"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert "span_id must be 8 non-zero bytes" in response.json()["partialSuccess"]["errorMessage"]
    assert query("SELECT count() FROM otel_traces") == [(1,)]


def test_health_metrics_and_report_api(receiver):
    base = f"http://127.0.0.1:{receiver.http_port}"
    post(receiver, request([chat_span(1)]).SerializeToString(), PB)
    assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
    metrics = httpx.get(f"{base}/metrics").text
    assert "llmrel_spans_stored_total 1.0" in metrics
    report = httpx.get(f"{base}/api/v1/report", params={"since": "3650d"}).json()
    assert report["totals"]["calls"] == 1
