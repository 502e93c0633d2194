"""Malformed values never raise: they become None and are listed in `llmrel.normalize.warnings`."""

from __future__ import annotations

import json
import random

import pytest

from llmrel.model import LlmCall
from llmrel.normalize import WARNINGS_ATTRIBUTE, normalize_span


def warnings_of(call: LlmCall) -> list[str]:
    return json.loads(call.attributes.get(WARNINGS_ATTRIBUTE, "[]"))


def test_negative_absurd_and_non_numeric_token_counts(span):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
             "gen_ai.usage.input_tokens": "-5", "gen_ai.usage.output_tokens": "10000000000",
             "gen_ai.usage.cache_read.input_tokens": "lots", "gen_ai.usage.reasoning.output_tokens": "2.5",
             "gen_ai.usage.cache_creation.input_tokens": "1000000000"}
    call = normalize_span(span(attrs))
    assert (call.input_tokens, call.output_tokens, call.cached_input_tokens, call.reasoning_tokens) == (
        None, None, None, None)
    assert call.cache_creation_input_tokens == 1_000_000_000
    assert call.cost_status == "unpriced"
    assert warnings_of(call) == [
        "gen_ai.usage.input_tokens: negative: -5",
        "gen_ai.usage.output_tokens: absurdly large: 10000000000",
        "gen_ai.usage.cache_read.input_tokens: not an integer: 'lots'",
        "gen_ai.usage.reasoning.output_tokens: not an integer: '2.5'",
    ]
    assert not any(k.startswith("gen_ai.usage.") for k in call.attributes)


def test_all_counts_bad_means_no_usage(span):
    call = normalize_span(span({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": "-1"}))
    assert (call.input_tokens, call.cost_status) == (None, "no_usage")


def test_integral_doubles_are_counts(span):
    call = normalize_span(span({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": "1e3",
                                "gen_ai.request.max_tokens": "256.0"}))
    assert (call.input_tokens, call.max_tokens) == (1000, 256)
    assert WARNINGS_ATTRIBUTE not in call.attributes


def test_bad_parameters_and_time_to_first_chunk(span):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.temperature": "NaN", "gen_ai.request.top_p": "high",
             "gen_ai.request.max_tokens": "-1", "gen_ai.response.time_to_first_chunk": "-0.5"}
    call = normalize_span(span(attrs))
    assert (call.temperature, call.top_p, call.max_tokens, call.time_to_first_token_ns) == (None, None, None, None)
    assert sorted(warnings_of(call)) == [
        "gen_ai.request.max_tokens: negative: -1",
        "gen_ai.request.temperature: not a finite number: 'NaN'",
        "gen_ai.request.top_p: not a finite number: 'high'",
        "gen_ai.response.time_to_first_chunk: negative: -0.5",
    ]


def test_garbage_content_gives_empty_text(span):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.input.messages": "[{not json",
             "gen_ai.output.messages": '{"role":"assistant"}', "gen_ai.response.finish_reasons": "[",
             "gen_ai.prompt.x.content": "not indexed"}
    call = normalize_span(span(attrs))
    assert (call.input_text, call.output_text, call.tool_calls, call.finish_reason) == ("", "", 0, "[")
    assert call.attributes["gen_ai.prompt.x.content"] == "not indexed"


def test_chunk_event_before_span_start_is_ignored(span):
    record = span({"gen_ai.operation.name": "chat"}, timestamp_ns=1000, events_timestamp=[900],
                  events_name=["gen_ai.content.completion.chunk"], events_attributes=[{}])
    assert normalize_span(record).time_to_first_token_ns is None


@pytest.mark.parametrize("attrs", [
    {},
    {"http.request.method": "POST", "url.full": "https://api.openai.com/v1/chat/completions"},
    {"db.system.name": "postgresql", "db.query.text": "SELECT 1"},
    {"gen_ai.conversation.id": "conv-1", "user.id": "u"},
    {"llm.model_name": "gpt-4o"},
    {"traceloop.span.kind": "task", "traceloop.entity.name": "prepare"},
], ids=["empty", "http", "db", "conversation-only", "model-without-kind", "traceloop-task"])
def test_non_llm_spans_are_none(span, attrs):
    assert normalize_span(span(attrs, span_name="POST /v1/chat")) is None


def test_random_garbage_never_raises(span):
    rng = random.Random(20261126)
    keys = ["gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system", "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens", "gen_ai.request.temperature", "gen_ai.request.max_tokens",
            "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.response.finish_reasons",
            "gen_ai.prompt.0.content", "gen_ai.completion.0.tool_calls.0.name", "openinference.span.kind",
            "llm.invocation_parameters", "llm.output_messages.0.message.tool_calls.0.tool_call.id",
            "gen_ai.response.time_to_first_chunk", "error.type", "gen_ai.openai.api_base", "llm.request.type"]
    values = ["", "-1", "1e400", "nan", "[", "[]", "{}", "null", "true", '[{"parts":5}]', '[{"parts":[1,{}]}]',
              '[{"role":null,"content":{"a":1}}]', "LLM", "TOOL", "chat", "\u0000\ud7ff", "http://[::1", "9" * 40]
    for _ in range(2000):
        attrs = {rng.choice(keys): rng.choice(values) for _ in range(rng.randint(1, 8))}
        call = normalize_span(span(attrs))
        assert call is None or isinstance(call, LlmCall)


def test_odd_content_shapes_never_raise():
    from llmrel.model import SpanRecord
    from llmrel.normalize import normalize_span

    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "m",
             "gen_ai.output.messages": '[{"role": "assistant", "parts": [{"type": ["x"], "content": "hi"}]}]',
             "gen_ai.prompt.\u00b2.content": "superscript index"}
    span = SpanRecord(1, "a" * 32, "b" * 16, "", "", "chat m", "Client", "svc", {}, "", "", attrs, 5, "Unset", "",
                      [], [], [], [], [], [], [])
    call = normalize_span(span)
    assert call is not None and call.request_model == "m" and call.output_text == ""
