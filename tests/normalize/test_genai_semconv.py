"""OTel GenAI semantic conventions, v1.37+ era (`gen_ai.provider.name`, JSON message arrays).

Attribute sets follow what `opentelemetry-instrumentation-openai-v2` 2.4b0 with util-genai 1.1b0
emits (measured), plus the semconv attributes it does not set (cache, reasoning, time to first chunk).
"""

from __future__ import annotations

import json

from llmrel.normalize import NORMALIZER_VERSION, VERSION_ATTRIBUTE, SpanClass, classify_span, normalize_span

INPUT_MESSAGES = json.dumps([
    {"role": "system", "parts": [{"content": "You are terse.", "type": "text"}]},
    {"role": "user", "parts": [{"content": "Say hello please", "type": "text"}]},
], separators=(",", ":"))
OUTPUT_MESSAGES = json.dumps([
    {"role": "assistant", "parts": [{"content": "Hello from the server.", "type": "text"}], "finish_reason": "stop"},
], separators=(",", ":"))


def chat_attributes() -> dict[str, str]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.provider.name": "openai",
        "server.address": "api.openai.com",
        "server.port": "443",
        "gen_ai.request.temperature": "0.2",
        "gen_ai.request.top_p": "0.9",
        "gen_ai.request.frequency_penalty": "0.1",
        "gen_ai.request.max_tokens": "50",
        "gen_ai.request.stop_sequences": '["\\n\\n"]',
        "gen_ai.request.seed": "42",
        "gen_ai.response.finish_reasons": '["stop"]',
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": "chatcmpl-22395",
        "gen_ai.usage.input_tokens": "1300",
        "gen_ai.usage.output_tokens": "60",
        "gen_ai.usage.cache_read.input_tokens": "1024",
        "gen_ai.usage.cache_creation.input_tokens": "0",
        "gen_ai.usage.reasoning.output_tokens": "12",
        "gen_ai.conversation.id": "conv-7",
        "gen_ai.input.messages": INPUT_MESSAGES,
        "gen_ai.output.messages": OUTPUT_MESSAGES,
        "openai.response.service_tier": "default",
        "llmrel.feature": "answer",
        "llmrel.tenant": "acme",
        "enduser.id": "user-9",
        "session.id": "sess-3",
    }


def test_chat_span_maps_every_column(span, expected):
    record = span(chat_attributes())
    assert normalize_span(record) == expected(
        record,
        provider="openai", operation="chat", model="gpt-4o", request_model="gpt-4o",
        response_model="gpt-4o-2024-08-06", input_tokens=1300, output_tokens=60, cached_input_tokens=1024,
        cache_creation_input_tokens=0, reasoning_tokens=12, cost_status="unpriced", finish_reason="stop",
        temperature=0.2, top_p=0.9, max_tokens=50, response_id="chatcmpl-22395",
        server_address="api.openai.com", conversation_id="conv-7", session_id="sess-3", user_id="user-9",
        feature="answer", tenant="acme", input_text="system: You are terse.\nuser: Say hello please",
        output_text="Hello from the server.", convention="genai-semconv",
        attributes={
            "server.port": "443", "gen_ai.request.frequency_penalty": "0.1",
            "gen_ai.request.stop_sequences": '["\\n\\n"]', "gen_ai.request.seed": "42",
            "openai.response.service_tier": "default", VERSION_ATTRIBUTE: NORMALIZER_VERSION,
        },
    )


def test_streaming_time_to_first_chunk_in_seconds(span):
    attrs = {**chat_attributes(), "gen_ai.request.stream": "true", "gen_ai.response.time_to_first_chunk": "0.35"}
    call = normalize_span(span(attrs))
    assert call.is_streaming is True
    assert call.time_to_first_token_ns == 350_000_000


def test_error_type_class_repr_is_reduced_to_the_class_name(span):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "err-429", "gen_ai.provider.name": "openai",
             "error.type": "<class 'openai.RateLimitError'>"}
    call = normalize_span(span(attrs, status_code="Error", status_message="Error code: 429"))
    assert (call.error_type, call.status_code, call.status_message) == ("RateLimitError", "Error", "Error code: 429")
    assert (call.input_tokens, call.cost_status, call.model) == (None, "no_usage", "err-429")


def test_embeddings_span(span, expected):
    attrs = {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "text-embedding-3-small",
             "gen_ai.provider.name": "openai", "gen_ai.request.encoding_formats": '["float"]',
             "gen_ai.response.model": "text-embedding-3-small", "gen_ai.embeddings.dimension.count": "8",
             "gen_ai.usage.input_tokens": "4"}
    record = span(attrs, span_name="embeddings text-embedding-3-small")
    assert normalize_span(record) == expected(
        record, provider="openai", operation="embeddings", model="text-embedding-3-small",
        request_model="text-embedding-3-small", response_model="text-embedding-3-small", input_tokens=4,
        cost_status="unpriced", convention="genai-semconv",
        attributes={"gen_ai.request.encoding_formats": '["float"]', "gen_ai.embeddings.dimension.count": "8",
                    VERSION_ATTRIBUTE: NORMALIZER_VERSION},
    )


def test_agent_tool_and_workflow_spans_are_steps_not_calls(span):
    # Semconv allows usage on an agent span; it is its children's, so counting it would count it twice.
    for operation in ("invoke_agent", "create_agent", "execute_tool", "invoke_workflow", "retrieval"):
        attrs = {"gen_ai.operation.name": operation, "gen_ai.provider.name": "openai",
                 "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": "100", "gen_ai.agent.name": "support"}
        assert normalize_span(span(attrs, status_code="Error")) is None, operation
        assert classify_span(attrs) == SpanClass("genai-semconv", operation)
    # Also when only the span name says so.
    assert normalize_span(span({"gen_ai.provider.name": "openai"}, span_name="invoke_agent support")) is None


def test_model_operations_are_calls(span):
    for operation in ("chat", "generate_content", "text_completion", "embeddings", "rerank", "image_generation"):
        attrs = {"gen_ai.operation.name": operation, "gen_ai.provider.name": "gcp.vertex_ai"}
        call = normalize_span(span(attrs))
        assert (call.operation, call.provider, call.convention) == (operation, "gcp.vertex_ai", "genai-semconv")


def test_tool_calls_in_output_are_counted_and_text_excludes_them(span):
    output = [{"role": "assistant", "finish_reason": "tool_calls", "parts": [
        {"type": "text", "content": ""},
        {"type": "tool_call", "id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}},
        {"type": "tool_call", "id": "c2", "name": "get_time", "arguments": {"tz": "CET"}},
    ]}]
    tool_turn = [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "get_weather", "arguments": {}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "result": {"temp_c": 21}}]},
    ]
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
             "gen_ai.input.messages": json.dumps(tool_turn), "gen_ai.output.messages": json.dumps(output)}
    call = normalize_span(span(attrs))
    assert (call.tool_calls, call.output_text, call.finish_reason) == (2, "", "tool_calls")
    assert call.input_text == 'user: Weather in Paris?\ntool: {"temp_c":21}'


def test_system_instructions_come_first_in_input_text(span):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
             "gen_ai.system_instructions": '[{"type":"text","content":"Be brief."}]',
             "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"Hi"}]}]'}
    call = normalize_span(span(attrs))
    assert call.input_text == "system: Be brief.\nuser: Hi"
    assert "gen_ai.system_instructions" not in call.attributes


def test_environment_falls_back_to_the_old_resource_key(span):
    record = span({"gen_ai.operation.name": "chat"},
                  resource_attributes={"service.name": "support-bot", "deployment.environment": "staging"})
    assert normalize_span(record).environment == "staging"
