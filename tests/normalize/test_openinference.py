"""OpenInference (`openinference.span.kind`, `llm.*` flattened messages, `input.value`/`output.value`).

Attribute names as in `openinference-semantic-conventions` 0.1.42 and what
`openinference-instrumentation-openai` sets on chat, embedding and streaming calls.
"""

from __future__ import annotations

import json

from llmrel.normalize import (
    NORMALIZER_VERSION,
    VERSION_ATTRIBUTE,
    WARNINGS_ATTRIBUTE,
    SpanClass,
    classify_span,
    is_llm_call,
    normalize_error_type,
    normalize_span,
)
from tests.normalize.test_golden import normalized_rows


def llm_attributes() -> dict[str, str]:
    return {
        "openinference.span.kind": "LLM",
        "llm.system": "openai",
        "llm.provider": "azure",
        "llm.model_name": "gpt-4o-2024-11-20",
        "llm.invocation_parameters": '{"model":"prod-4o","temperature":0.7,"top_p":1,"max_tokens":256}',
        "input.value": '{"messages":[{"role":"user","content":"Where is my order?"}],"model":"prod-4o"}',
        "input.mime_type": "application/json",
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "You help with orders.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.contents.0.message_content.type": "text",
        "llm.input_messages.1.message.contents.0.message_content.text": "Where is my order?",
        "llm.input_messages.1.message.contents.1.message_content.type": "image",
        "llm.input_messages.1.message.contents.1.message_content.image.image.url": "https://x/receipt.png",
        "output.value": '{"id":"chatcmpl-1","choices":[]}',
        "output.mime_type": "application/json",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "Checking.",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup_order",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"id":"A-1"}',
        "llm.tools.0.tool.json_schema": '{"type":"function","function":{"name":"lookup_order"}}',
        "llm.token_count.prompt": "120",
        "llm.token_count.completion": "15",
        "llm.token_count.total": "135",
        "llm.token_count.prompt_details.cache_read": "64",
        "llm.token_count.prompt_details.cache_write": "0",
        "llm.token_count.completion_details.reasoning": "0",
        "llm.finish_reason": "tool_calls",
        "session.id": "sess-42",
        "user.id": "user-7",
        "metadata": '{"tier":"gold"}',
    }


def test_llm_span_maps_every_column(span, expected):
    record = span(llm_attributes(), span_name="ChatCompletion", span_kind="Internal")
    assert normalize_span(record) == expected(
        record, provider="azure.ai.openai", model="prod-4o", request_model="prod-4o",
        response_model="gpt-4o-2024-11-20", input_tokens=120, output_tokens=15, cached_input_tokens=64,
        cache_creation_input_tokens=0, reasoning_tokens=0, cost_status="unpriced", finish_reason="tool_calls",
        temperature=0.7, top_p=1.0, max_tokens=256, tool_calls=1, response_id="chatcmpl-1", session_id="sess-42",
        user_id="user-7",
        input_text="system: You help with orders.\nuser: Where is my order?", output_text="Checking.",
        convention="openinference",
        attributes={
            "llm.invocation_parameters": '{"model":"prod-4o","temperature":0.7,"top_p":1,"max_tokens":256}',
            "llm.tools.0.tool.json_schema": '{"type":"function","function":{"name":"lookup_order"}}',
            "llm.token_count.total": "135", "metadata": '{"tier":"gold"}', VERSION_ATTRIBUTE: NORMALIZER_VERSION,
        },
    )


def test_streaming_from_invocation_parameters_and_first_token_event(span):
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
             "llm.invocation_parameters": '{"stream":true,"max_completion_tokens":64}'}
    start = 1_764_140_400_000_000_000
    record = span(attrs, timestamp_ns=start, events_timestamp=[start + 420_000_000],
                  events_name=["First Token Stream Event"], events_attributes=[{}])
    call = normalize_span(record)
    assert (call.is_streaming, call.time_to_first_token_ns, call.max_tokens) == (True, 420_000_000, 64)
    assert (call.request_model, call.response_model, call.model) == ("gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini")


def test_input_and_output_values_are_the_fallback_text(span):
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "claude-3-5-sonnet", "llm.system": "anthropic",
             "input.value": "Summarise this", "output.value": "Summary."}
    call = normalize_span(span(attrs))
    assert (call.input_text, call.output_text, call.provider) == ("Summarise this", "Summary.", "anthropic")
    assert call.attributes == {VERSION_ATTRIBUTE: NORMALIZER_VERSION}


