"""Which span attributes carry content, and the redaction applied to them (`redacted` policy).

The rules themselves live in `llmrel_core.redaction`, the one rule set the receiver and the
analyzers' `no_pii` check use too; `redact` is re-exported here for the app-side exporter.

Examples:
    >>> redact("mail bob@example.com, key sk-proj-abcdefghijklmnopqrstuv")
    ('mail [REDACTED:EMAIL], key [REDACTED:API_KEY]', 2)
"""

from __future__ import annotations

from llmrel_core.redaction import redact

__all__ = ["CONTENT_KEYS", "CONTENT_KEY_PREFIXES", "is_content_key", "redact"]

CONTENT_KEYS: frozenset[str] = frozenset({
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
    "gen_ai.prompt",
    "gen_ai.completion",
    "input.value",
    "output.value",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "traceloop.entity.input",
    "traceloop.entity.output",
    "llm.prompt_template.variables",
})
"""Attribute keys that carry prompt/response content (GenAI semconv, OpenLLMetry, OpenInference)."""

CONTENT_KEY_PREFIXES: tuple[str, ...] = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "llm.choices.",
    "embedding.embeddings.",
    "retrieval.documents.",
    "reranker.",
)
"""Prefixes of flattened content attributes (legacy OpenLLMetry, OpenInference)."""


def is_content_key(key: str) -> bool:
    """Whether an attribute key carries prompt or response content."""
    return key in CONTENT_KEYS or key.startswith(CONTENT_KEY_PREFIXES)
