"""OpenLLMetry / Traceloop: 0.62.4 as measured (GenAI names + Traceloop extras), and the <= 0.54 `llm.*` era."""

from __future__ import annotations

import json

from llmrel.normalize import (
    NORMALIZER_VERSION,
    VERSION_ATTRIBUTE,
    WARNINGS_ATTRIBUTE,
    SpanClass,
    classify_span,
    normalize_span,
)

INPUT = json.dumps([{"role": "system", "parts": [{"content": "You are terse.", "type": "text"}]},
                    {"role": "user", "parts": [{"content": "Say hello please", "type": "text"}]}])
OUTPUT = json.dumps([{"role": "assistant", "parts": [{"content": "Hello from the fake server.", "type": "text"}],
                      "finish_reason": "stop"}])


def test_traceloop_0_62_chat_span(span, expected):
    attrs = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-chat",
        "gen_ai.request.max_tokens": "50", "gen_ai.request.temperature": "0.2", "gen_ai.request.top_p": "0.9",
        "gen_ai.request.frequency_penalty": "0.1", "gen_ai.request.presence_penalty": "0.2",
        "gen_ai.user": "user-123", "gen_ai.is_streaming": "false",
        "gen_ai.openai.api_base": "http://127.0.0.1:18083/v1/", "gen_ai.input.messages": INPUT,
        "gen_ai.response.model": "gpt-chat-2024-01-01", "gen_ai.response.id": "chatcmpl-fake97542",
        "gen_ai.response.finish_reasons": '["stop"]', "gen_ai.openai.response.system_fingerprint": "fp_fake",
        "openai.response.service_tier": "default", "gen_ai.usage.total_tokens": "19",
        "gen_ai.usage.output_tokens": "6", "gen_ai.usage.input_tokens": "13",
        "gen_ai.usage.cache_read.input_tokens": "0", "gen_ai.usage.reasoning_tokens": "0",
        "gen_ai.output.messages": OUTPUT,
    }
    record = span(attrs, span_name="openai.chat", scope_name="opentelemetry.instrumentation.openai.v1")
    assert normalize_span(record) == expected(
        record, provider="openai", model="gpt-chat", request_model="gpt-chat",
        response_model="gpt-chat-2024-01-01", input_tokens=13, output_tokens=6, cached_input_tokens=0,
        reasoning_tokens=0, cost_status="unpriced", finish_reason="stop", temperature=0.2, top_p=0.9,
        max_tokens=50, response_id="chatcmpl-fake97542", server_address="127.0.0.1", user_id="user-123",
        input_text="system: You are terse.\nuser: Say hello please", output_text="Hello from the fake server.",
        convention="openllmetry",
        attributes={
            "gen_ai.request.frequency_penalty": "0.1", "gen_ai.request.presence_penalty": "0.2",
            "gen_ai.openai.response.system_fingerprint": "fp_fake", "openai.response.service_tier": "default",
            "gen_ai.usage.total_tokens": "19", VERSION_ATTRIBUTE: NORMALIZER_VERSION,
        },
    )


def test_stream_time_to_first_token_from_the_first_chunk_event(span):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-stream",
             "gen_ai.is_streaming": "true", "gen_ai.usage.input_tokens": "13", "gen_ai.usage.output_tokens": "6"}
    start = 1_764_140_400_000_000_000
    chunks = [start + 180_000_000, start + 190_000_000, start + 200_000_000]
    record = span(attrs, timestamp_ns=start, status_code="Ok", events_timestamp=chunks,
                  events_name=["gen_ai.content.completion.chunk"] * 3, events_attributes=[{}, {}, {}])
    call = normalize_span(record)
    assert (call.is_streaming, call.time_to_first_token_ns, call.status_code) == (True, 180_000_000, "Ok")


def test_tool_call_finish_reason_is_mapped_to_the_semconv_value(span):
    output = [{"role": "assistant", "finish_reason": "tool_call", "parts": [
        {"type": "tool_call", "name": "get_weather", "id": "call_fake", "arguments": {"city": "Paris"}}]}]
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.is_streaming": "false",
             "gen_ai.response.finish_reasons": '["tool_call"]', "gen_ai.output.messages": json.dumps(output),
             "gen_ai.tool.definitions": '[{"type":"function","name":"get_weather"}]'}
    call = normalize_span(span(attrs))
    assert (call.finish_reason, call.tool_calls, call.output_text) == ("tool_calls", 1, "")
    assert call.attributes["gen_ai.tool.definitions"] == '[{"type":"function","name":"get_weather"}]'


