"""Attribute keys llmrel writes and reads, and the one test for "is this an LLM span"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmrel_core.spans import genai_operation

FEATURE = "llmrel.feature"
TENANT = "llmrel.tenant"
USER_ID = "user.id"
SESSION_ID = "session.id"
CONTEXT_KEYS: tuple[str, ...] = (FEATURE, TENANT, USER_ID, SESSION_ID)
"""Business-context keys: read from baggage, written as span attributes under the same name."""

REDACTIONS = "llmrel.redactions"
CONTENT_POLICY = "llmrel.content_policy"
STREAM_COMPLETED = "llmrel.stream.completed"
STREAM_CHUNKS = "llmrel.stream.chunks"
ESTIMATED_OUTPUT_TOKENS = "llmrel.usage.estimated_output_tokens"
SAMPLING_PROMOTED = "llmrel.sampling.promoted"
BREAKER_SCOPE = "llmrel.breaker.scope"
BREAKER_STATE = "llmrel.breaker.state"  # open | half_open
BREAKER_DECISION = "llmrel.breaker.decision"  # probe | fallback | callback | blocked | observe | dry_run
BREAKER_MODE = "llmrel.breaker.mode"  # observe | enforce
BREAKER_REQUESTED_MODEL = "llmrel.breaker.requested_model"  # the model asked for, when a fallback served
BREAKER_DIVERTED_EVENT = "llmrel.breaker.diverted"

def is_llm_span(attributes: Mapping[str, Any] | None, name: str = "") -> bool:
    """Whether span attributes (as known at span start) mark a GenAI span: an LLM call or a step
    around calls (agent, tool, workflow), by the one classification in `llmrel_core.spans`.

    Every supported convention sets its marker attribute when the span starts, so samplers can use this.
    """
    return bool(attributes) and genai_operation(attributes, name) is not None  # type: ignore[arg-type]
