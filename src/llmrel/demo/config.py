"""Simulator configuration: frozen value objects, defaulted here and validated once."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MODELS: tuple[str, ...] = (
    "gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o3-mini", "text-embedding-3-small", "text-embedding-3-large",
)
"""Models listed by `GET /v1/models`; requests for any other model get a 404 `model_not_found`."""

DEFAULT_RESPONSE_MODELS: Mapping[str, str] = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "o3-mini": "o3-mini-2025-01-31",
}
"""Request model -> model named in the response (a dated snapshot, as the real API answers)."""

DEFAULT_REASONING_PREFIXES: tuple[str, ...] = ("o1", "o3", "o4", "gpt-5")


@dataclass(frozen=True)
class Degradation:
    """What changes while the simulated provider is degraded.

    Rates are probabilities per request in [0, 1]; multipliers scale the healthy values.
    `response_model`, when set, silently replaces the model named in every chat/completion response.
    `models`, when not empty, limits the degradation to requests for those models (a provider
    outage of one model, while its fallback stays healthy).
    """

    latency_multiplier: float = 4.0
    output_tokens_multiplier: float = 1.8
    rate_limit_rate: float = 0.05
    server_error_rate: float = 0.05
    length_rate: float = 0.2
    invalid_json_rate: float = 0.3
    response_model: str | None = "gpt-4o-mini-2024-07-18"
    models: tuple[str, ...] = ()

    def applies_to(self, model: str) -> bool:
        return not self.models or model in self.models

    def validate(self) -> list[str]:
        """Every problem with these values (empty when valid)."""
        problems = [] if all(isinstance(m, str) and m for m in self.models) else ["models must be model names"]
        problems += [f"{name} must be in [0, 1]" for name in
                    ("rate_limit_rate", "server_error_rate", "length_rate", "invalid_json_rate")
                    if not 0.0 <= getattr(self, name) <= 1.0]
        if self.rate_limit_rate + self.server_error_rate > 1.0:
            problems.append("rate_limit_rate + server_error_rate must be <= 1")
        problems += [f"{name} must be > 0" for name in ("latency_multiplier", "output_tokens_multiplier")
                     if getattr(self, name) <= 0]
        return problems

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], base: Degradation | None = None) -> Degradation:
        """`base` (default: the defaults) with the given fields replaced; unknown keys raise ValueError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown degradation fields: {', '.join(unknown)}")
        fields = dict(values)
        if isinstance(fields.get("models"), list | tuple):
            fields["models"] = tuple(fields["models"])
        elif "models" in fields:
            raise ValueError("models must be a list of model names")
        degradation = dataclasses.replace(base or cls(), **fields)
        problems = degradation.validate()
        if problems:
            raise ValueError("; ".join(problems))
        return degradation


@dataclass(frozen=True)
class SimulatorConfig:
    """How the simulated provider behaves while healthy, and how it degrades.

    Latency per request is log-normal: `exp(N(ln(latency_median_s), latency_sigma))`; a stream sends its first
    chunk after a log-normal time to first token (`ttft_median_s`, `ttft_sigma`) and spreads the rest of the
    request's latency over the remaining chunks. Output tokens are log-normal (`output_tokens_median`,
    `output_tokens_sigma`), clipped to `[1, output_tokens_max]` and to the request's `max_tokens`.
    `degrade_at_s` switches `degradation` on that many seconds after the server starts (None: only by API).
    """

    seed: int = 0
    latency_median_s: float = 0.6
    latency_sigma: float = 0.4
    ttft_median_s: float = 0.25
    ttft_sigma: float = 0.3
    output_tokens_median: float = 120.0
    output_tokens_sigma: float = 0.5
    output_tokens_max: int = 4096
    rate_limit_rate: float = 0.0
    server_error_rate: float = 0.0
    retry_after_s: float = 1.0
    tool_call_rate: float = 0.7
    reasoning_share: float = 0.6
    embedding_dimensions: int = 256
    models: tuple[str, ...] = DEFAULT_MODELS
    response_models: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_RESPONSE_MODELS))
    reasoning_prefixes: tuple[str, ...] = DEFAULT_REASONING_PREFIXES
    degradation: Degradation = field(default_factory=Degradation)
    degrade_at_s: float | None = None

    def validate(self) -> list[str]:
        """Every problem with these values (empty when valid)."""
        problems = [f"{name} must be >= 0" for name in
                    ("latency_median_s", "latency_sigma", "ttft_median_s", "ttft_sigma", "output_tokens_sigma",
                     "retry_after_s") if getattr(self, name) < 0]
        problems += [f"{name} must be in [0, 1]" for name in
                     ("rate_limit_rate", "server_error_rate", "tool_call_rate", "reasoning_share")
                     if not 0.0 <= getattr(self, name) <= 1.0]
        if self.rate_limit_rate + self.server_error_rate > 1.0:
            problems.append("rate_limit_rate + server_error_rate must be <= 1")
        if self.output_tokens_median < 1 or self.output_tokens_max < 1:
            problems.append("output_tokens_median and output_tokens_max must be >= 1")
        if self.embedding_dimensions < 1:
            problems.append("embedding_dimensions must be >= 1")
        if self.degrade_at_s is not None and self.degrade_at_s < 0:
            problems.append("degrade_at_s must be >= 0")
        return problems + [f"degradation.{p}" for p in self.degradation.validate()]

    def response_model(self, request_model: str) -> str:
        """The model a healthy provider names in its response for `request_model`."""
        return self.response_models.get(request_model, request_model)

    def is_reasoning_model(self, request_model: str) -> bool:
        """True when the model spends part of its output on reasoning tokens."""
        return request_model.startswith(self.reasoning_prefixes)
