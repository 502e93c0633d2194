"""Normalization of LLM spans into `LlmCall` rows: pure functions over versioned mapping tables.

`llmrel_core.spans` says which spans are LLM calls (one row each) and which are steps around them (agents,
tools, workflows: trace context, no row). Recognises the OTel GenAI semantic conventions
(`gen_ai.system` and `gen_ai.provider.name` eras), OpenLLMetry/Traceloop and OpenInference; see
`tables` for every attribute used.
"""

from __future__ import annotations

from llmrel.normalize.span import normalize_error_type, normalize_span
from llmrel.normalize.tables import NORMALIZER_VERSION, VERSION_ATTRIBUTE, WARNINGS_ATTRIBUTE
from llmrel_core.spans import SpanClass, classify_span, is_llm_call

__all__ = [
    "NORMALIZER_VERSION",
    "VERSION_ATTRIBUTE",
    "WARNINGS_ATTRIBUTE",
    "SpanClass",
    "classify_span",
    "is_llm_call",
    "normalize_error_type",
    "normalize_span",
]
