"""What happens to one request: error, latency, output size and quirks (pure; randomness passed in).

Two random streams keep results reproducible:

* the *content* stream, seeded by `(seed, request digest)`: output-token draw, words, tool arguments, tool
  choice. The same request body gives the same answer and the same `usage`, whatever else is in flight;
* the *fate* stream, seeded by `(seed, request digest, n)` where `n` counts earlier identical requests:
  errors, latency, time to first token and degradation quirks, so a retried request can succeed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from llmrel.demo.config import Degradation, SimulatorConfig

CONTROL_HEADER = "x-llmrel-sim"
"""Comma-separated controls forcing exact behaviour for one request (see `CONTROLS`)."""
OUTPUT_TOKENS_HEADER = "x-llmrel-sim-output-tokens"
"""Forces the completion token count (before the degradation multiplier and `max_tokens`)."""
LATENCY_MS_HEADER = "x-llmrel-sim-latency-ms"
"""Forces the request's total latency in milliseconds (before the degradation multiplier)."""

CONTROLS: frozenset[str] = frozenset({
    "rate_limit",     # answer 429 with retry-after
    "server_error",   # answer 500
    "tool_call",      # call a tool (the request must have `tools`)
    "text",           # answer with text even when tools are offered
    "length",         # finish_reason="length" (JSON output is cut off too)
    "invalid_json",   # JSON-mode answer that does not parse
    "stream_error",   # a stream sends half its chunks, then an error event
    "degraded",       # apply the configured degradation to this request only
})

ErrorKind = Literal["rate_limit", "server_error"]


@dataclass(frozen=True)
class Controls:
    """Per-request overrides read from the request headers."""

    flags: frozenset[str] = frozenset()
    output_tokens: int | None = None
    latency_s: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Controls:
        """Parse the control headers; unknown flags raise ValueError."""
        flags = frozenset(f.strip() for f in headers.get(CONTROL_HEADER, "").split(",") if f.strip())
        unknown = sorted(flags - CONTROLS)
        if unknown:
            raise ValueError(f"unknown {CONTROL_HEADER} controls: {', '.join(unknown)}")
        tokens = headers.get(OUTPUT_TOKENS_HEADER)
        latency = headers.get(LATENCY_MS_HEADER)
        return cls(flags=flags, output_tokens=int(tokens) if tokens else None,
                   latency_s=float(latency) / 1000.0 if latency else None)


@dataclass(frozen=True)
class Plan:
    """The decided behaviour of one request."""

    error: ErrorKind | None
    latency_s: float
    ttft_s: float
    output_tokens: int
    truncated: bool
    invalid_json: bool
    stream_error: bool
    response_model: str | None


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    # Always draw, even for a zero median, so later draws do not shift.
    z = rng.gauss(0.0, 1.0)
    return median * math.exp(sigma * z) if median > 0 else 0.0


def draw_output_tokens(config: SimulatorConfig, content_rng: random.Random) -> int:
    """The healthy output-token count for a request, from its content stream."""
    raw = _lognormal(content_rng, config.output_tokens_median, config.output_tokens_sigma)
    return int(min(max(round(raw), 1), config.output_tokens_max))


def decide(config: SimulatorConfig, degradation: Degradation | None, controls: Controls,
           fate_rng: random.Random, base_output_tokens: int, max_tokens: int | None) -> Plan:
    """Decide a request's fate.

    Args:
        config: The simulator's configuration.
        degradation: The active degradation, or None while healthy.
        controls: Overrides from the request headers.
        fate_rng: The request's fate stream (see module docstring).
        base_output_tokens: The healthy output-token draw (from the content stream).
        max_tokens: The request's `max_tokens`/`max_completion_tokens`, if any.

    Returns:
        The plan; with `error` set, the other fields are still filled but unused.
    """
    if "degraded" in controls.flags:
        degradation = degradation or config.degradation
    u_error = fate_rng.random()
    latency = _lognormal(fate_rng, config.latency_median_s, config.latency_sigma)
    ttft = _lognormal(fate_rng, config.ttft_median_s, config.ttft_sigma)
    u_length, u_json = fate_rng.random(), fate_rng.random()

    rate_limit, server_error = config.rate_limit_rate, config.server_error_rate
    length_rate = invalid_rate = 0.0
    latency_multiplier = tokens_multiplier = 1.0
    response_model = None
    if degradation is not None:
        rate_limit += degradation.rate_limit_rate
        server_error += degradation.server_error_rate
        length_rate, invalid_rate = degradation.length_rate, degradation.invalid_json_rate
        latency_multiplier, tokens_multiplier = degradation.latency_multiplier, degradation.output_tokens_multiplier
        response_model = degradation.response_model

    error: ErrorKind | None = None
    if "rate_limit" in controls.flags or (not controls.flags & {"server_error"} and u_error < rate_limit):
        error = "rate_limit"
    elif "server_error" in controls.flags or u_error < rate_limit + server_error:
        error = "server_error"

    if controls.latency_s is not None:
        latency = controls.latency_s
    latency *= latency_multiplier
    ttft = min(ttft * latency_multiplier, latency)

    tokens = controls.output_tokens if controls.output_tokens is not None else base_output_tokens
    tokens = max(1, round(tokens * tokens_multiplier))
    truncated = "length" in controls.flags or u_length < length_rate
    if max_tokens is not None and tokens >= max_tokens:
        tokens, truncated = max(1, max_tokens), tokens > max_tokens or truncated
    return Plan(error=error, latency_s=latency, ttft_s=ttft, output_tokens=tokens, truncated=truncated,
                invalid_json="invalid_json" in controls.flags or u_json < invalid_rate,
                stream_error="stream_error" in controls.flags, response_model=response_model)
