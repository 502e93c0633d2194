"""llmrel-instrumentation: zero-code LLM telemetry for apps under `opentelemetry-instrument`.

Run an app with `OTEL_PYTHON_DISTRO=llmrel opentelemetry-instrument python app.py`. Settings:
`LLMREL_CAPTURE_CONTENT` (`off` | `redacted` | `full`), `OTEL_TRACES_SAMPLER_ARG` (ratio for
non-LLM traces), plus every standard `OTEL_*` variable. In code, `llm_context` tags LLM spans
with feature, tenant, user and session.
"""

from __future__ import annotations

from llmrel_instrumentation.config import ContentPolicy, InstrumentationConfig
from llmrel_instrumentation.context import llm_context
from llmrel_instrumentation.enrichment import EnrichmentSpanProcessor
from llmrel_instrumentation.redaction import redact
from llmrel_instrumentation.sampling import LlmSampler, PromotingSpanProcessor

__all__ = [
    "ContentPolicy",
    "EnrichmentSpanProcessor",
    "InstrumentationConfig",
    "LlmSampler",
    "PromotingSpanProcessor",
    "llm_context",
    "redact",
]
