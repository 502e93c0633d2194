"""Test and benchmark support (not used by the product): seeded synthetic `LlmCall` streams with labelled shifts.

Stationary traffic is heavy-tailed the way production LLM traffic is: log-normal prompt and
completion sizes, latency = time to first token + per-token decode time with log-normal noise
and a slow-call tail, 1% errors, 2% `length` finishes, 10% tool calls. A `Shift` changes one
property from call `onset` on.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from llmrel.analyzers.callfields import empty_call
from llmrel.model import LlmCall

_WORDS = ("the model returns a concise answer about the order status and the next delivery window for "
          "the customer account while keeping the tone friendly and the facts grounded in the ticket ")
_TEXT = (_WORDS * 40)[:16000]
_PRICE_IN, _PRICE_OUT = 2.5e-6, 10e-6
_JSON_WRAPPER = len(json.dumps({"answer": "", "confidence": 0.9}))


@dataclass(frozen=True)
class Traffic:
    """Parameters of one stream's stationary traffic."""

    service: str = "support-bot"
    model: str = "gpt-4o"
    response_model: str = "gpt-4o-2024-08-06"
    operation: str = "chat"
    feature: str = "answer"
    tenant: str = "acme"
    input_tokens_median: float = 800.0
    output_tokens_median: float = 250.0
    ttft_median_ms: float = 350.0
    ms_per_token: float = 12.0
    latency_factor: float = 1.0
    error_rate: float = 0.01
    length_rate: float = 0.02
    tool_call_rate: float = 0.10
    invalid_json_rate: float = 0.0
    json_output: bool = True
    price_factor: float = 1.0
    calls_per_second: float = 2.0


@dataclass(frozen=True)
class Shift:
    """A labelled change of `Traffic` from call index `onset` on; `metric` is what should drift."""

    name: str
    onset: int
    changes: dict[str, float | str]
    metric: str


SCENARIOS: tuple[Shift, ...] = (
    Shift("output tokens x2", 3000, {"output_tokens_median": 500.0}, "output_tokens"),
    Shift("latency +50%", 3000, {"latency_factor": 1.5}, "latency_ms"),
    Shift("error rate 1% -> 5%", 3000, {"error_rate": 0.05}, "error_rate"),
    Shift("length finish 2% -> 15%", 3000, {"length_rate": 0.15}, "length_finish_rate"),
    Shift("invalid JSON 0% -> 10%", 3000, {"invalid_json_rate": 0.10}, "violation_rate"),
    Shift("model silently swapped", 3000,
          {"response_model": "gpt-4o-mini-2024-07-18", "latency_factor": 0.7, "price_factor": 0.06},
          "model_swap_rate"),
)


def generate(traffic: Traffic, count: int, seed: int, *, shift: Shift | None = None,
             start_ns: int = 1_764_000_000_000_000_000, trace_prefix: str = "") -> Iterator[LlmCall]:
    """`count` calls of one stream, 1/`calls_per_second` apart in event time."""
    rng = random.Random(seed)
    step_ns = int(1e9 / traffic.calls_per_second)
    shifted = replace(traffic, **shift.changes) if shift else traffic  # type: ignore[arg-type]
    for i in range(count):
        t = shifted if shift is not None and i >= shift.onset else traffic
        yield _call(t, rng, start_ns + i * step_ns, f"{trace_prefix}{seed:08x}{i:024x}"[-32:])


