"""OpenInference (`openinference.span.kind`, `llm.*` flattened messages, `input.value`/`output.value`).

Attribute names as in `openinference-semantic-conventions` 0.1.42 and what
`openinference-instrumentation-openai` sets on chat, embedding and streaming calls.
"""

from __future__ import annotations

import json

from llmrel.normalize import NORMALIZER_VERSION, VERSION_ATTRIBUTE, WARNINGS_ATTRIBUTE, normalize_span


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
        record, provider="azure.ai.openai", model="gpt-4o-2024-11-20", request_model="prod-4o",
        response_model="gpt-4o-2024-11-20", input_tokens=120, output_tokens=15, cached_input_tokens=64,
        cache_creation_input_tokens=0, reasoning_tokens=0, cost_status="unpriced", finish_reason="tool_calls",
        temperature=0.7, top_p=1.0, max_tokens=256, tool_calls=1, session_id="sess-42", user_id="user-7",
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


def test_tool_and_agent_spans_are_rows_and_chains_are_not(span):
    tool = {"openinference.span.kind": "TOOL", "tool.name": "lookup_order", "input.value": '{"id":"A-1"}',
            "output.value": "shipped", "tool.description": "Find an order"}
    call = normalize_span(span(tool))
    assert (call.operation, call.tool_name, call.input_text, call.output_text) == (
        "execute_tool", "lookup_order", '{"id":"A-1"}', "shipped")
    assert call.attributes == {"tool.description": "Find an order", VERSION_ATTRIBUTE: NORMALIZER_VERSION}

    agent = normalize_span(span({"openinference.span.kind": "AGENT", "agent.name": "support"}))
    assert agent.operation == "invoke_agent"
    for kind in ("CHAIN", "GUARDRAIL", "EVALUATOR", "PROMPT", "UNKNOWN", "not-a-kind"):
        assert normalize_span(span({"openinference.span.kind": kind, "llm.model_name": "x"})) is None


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
