"""Every OTLP/gRPC status path of the receiver, over a real gRPC channel into the embedded store."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.otlp_builders import chat_span, plain_span, request
from tests.receiver.conftest import export_raw


def _status(exc: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    return exc.code(), exc.details()


def test_valid_request_is_stored_and_acknowledged_without_partial_success(receiver, query):
    body = request([chat_span(1), chat_span(2), plain_span(3)]).SerializeToString()
    response = ExportTraceServiceResponse.FromString(export_raw(receiver.grpc_port, body))
    assert not response.HasField("partial_success")
    assert query("SELECT count() FROM otel_traces") == [(3,)]
    assert query("SELECT count() FROM llm_calls") == [(2,)]


def test_empty_request_succeeds(receiver, query):
    response = ExportTraceServiceResponse.FromString(export_raw(receiver.grpc_port, b""))
    assert not response.HasField("partial_success")
    assert query("SELECT count() FROM otel_traces") == [(0,)]


def test_bad_protobuf_is_invalid_argument_with_a_message(receiver):
    with pytest.raises(grpc.RpcError) as caught:
        export_raw(receiver.grpc_port, b"\x0a\xff\xff\xff\xff\x0f garbage")
    code, details = _status(caught.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid protobuf" in details


def test_invalid_utf8_in_a_string_field_is_invalid_argument(receiver, query):
    valid = request([chat_span(1)]).SerializeToString()
    corrupted = valid.replace(b"gpt-4o-mini", b"gpt-4o-m\xff\xfei", 1)
    with pytest.raises(grpc.RpcError) as caught:
        export_raw(receiver.grpc_port, corrupted)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert query("SELECT count() FROM otel_traces") == [(0,)]


def test_unknown_fields_are_ignored(receiver, query):
    body = request([chat_span(1)]).SerializeToString() + b"\xa2\x06\x03abc"  # field 100, length-delimited
    export_raw(receiver.grpc_port, body)
    assert query("SELECT count() FROM otel_traces") == [(1,)]


def test_bad_spans_get_partial_success_and_the_rest_is_stored(receiver, query):
    bad_ids = chat_span(7)
    bad_ids.trace_id = b"\x01\x02"
    backwards = chat_span(8)
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1
    body = request([chat_span(1), bad_ids, backwards]).SerializeToString()
    response = ExportTraceServiceResponse.FromString(export_raw(receiver.grpc_port, body))
    assert response.partial_success.rejected_spans == 2
    assert "trace_id must be 16 non-zero bytes" in response.partial_success.error_message
    assert "end_time_unix_nano is before" in response.partial_success.error_message
    assert query("SELECT count() FROM otel_traces") == [(1,)]


def test_oversized_body_is_resource_exhausted(make_receiver):
    receiver = make_receiver(max_recv_mib=1)
    huge = chat_span(1, extra={"blob": "x" * (1 << 20)})
    with pytest.raises(grpc.RpcError) as caught:
        export_raw(receiver.grpc_port, request([huge]).SerializeToString())
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_ten_thousand_attributes_and_a_one_megabyte_attribute_are_stored(receiver, query):
    many = chat_span(1, extra={f"k{i}": i for i in range(10_000)})
    big = chat_span(2, extra={"gen_ai.output.messages": "y" * (1 << 20)})
    export_raw(receiver.grpc_port, request([many, big]).SerializeToString())
    assert query("SELECT length(SpanAttributes) FROM otel_traces ORDER BY SpanId") == [(10_007,), (8,)]
    assert query("SELECT max(length(SpanAttributes['gen_ai.output.messages'])) FROM otel_traces") == [(1 << 20,)]


def test_negative_or_absurd_token_counts_are_stored_as_unknown(receiver, query):
    spans = [chat_span(1, input_tokens=-5, output_tokens=10), chat_span(2, input_tokens=10**15, output_tokens=3),
             chat_span(3, input_tokens="many", output_tokens=4)]
    export_raw(receiver.grpc_port, request(spans).SerializeToString())
    rows = query("SELECT InputTokens, OutputTokens FROM llm_calls ORDER BY Timestamp")
    assert rows == [(None, 10), (None, 3), (None, 4)]


def test_wrong_attribute_types_are_flattened_like_the_collector(receiver, query):
    span = chat_span(1, extra={"gen_ai.request.temperature": 0.7, "flag": True, "bytes": b"hi",
                               "list": [1, 2.5, "a"]})
    span.attributes.append(KeyValue(key="empty", value=AnyValue()))
    export_raw(receiver.grpc_port, request([span]).SerializeToString())
    attrs = query("SELECT SpanAttributes FROM otel_traces")[0][0]
    assert attrs["gen_ai.request.temperature"] == "0.7"
    assert attrs["flag"] == "true"
    assert attrs["bytes"] == "aGk="
    assert attrs["list"] == '[1,2.5,"a"]'
    assert attrs["empty"] == ""
    assert attrs["gen_ai.usage.input_tokens"] == "100"


def test_missing_or_wrong_token_is_unauthenticated(make_receiver, query):
    receiver = make_receiver(auth_token="s3cret")
    body = request([chat_span(1)]).SerializeToString()
    for metadata in ((), (("authorization", "Bearer wrong"),)):
        with pytest.raises(grpc.RpcError) as caught:
            export_raw(receiver.grpc_port, body, metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    export_raw(receiver.grpc_port, body, metadata=(("authorization", "Bearer s3cret"),))
    assert query("SELECT count() FROM otel_traces") == [(1,)]


def test_overload_is_resource_exhausted_with_retry_info(make_receiver):
    receiver = make_receiver(max_recv_mib=1, max_inflight_mib=1)
    receiver._ingestor.reserve(1 << 20)  # hold the whole in-flight budget, as a slow export would
    try:
        with pytest.raises(grpc.RpcError) as caught:
            export_raw(receiver.grpc_port, request([chat_span(1)]).SerializeToString())
    finally:
        receiver._ingestor.release(1 << 20)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(caught.value.trailing_metadata())
    retry = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert retry.retry_delay.seconds == receiver.settings.retry_after_s
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.details[0].Is(error_details_pb2.RetryInfo.DESCRIPTOR)


def test_worker_processes_keep_every_status(make_receiver, query):
    receiver = make_receiver(ingest_workers=1)
    with pytest.raises(grpc.RpcError) as caught:
        export_raw(receiver.grpc_port, b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad = chat_span(2)
    bad.span_id = b""
    response = ExportTraceServiceResponse.FromString(
        export_raw(receiver.grpc_port, request([chat_span(1), bad]).SerializeToString()))
    assert response.partial_success.rejected_spans == 1
    assert query("SELECT count() FROM otel_traces") == [(1,)]
    assert query("SELECT InputTokens, CostStatus FROM llm_calls") == [(100, "priced")]
