"""A small LLM app, run by the tests under `opentelemetry-instrument` exactly as a user would.

Usage: `python llm_app.py BASE_URL SCENARIO` ; prints one JSON line of results per call so the
tests can compare instrumented and uninstrumented runs.
"""

from __future__ import annotations

import gc
import json
import sys

import openai
from opentelemetry import baggage, context, trace

from llmrel_instrumentation import llm_context

SECRET_PROMPT = ("My email is jane.doe@example.com, card 4111 1111 1111 1111, key "
                 "sk-proj-ABCDEFGHIJKLMNOPQRSTUV123456 and IBAN DE89 3704 0044 0532 0130 00. Help me.")
MESSAGES = [{"role": "user", "content": "Say hello."}]


def chat(client: openai.OpenAI, **kwargs: object) -> str:
    response = client.chat.completions.create(model="gpt-4o-mini", messages=kwargs.pop("messages", MESSAGES),
                                              **kwargs)
    return json.dumps({"content": response.choices[0].message.content, "usage": response.usage.total_tokens})


def stream_text(stream: object, limit: int | None = None) -> str:
    parts = []
    for index, chunk in enumerate(stream):
        if limit is not None and index >= limit:
            break
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    return "".join(parts)


def scenario_context(client: openai.OpenAI) -> list[str]:
    out = []
    with llm_context(feature="refund-bot", tenant="acme", user_id="u-42", session_id="s-1"):
        out.append(chat(client, messages=[{"role": "user", "content": SECRET_PROMPT}]))
    token = context.attach(baggage.set_baggage("llmrel.feature", "search", baggage.set_baggage("llmrel.tenant",
                                                                                                 "globex")))
    try:
        out.append(chat(client))
    finally:
        context.detach(token)
    return out


def scenario_streams(client: openai.OpenAI) -> list[str]:
    usage = {"stream_options": {"include_usage": True}}
    out = [stream_text(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **usage))]
    with llm_context(feature="early-break"):
        early = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **usage)
        out.append(stream_text(early, limit=3))
        early.close()
    with llm_context(feature="never-consumed"):
        unread = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **usage)
        del unread
        gc.collect()
    with llm_context(feature="stream-error"):
        failing = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                                 extra_headers={"x-llmrel-sim": "stream_error"}, **usage)
        try:
            stream_text(failing)
        except openai.APIError as error:
            out.append(f"error:{type(error).__name__}")
    return out


def scenario_sampling(client: openai.OpenAI) -> list[str]:
    tracer = trace.get_tracer("llm_app")
    out = []
    for index in range(40):
        with tracer.start_as_current_span(f"handle-request-{index}"), tracer.start_as_current_span("load-user"):
            pass
        with tracer.start_as_current_span(f"handle-llm-request-{index}"), tracer.start_as_current_span("prepare"):
            out.append(chat(client))
    return out


def scenario_plain(client: openai.OpenAI) -> list[str]:
    return [chat(client, temperature=0.2, max_tokens=30) for _ in range(3)]


def scenario_all(client: openai.OpenAI) -> list[str]:
    return scenario_plain(client) + scenario_context(client) + scenario_streams(client)


SCENARIOS = {"context": scenario_context, "streams": scenario_streams, "sampling": scenario_sampling,
             "plain": scenario_plain, "all": scenario_all}


def main() -> None:
    base_url, scenario = sys.argv[1], sys.argv[2]
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
    for line in SCENARIOS[scenario](client):
        print(line)


if __name__ == "__main__":
    main()