def _call(t: Traffic, rng: random.Random, ts_ns: int, trace_id: str) -> LlmCall:
    failed = rng.random() < t.error_rate
    input_tokens = max(1, int(rng.lognormvariate(math.log(t.input_tokens_median), 0.8)))
    output_tokens = max(1, int(rng.lognormvariate(math.log(t.output_tokens_median), 0.6)))
    ttft_ms = rng.lognormvariate(math.log(t.ttft_median_ms), 0.5)
    decode_ms = output_tokens * t.ms_per_token * rng.lognormvariate(0.0, 0.3)
    latency_ms = (ttft_ms + decode_ms) * t.latency_factor * (4.0 if rng.random() < 0.01 else 1.0)
    finish = "length" if rng.random() < t.length_rate else "stop"
    tools = 1 if rng.random() < t.tool_call_rate else 0
    body = _TEXT[: output_tokens * 4]
    text = json.dumps({"answer": body, "confidence": 0.9}) if t.json_output else body
    if t.json_output and rng.random() < t.invalid_json_rate:
        text = text[: len(text) // 2]
    cost = (input_tokens * _PRICE_IN + output_tokens * _PRICE_OUT) * t.price_factor
    common = {
        "timestamp_ns": ts_ns, "trace_id": trace_id, "span_id": trace_id[-16:], "span_name": f"chat {t.model}",
        "service_name": t.service, "provider": "openai", "operation": t.operation, "model": t.model,
        "request_model": t.model,
        "feature": t.feature, "tenant": t.tenant, "input_text": "user question", "is_streaming": True,
        "convention": "genai-semconv",
    }
    if failed:
        return empty_call(**common, duration_ns=int(latency_ms * 0.3e6), status_code="Error",
                          error_type="RateLimitError", cost_status="no_usage")
    return empty_call(
        **common, response_model=t.response_model, input_tokens=input_tokens,
        output_tokens=output_tokens, cost_usd=cost, cost_status="priced", duration_ns=int(latency_ms * 1e6),
        time_to_first_token_ns=int(ttft_ms * t.latency_factor * 1e6), finish_reason=finish, status_code="Ok",
        tool_calls=tools, output_text=text)


def history_frame(traffic: Traffic, count: int, seed: int) -> pl.DataFrame:
    """`count` stationary calls of `traffic` drawn with numpy, as the columns `history.load_history` reads
    from `llm_calls` (same distributions as `generate`, without building the calls: a fast warm start)."""
    rng = np.random.default_rng(seed)
    t = traffic
    failed = rng.random(count) < t.error_rate
    input_tokens = np.maximum(1, rng.lognormal(math.log(t.input_tokens_median), 0.8, count).astype(np.int64))
    output_tokens = np.maximum(1, rng.lognormal(math.log(t.output_tokens_median), 0.6, count).astype(np.int64))
    ttft_ms = rng.lognormal(math.log(t.ttft_median_ms), 0.5, count)
    decode_ms = output_tokens * t.ms_per_token * rng.lognormal(0.0, 0.3, count)
    latency_ms = (ttft_ms + decode_ms) * t.latency_factor * np.where(rng.random(count) < 0.01, 4.0, 1.0)
    length = rng.random(count) < t.length_rate
    tools = rng.random(count) < t.tool_call_rate
    chars = np.minimum(output_tokens * 4, len(_TEXT)) + (_JSON_WRAPPER if t.json_output else 0)
    cost = (input_tokens * _PRICE_IN + output_tokens * _PRICE_OUT) * t.price_factor
    frame = pl.DataFrame({
        "service": [t.service] * count, "model": [t.model] * count, "operation": [t.operation] * count,
        "feature": [t.feature] * count, "failed": failed.astype(np.uint8),
        "latency_ms": np.where(failed, latency_ms * 0.3, latency_ms).astype(np.int64).astype(np.float64),
        "ttft_ms": ttft_ms * t.latency_factor, "input_tokens": input_tokens, "output_tokens": output_tokens,
        "cost_usd": cost, "finish_reason": np.where(failed, "", np.where(length, "length", "stop")),
        "tool_calls": np.where(~failed & tools, 1, 0).astype(np.uint32),
        "response_model": np.where(failed, "", t.response_model), "output_chars": np.where(failed, 0, chars),
    })
    # a failed call stores no tokens, cost or time to first token
    answered = ~pl.col("failed").cast(pl.Boolean)
    return frame.with_columns(pl.when(answered).then(pl.col(c)).alias(c)
                              for c in ("ttft_ms", "input_tokens", "output_tokens", "cost_usd"))