def test_tool_call_finish_without_captured_content_counts_one_call(span):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.is_streaming": "false",
             "gen_ai.response.finish_reasons": '["tool_call"]'}
    call = normalize_span(span(attrs))
    assert (call.finish_reason, call.tool_calls, call.input_text, call.output_text) == ("tool_calls", 1, "", "")


def test_error_span_with_exception_event(span):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "err-500",
             "gen_ai.is_streaming": "false", "error.type": "InternalServerError"}
    event = {"exception.type": "InternalServerError", "exception.message": "Error code: 500",
             "exception.stacktrace": "Traceback ...", "exception.escaped": "False"}
    record = span(attrs, status_code="Error", status_message="Error code: 500 - server error",
                  events_timestamp=[1_764_140_401_000_000_000], events_name=["exception"], events_attributes=[event])
    call = normalize_span(record)
    assert (call.error_type, call.status_code, call.cost_status) == ("InternalServerError", "Error", "no_usage")


def test_error_type_from_the_exception_event_alone(span):
    attrs = {"gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "openai", "gen_ai.is_streaming": "false"}
    record = span(attrs, status_code="Error", events_timestamp=[1, 2], events_name=["retry", "exception"],
                  events_attributes=[{}, {"exception.type": "<class 'openai.RateLimitError'>"}])
    assert normalize_span(record).error_type == "RateLimitError"


def test_pre_0_55_llm_attributes(span, expected):
    attrs = {
        "llm.request.type": "chat", "gen_ai.system": "OpenAI", "gen_ai.request.model": "gpt-3.5-turbo",
        "llm.is_streaming": "true", "llm.usage.total_tokens": "30", "llm.headers": "None",
        "gen_ai.usage.prompt_tokens": "21", "gen_ai.usage.completion_tokens": "9",
        "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Tell me a joke",
        "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "No.",
        "gen_ai.completion.0.finish_reason": "stop", "llm.user": "u-1",
        "traceloop.association.properties.session_id": "s-1", "traceloop.workflow.name": "jokes",
    }
    record = span(attrs, span_name="openai.chat")
    assert normalize_span(record) == expected(
        record, provider="openai", model="gpt-3.5-turbo", request_model="gpt-3.5-turbo", input_tokens=21,
        output_tokens=9, cost_status="unpriced", is_streaming=True, finish_reason="stop", user_id="u-1",
        session_id="s-1", input_text="user: Tell me a joke", output_text="No.", convention="openllmetry",
        attributes={"llm.usage.total_tokens": "30", "llm.headers": "None", "traceloop.workflow.name": "jokes",
                    VERSION_ATTRIBUTE: NORMALIZER_VERSION},
    )


def test_request_types_map_to_operations(span):
    for request_type, operation in (("completion", "text_completion"), ("embedding", "embeddings"),
                                    ("rerank", "rerank"), ("chat", "chat")):
        call = normalize_span(span({"llm.request.type": request_type, "gen_ai.system": "cohere"}))
        assert (call.operation, call.convention) == (operation, "openllmetry")


def test_traceloop_sdk_workflow_task_agent_and_tool_spans_are_steps_not_calls(span):
    for kind, operation in (("workflow", "invoke_workflow"), ("task", "task"), ("agent", "invoke_agent"),
                            ("tool", "execute_tool")):
        attrs = {"traceloop.span.kind": kind, "traceloop.entity.name": "lookup_order",
                 "traceloop.entity.input": '{"args":["A-1"]}', "traceloop.workflow.name": "support"}
        assert normalize_span(span(attrs, span_name=f"lookup_order.{kind}", span_kind="Internal")) is None
        assert classify_span(attrs) == SpanClass("openllmetry", operation)


def test_bad_streaming_flag_is_a_warning(span):
    call = normalize_span(span({"gen_ai.operation.name": "chat", "gen_ai.is_streaming": "maybe"}))
    assert call.is_streaming is False
    assert json.loads(call.attributes[WARNINGS_ATTRIBUTE]) == ["gen_ai.is_streaming: not a boolean: 'maybe'"]
