"""OTel GenAI semantic conventions before v1.37 (`gen_ai.system`, `prompt_tokens`, indexed or JSON content).

The main attribute set is what `opentelemetry-instrumentation-openai-v2` 2.4b0 emits by default
(semconv v1.30, measured); content there travels as log events, so spans carry none.
"""

from __future__ import annotations

import json

from llmrel.normalize import NORMALIZER_VERSION, VERSION_ATTRIBUTE, normalize_span


def test_v1_30_chat_span(span, expected):
    attrs = {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.system": "openai",
        "gen_ai.request.temperature": "0.2", "gen_ai.request.top_p": "0.9", "gen_ai.request.max_tokens": "50",
        "gen_ai.request.seed": "42", "server.address": "127.0.0.1", "server.port": "18083",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.response.finish_reasons": '["length","stop"]',
        "gen_ai.response.id": "chatcmpl-12572", "gen_ai.openai.response.service_tier": "default",
        "gen_ai.usage.input_tokens": "13", "gen_ai.usage.output_tokens": "6",
    }
    record = span(attrs, span_name="chat gpt-4o-mini")
    assert normalize_span(record) == expected(
        record, provider="openai", model="gpt-4o-mini", request_model="gpt-4o-mini",
        response_model="gpt-4o-mini-2024-07-18", input_tokens=13, output_tokens=6, cost_status="unpriced",
        finish_reason="length", temperature=0.2, top_p=0.9, max_tokens=50, response_id="chatcmpl-12572",
        server_address="127.0.0.1", convention="genai-semconv-legacy",
        attributes={"gen_ai.request.seed": "42", "server.port": "18083",
                    "gen_ai.openai.response.service_tier": "default", VERSION_ATTRIBUTE: NORMALIZER_VERSION},
    )


def test_old_usage_names_and_old_provider_spellings(span):
    attrs = {"gen_ai.system": "az.ai.openai", "gen_ai.request.model": "prod-4o",
             "gen_ai.usage.prompt_tokens": "100", "gen_ai.usage.completion_tokens": "20",
             "gen_ai.usage.cache_read_input_tokens": "64", "gen_ai.usage.cache_creation_input_tokens": "8"}
    call = normalize_span(span(attrs, span_name="chat prod-4o"))
    assert (call.provider, call.operation, call.convention) == ("azure.ai.openai", "chat", "genai-semconv-legacy")
    assert (call.input_tokens, call.output_tokens, call.cached_input_tokens, call.cache_creation_input_tokens) == (
        100, 20, 64, 8)
    assert call.attributes == {VERSION_ATTRIBUTE: NORMALIZER_VERSION}


def test_operation_is_inferred_from_the_span_name_without_operation_name(span):
    call = normalize_span(span({"gen_ai.system": "vertex_ai"}, span_name="embeddings text-embedding-005"))
    assert (call.operation, call.provider) == ("embeddings", "gcp.vertex_ai")


def test_indexed_prompt_and_completion_content(span):
    attrs = {
        "gen_ai.operation.name": "chat", "gen_ai.system": "openai",
        "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "You are terse.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": json.dumps([{"type": "text", "text": "What is in this image?"},
                                               {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]),
        "gen_ai.prompt.10.role": "user", "gen_ai.prompt.10.content": "tenth",
        "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "A cat.",
        "gen_ai.completion.0.finish_reason": "tool_calls",
        "gen_ai.completion.0.tool_calls.0.id": "c1", "gen_ai.completion.0.tool_calls.0.name": "zoom",
        "gen_ai.completion.0.tool_calls.0.arguments": "{}",
        "gen_ai.completion.0.tool_calls.1.id": "c2", "gen_ai.completion.0.tool_calls.1.name": "crop",
        "gen_ai.prompt.name": "vision-v2",
    }
    call = normalize_span(span(attrs))
    assert call.input_text == "system: You are terse.\nuser: What is in this image?\nuser: tenth"
    assert (call.output_text, call.tool_calls, call.finish_reason) == ("A cat.", 2, "tool_calls")
    assert call.attributes == {"gen_ai.prompt.name": "vision-v2", VERSION_ATTRIBUTE: NORMALIZER_VERSION}


def test_obsolete_json_prompt_and_completion_attributes(span):
    attrs = {"gen_ai.system": "anthropic", "gen_ai.request.model": "claude-3-5-haiku",
             "gen_ai.prompt": '[{"role":"user","content":"Hi there"}]',
             "gen_ai.completion": '[{"role":"assistant","content":"Hello!","finish_reason":"end_turn"}]'}
    call = normalize_span(span(attrs))
    assert (call.input_text, call.output_text, call.finish_reason) == ("user: Hi there", "Hello!", "end_turn")
    assert call.attributes == {VERSION_ATTRIBUTE: NORMALIZER_VERSION}
