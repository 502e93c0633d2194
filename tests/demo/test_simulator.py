"""The real `openai` client against the LLM simulator served on a loopback port."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import jsonschema
import openai
import pytest

from llmrel.demo import Degradation, Simulator, SimulatorConfig, SimulatorServer
from llmrel.demo.state import SimulatorState

FAST = SimulatorConfig(seed=7, latency_median_s=0.0, ttft_median_s=0.0, rate_limit_rate=0.0,
                       server_error_rate=0.0)
HELLO = [{"role": "user", "content": "hello there"}]  # 11 chars -> 3 tokens; 3 + (4 + 3) = 10 prompt tokens
TOOLS = [{"type": "function", "function": {
    "name": "lookup_order", "description": "Find an order",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}, "count": {"type": "integer"}},
                   "required": ["order_id", "count"], "additionalProperties": False}}}]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with Simulator(FAST).run() as server:
        yield server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[openai.OpenAI]:
    sim.recover()
    with openai.OpenAI(base_url=sim.base_url, api_key="test-key", max_retries=0) as c:
        yield c


def _controls(flags: str = "", tokens: int | None = None) -> dict[str, str]:
    headers = {"x-llmrel-sim": flags} if flags else {}
    if tokens is not None:
        headers["x-llmrel-sim-output-tokens"] = str(tokens)
    return headers


def test_chat_reports_documented_usage_and_snapshot_model(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, extra_headers=_controls(tokens=12))
    assert r.model == "gpt-4o-mini-2024-07-18"
    assert r.choices[0].finish_reason == "stop"
    assert len(r.choices[0].message.content.split(" ")) == 12
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (10, 12, 22)
    assert r.usage.prompt_tokens_details.cached_tokens == 0
    assert r.usage.completion_tokens_details.reasoning_tokens == 0
    assert r._request_id and r._request_id.startswith("req_")


def test_long_shared_prefix_reports_cached_tokens(client: openai.OpenAI) -> None:
    messages = [{"role": "system", "content": "s" * 5000}, {"role": "user", "content": "hi"}]
    r = client.chat.completions.create(model="gpt-4o", messages=messages, extra_headers=_controls(tokens=3))
    # 3 + (4 + 1250) + (4 + 1) = 1262; the prefix without the last message is 1257 -> 9 blocks of 128.
    assert r.usage.prompt_tokens == 1262
    assert r.usage.prompt_tokens_details.cached_tokens == 1152


def test_reasoning_model_spends_part_of_output_on_reasoning(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="o3-mini", messages=HELLO, extra_headers=_controls(tokens=20))
    assert r.usage.completion_tokens == 20
    assert r.usage.completion_tokens_details.reasoning_tokens == 12
    assert len(r.choices[0].message.content.split(" ")) == 8


def test_stream_with_usage_matches_whole_answer(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.model_dump() == whole.usage.model_dump()
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True,
                                                 extra_headers=_controls(tokens=4)))
    assert len(chunks) == 1 + 4 + 1
    assert all(c.usage is None and c.choices for c in chunks)


def test_stream_error_raises_mid_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True,
                                            extra_headers=_controls("stream_error", tokens=10))
    received = []
    with pytest.raises(openai.APIError, match="while streaming"):
        for chunk in stream:
            received.append(chunk)
    assert 1 <= len(received) < 12


def test_tool_call_then_answer_after_tool_result(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="gpt-4o", messages=HELLO, tools=TOOLS, tool_choice="required")
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert r.choices[0].message.content is None
    jsonschema.validate(json.loads(call.function.arguments), TOOLS[0]["function"]["parameters"])
    follow_up = [*HELLO, r.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": '{"status": "shipped"}'}]
    answer = client.chat.completions.create(model="gpt-4o", messages=follow_up, tools=TOOLS)
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content


def test_streamed_tool_call_assembles_to_the_whole_one(client: openai.OpenAI) -> None:
    kwargs = {"model": "gpt-4o", "messages": HELLO, "tools": TOOLS, "extra_headers": _controls("tool_call")}
    whole = client.chat.completions.create(**kwargs).choices[0].message.tool_calls[0]
    chunks = list(client.chat.completions.create(stream=True, **kwargs))
    head = chunks[0].choices[0].delta.tool_calls[0]
    arguments = "".join(c.choices[0].delta.tool_calls[0].function.arguments
                        for c in chunks if c.choices[0].delta.tool_calls)
    assert (head.id, head.function.name, arguments) == (whole.id, whole.function.name, whole.function.arguments)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_choice_none_and_text_control_answer_in_text(client: openai.OpenAI) -> None:
    for kwargs in ({"tool_choice": "none"}, {"extra_headers": _controls("text")}):
        r = client.chat.completions.create(model="gpt-4o", messages=HELLO, tools=TOOLS, **kwargs)
        assert r.choices[0].message.tool_calls is None
        assert r.choices[0].finish_reason == "stop"


def test_json_modes_parse_and_invalid_json_control_breaks_them(client: openai.OpenAI) -> None:
    obj = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO,
                                         response_format={"type": "json_object"})
    assert set(json.loads(obj.choices[0].message.content)) == {"answer", "confidence", "tags"}
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "priority": {"enum": ["low", "high"]},
                                               "amount": {"type": "number"}},
              "required": ["name", "priority", "amount"], "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "ticket", "schema": schema, "strict": True}}
    good = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, response_format=fmt)
    jsonschema.validate(json.loads(good.choices[0].message.content), schema)
    bad = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, response_format=fmt,
                                         extra_headers=_controls("invalid_json"))
    assert bad.choices[0].finish_reason == "stop"
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad.choices[0].message.content)


def test_max_tokens_and_length_control_finish_with_length(client: openai.OpenAI) -> None:
    capped = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, max_completion_tokens=5,
                                            extra_headers=_controls(tokens=50))
    assert (capped.choices[0].finish_reason, capped.usage.completion_tokens) == ("length", 5)
    forced = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, extra_headers=_controls("length"))
    assert forced.choices[0].finish_reason == "length"


def test_embeddings_base64_default_equals_float(client: openai.OpenAI) -> None:
    texts = ["refund policy", "where is my parcel?"]  # 4 + 5 tokens
    default = client.embeddings.create(model="text-embedding-3-small", input=texts)
    floats = client.embeddings.create(model="text-embedding-3-small", input=texts, encoding_format="float")
    assert len(default.data) == 2 and len(default.data[0].embedding) == FAST.embedding_dimensions
    for a, b in zip(default.data, floats.data, strict=True):
        assert a.embedding == pytest.approx(b.embedding, abs=1e-6)  # float32 wire form vs JSON float64
    assert default.usage.prompt_tokens == default.usage.total_tokens == 9
    small = client.embeddings.create(model="text-embedding-3-large", input="x", dimensions=8)
    assert len(small.data[0].embedding) == 8
    assert sum(x * x for x in small.data[0].embedding) == pytest.approx(1.0, abs=1e-5)


def test_legacy_completions_whole_and_stream(client: openai.OpenAI) -> None:
    whole = client.completions.create(model="gpt-4o-mini", prompt="Say hi", extra_headers=_controls(tokens=6))
    assert (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (2, 6)
    chunks = list(client.completions.create(model="gpt-4o-mini", prompt="Say hi", stream=True,
                                            stream_options={"include_usage": True},
                                            extra_headers=_controls(tokens=6)))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert chunks[-1].usage.completion_tokens == 6


def test_rate_limit_and_server_error_surface_as_openai_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, extra_headers=_controls("rate_limit"))
    assert limited.value.response.headers["retry-after"] == "1"
    assert limited.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError) as failed:
        client.embeddings.create(model="text-embedding-3-small", input="x", extra_headers=_controls("server_error"))
    assert failed.value.type == "server_error"


def test_invalid_requests_are_rejected_like_the_api(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-9", messages=HELLO)
    with pytest.raises(openai.BadRequestError, match="unknown x-llmrel-sim controls"):
        client.chat.completions.create(model="gpt-4o", messages=HELLO, extra_headers=_controls("explode"))
    assert [m.id for m in client.models.list()] == list(FAST.models)


def test_degradation_by_admin_api_changes_latency_tokens_and_model() -> None:
    config = SimulatorConfig(seed=3, latency_median_s=0.02, latency_sigma=0.0, ttft_median_s=0.0,
                             degradation=Degradation(latency_multiplier=5.0, output_tokens_multiplier=2.0,
                                                     rate_limit_rate=0.0, server_error_rate=0.0, length_rate=0.0,
                                                     invalid_json_rate=0.0, response_model="gpt-4o-mini-0000"))
    with Simulator(config).run() as sim, openai.OpenAI(base_url=sim.base_url, api_key="k", max_retries=0) as c:
        def call() -> tuple[openai.types.chat.ChatCompletion, float]:
            raw = c.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO,
                                                               extra_headers=_controls(tokens=10))
            return raw.parse(), float(raw.headers["openai-processing-ms"])

        healthy, healthy_ms = call()
        state = httpx.post(f"{sim.url}/admin/degrade", json={"server_error_rate": 0.0}).json()
        assert state["degraded"] and state["degradation"]["latency_multiplier"] == 5.0
        started = time.monotonic()
        degraded, degraded_ms = call()
        assert time.monotonic() - started >= 0.1
        assert httpx.post(f"{sim.url}/admin/recover").json()["degraded"] is False
        recovered, _ = call()

    assert (healthy.model, healthy.usage.completion_tokens, healthy_ms) == ("gpt-4o-2024-08-06", 10, 20)
    assert (degraded.model, degraded.usage.completion_tokens, degraded_ms) == ("gpt-4o-mini-0000", 20, 100)
    assert degraded.system_fingerprint != healthy.system_fingerprint
    assert (recovered.model, recovered.usage.completion_tokens) == ("gpt-4o-2024-08-06", 10)


def test_admin_rejects_unknown_degradation_fields(sim: SimulatorServer) -> None:
    response = httpx.post(f"{sim.url}/admin/degrade", json={"latency": 2})
    assert response.status_code == 400
    assert "unknown degradation fields: latency" in response.json()["error"]["message"]
    assert httpx.get(f"{sim.url}/admin/state").json()["degraded"] is False


def test_scheduled_degradation_fires_at_its_time() -> None:
    now = [100.0]
    state = SimulatorState(SimulatorConfig(degrade_at_s=30.0), clock=lambda: now[0])
    now[0] = 129.9
    assert state.active_degradation() is None
    assert state.snapshot()["degrade_in_s"] == pytest.approx(0.1)
    now[0] = 130.0
    assert state.active_degradation() == SimulatorConfig().degradation
    state.recover()
    assert state.active_degradation() is None


def test_degrade_at_zero_degrades_served_requests() -> None:
    config = SimulatorConfig(latency_median_s=0.0, ttft_median_s=0.0, degrade_at_s=0.0,
                             degradation=Degradation(rate_limit_rate=0.0, server_error_rate=0.0))
    with Simulator(config).run() as sim, openai.OpenAI(base_url=sim.base_url, api_key="k", max_retries=0) as c:
        r = c.chat.completions.create(model="gpt-4o", messages=HELLO)
        assert sim.state()["degraded"] is True
    assert r.model == config.degradation.response_model


def test_same_seed_same_answers_and_fates() -> None:
    def run(seed: int) -> list[tuple[str, str | None, int] | str]:
        config = SimulatorConfig(seed=seed, latency_median_s=0.0, ttft_median_s=0.0, rate_limit_rate=0.3,
                                 server_error_rate=0.2)
        out: list[tuple[str, str | None, int] | str] = []
        with Simulator(config).run() as sim, openai.OpenAI(base_url=sim.base_url, api_key="k",
                                                           max_retries=0) as c:
            for _ in range(12):
                try:
                    r = c.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
                    out.append((r.id, r.choices[0].message.content, r.usage.completion_tokens))
                except openai.APIStatusError as exc:
                    out.append(type(exc).__name__)
        return out

    first, again, other = run(11), run(11), run(12)
    assert first == again
    assert first != other
    kinds = {x if isinstance(x, str) else "ok" for x in first}
    assert kinds == {"ok", "RateLimitError", "InternalServerError"}
    answers = {x for x in first if not isinstance(x, str)}
    assert len(answers) == 1  # a retried identical request gets the identical answer


def test_client_retries_past_rate_limits() -> None:
    config = SimulatorConfig(seed=5, latency_median_s=0.0, ttft_median_s=0.0, rate_limit_rate=0.5,
                             retry_after_s=0.01)
    with Simulator(config).run() as sim, openai.OpenAI(base_url=sim.base_url, api_key="k", max_retries=8) as c:
        for i in range(5):
            c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i}"}])
        requests = sim.state()["requests"]
    assert requests["ok"] == 5 and requests["rate_limit"] >= 1


def test_invalid_config_lists_every_problem() -> None:
    with pytest.raises(ValueError, match=r"rate_limit_rate must be in \[0, 1\].*degradation.latency_multiplier"):
        Simulator(SimulatorConfig(rate_limit_rate=2.0, degradation=Degradation(latency_multiplier=0.0)))
