"""Normalization of LLM spans into `LlmCall` rows: pure functions over versioned mapping tables.

Recognises the OTel GenAI semantic conventions (`gen_ai.system` and `gen_ai.provider.name`
eras), OpenLLMetry/Traceloop and OpenInference; see `tables` for every attribute used.
"""

from __future__ import annotations

from llmrel.normalize.span import detect_convention, normalize_error_type, normalize_span
from llmrel.normalize.tables import NORMALIZER_VERSION, VERSION_ATTRIBUTE, WARNINGS_ATTRIBUTE

__all__ = [
    "NORMALIZER_VERSION",
    "VERSION_ATTRIBUTE",
    "WARNINGS_ATTRIBUTE",
    "detect_convention",
    "normalize_error_type",
    "normalize_span",
]