def test_completions_api_prompts_and_choices(span):
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-3.5-turbo-instruct",
             "llm.prompts.0.prompt.text": "Once upon", "llm.choices.0.completion.text": " a time"}
    call = normalize_span(span(attrs))
    assert (call.operation, call.input_text, call.output_text) == ("text_completion", "Once upon", " a time")


def test_embedding_span(span):
    attrs = {"openinference.span.kind": "EMBEDDING", "embedding.model_name": "text-embedding-3-small",
             "embedding.embeddings.0.embedding.text": "hello", "llm.token_count.prompt": "2",
             "llm.token_count.total": "2"}
    call = normalize_span(span(attrs))
    assert (call.operation, call.model, call.input_tokens, call.output_tokens) == (
        "embeddings", "text-embedding-3-small", 2, None)


def test_tool_agent_chain_and_retriever_spans_are_steps_not_calls(span):
    tool = {"openinference.span.kind": "TOOL", "tool.name": "lookup_order", "input.value": '{"id":"A-1"}',
            "output.value": "shipped", "tool.description": "Find an order"}
    assert normalize_span(span(tool)) is None
    assert classify_span(tool) == SpanClass("openinference", "execute_tool")
    for kind, operation in (("AGENT", "invoke_agent"), ("CHAIN", "invoke_workflow"), ("RETRIEVER", "retrieval"),
                            ("GUARDRAIL", "guardrail"), ("EVALUATOR", "evaluation"), ("PROMPT", "prompt")):
        attrs = {"openinference.span.kind": kind, "llm.model_name": "x", "llm.token_count.prompt": "10"}
        assert normalize_span(span(attrs)) is None, kind
        assert classify_span(attrs) == SpanClass("openinference", operation)
        assert not is_llm_call(attrs)
    for kind in ("UNKNOWN", "not-a-kind"):
        assert classify_span({"openinference.span.kind": kind}) is None
    for kind in ("LLM", "EMBEDDING", "RERANKER"):
        assert is_llm_call({"openinference.span.kind": kind})


def test_invocation_parameters_that_are_not_an_object(span):
    attrs = {"openinference.span.kind": "LLM", "llm.invocation_parameters": "[1, 2",
             "llm.token_count.prompt": "ten"}
    call = normalize_span(span(attrs))
    assert (call.temperature, call.input_tokens, call.cost_status) == (None, None, "no_usage")
    assert json.loads(call.attributes[WARNINGS_ATTRIBUTE]) == [
        "llm.invocation_parameters: not a JSON object", "llm.token_count.prompt: not an integer: 'ten'"]


def test_tool_call_only_answer_keeps_output_text_empty(span):
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o",
             "output.value": '{"choices":[{"message":{"tool_calls":[{"id":"c1"}]}}]}',
             "llm.output_messages.0.message.role": "assistant",
             "llm.output_messages.0.message.tool_calls.0.tool_call.id": "c1",
             "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup_order",
             "llm.output_messages.0.message.tool_calls.1.tool_call.id": "c2",
             "llm.output_messages.0.message.tool_calls.1.tool_call.function.name": "lookup_user"}
    call = normalize_span(span(attrs))
    assert (call.tool_calls, call.output_text) == (2, "")
    assert "output.value" not in call.attributes


def test_values_only_in_the_json_bodies_are_read():
    rows = {row.span_id: row for row in normalized_rows("openinference-json-only")}
    chat, stream, anthropic, embedding = (rows[f"400000000000000{i}"] for i in range(1, 5))
    assert (chat.finish_reason, chat.response_id, chat.response_model, chat.output_text) == (
        "length", "chatcmpl-J1", "gpt-4o-2024-08-06", "Your order ships")
    assert (stream.finish_reason, stream.response_id, stream.is_streaming, stream.output_text) == (
        "stop", "chatcmpl-J2", True, "Three points.")
    assert (anthropic.finish_reason, anthropic.response_id, anthropic.model, anthropic.response_model) == (
        "end_turn", "msg_J3", "claude-3-5-haiku-latest", "claude-3-5-haiku-20241022")
    assert (embedding.model, embedding.operation, embedding.status_code, embedding.error_type) == (
        "text-embedding-3-small", "embeddings", "Error", "RateLimitError")


def test_error_types_are_canonical_across_instrumentations_and_languages():
    for raw in ("openai.RateLimitError", "<class 'openai.RateLimitError'>", "RateLimitError",
                "com.openai.errors.RateLimitException", " openai._exceptions.RateLimitError "):
        assert normalize_error_type(raw) == "RateLimitError", raw
    for raw in ("429", "timeout", "_OTHER", "Error code: 429 - rate limited", ""):
        assert normalize_error_type(raw) == raw.strip()
