"""An ordinary LLM app for end-to-end tests: the real openai client, no llmrel imports.

Run under `opentelemetry-instrument` with the OTel env vars, as a user runs their app.
argv[1] is the simulator's base URL.
"""

from __future__ import annotations

import sys

import openai

client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test", max_retries=0)
ask = [{"role": "user", "content": "Where is my order 1234?"}]  # 23 chars -> 6 tokens; prompt = 3 + 4 + 6

client.chat.completions.create(model="gpt-4o-mini", messages=ask, temperature=0.2, max_tokens=50,
                               extra_headers={"x-llmrel-sim-output-tokens": "7"})

stream = client.chat.completions.create(model="gpt-4o", messages=ask, stream=True,
                                        stream_options={"include_usage": True},
                                        extra_headers={"x-llmrel-sim-output-tokens": "5"})
for _ in stream:
    pass

client.embeddings.create(model="text-embedding-3-small", input="hello world")  # 11 chars -> 3 tokens

tools = [{"type": "function", "function": {"name": "lookup_order", "parameters": {
    "type": "object", "properties": {"id": {"type": "string"}}}}}]
client.chat.completions.create(model="gpt-4o-mini", messages=ask, tools=tools,
                               extra_headers={"x-llmrel-sim": "tool_call", "x-llmrel-sim-output-tokens": "9"})

for control in ("rate_limit", "server_error"):
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=ask, extra_headers={"x-llmrel-sim": control})
    except openai.APIStatusError as exc:
        print(f"{control}: {exc.status_code}", file=sys.stderr)
