"""llmrel-instrumentation: zero-code LLM telemetry for apps under `opentelemetry-instrument`.

Run an app with `OTEL_PYTHON_DISTRO=llmrel opentelemetry-instrument python app.py`. Settings:
`LLMREL_CAPTURE_CONTENT` (`off` | `redacted` | `full`), `OTEL_TRACES_SAMPLER_ARG` (ratio for
non-LLM traces), `LLMREL_BREAKERS` and friends (circuit breakers, see `breakers`), plus every
standard `OTEL_*` variable. In code, `llm_context` tags LLM spans with feature, tenant, user and
session; `on_breaker_open` answers calls an open breaker diverts.
"""

from __future__ import annotations

from llmrel_instrumentation.breakers import BreakerCall, BreakerOpen, on_breaker_open
from llmrel_instrumentation.config import ContentPolicy, InstrumentationConfig
from llmrel_instrumentation.context import llm_context
from llmrel_instrumentation.enrichment import EnrichmentSpanProcessor
from llmrel_instrumentation.redaction import redact
from llmrel_instrumentation.sampling import LlmSampler, PromotingSpanProcessor

__all__ = [
    "BreakerCall",
    "BreakerOpen",
    "ContentPolicy",
    "EnrichmentSpanProcessor",
    "InstrumentationConfig",
    "LlmSampler",
    "PromotingSpanProcessor",
    "llm_context",
    "on_breaker_open",
    "redact",
]
