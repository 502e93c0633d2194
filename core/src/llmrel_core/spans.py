"""What a span is: an LLM call, a step around LLM calls, or neither. The one definition of "LLM call",
shared by the app-side package (sampler, enrichment) and the server (normalizer).

An *LLM call* is one request to a model (chat, text completion, content generation, embeddings,
rerank) and becomes one `llm_calls` row. A *step* is the work around calls that agent frameworks
trace: an agent invocation, a tool execution, a workflow or chain, a retrieval, a guardrail. Steps
are trace context: they stay in `otel_traces` (the trace view shows them around their calls) and
never become `llm_calls` rows, because what they aggregate, tokens, cost and errors, belongs to the
calls inside them and would count twice. This holds in every convention: GenAI `invoke_agent` /
`execute_tool`, OpenInference `AGENT` / `TOOL` / `CHAIN` / `RETRIEVER`, Traceloop `workflow` /
`task` / `agent` / `tool`. The operation names are in `STEP_OPERATIONS`.

Also which attributes carry prompt and response content (`is_content_key`), which the content
policy of the app-side exporter and of the receiver redact or drop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

# Conventions
GENAI_SEMCONV = "genai-semconv"
GENAI_SEMCONV_LEGACY = "genai-semconv-legacy"
OPENLLMETRY = "openllmetry"
OPENINFERENCE = "openinference"

OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"
LLM_REQUEST_TYPE = "llm.request.type"
OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
TRACELOOP_SPAN_KIND = "traceloop.span.kind"
TRACELOOP_ENTITY_NAME = "traceloop.entity.name"

# Attributes only OpenLLMetry/Traceloop emits next to the GenAI names (measured on 0.62.4).
OPENLLMETRY_MARKERS: tuple[str, ...] = (
    "gen_ai.is_streaming", "llm.is_streaming", LLM_REQUEST_TYPE, "llm.usage.total_tokens",
    "gen_ai.usage.total_tokens", "gen_ai.openai.api_base", "llm.headers", "gen_ai.headers",
    TRACELOOP_SPAN_KIND,
)
OPENLLMETRY_PREFIX = "traceloop."
OI_PROMPTS_PREFIX = "llm.prompts."  # OpenInference text completions: indexed prompts instead of messages

# Operation names as they appear, to the semconv operation names.
OPERATIONS: dict[str, str] = {
    "chat": "chat", "text_completion": "text_completion", "completion": "text_completion",
    "embeddings": "embeddings", "embedding": "embeddings", "generate_content": "generate_content",
    "execute_tool": "execute_tool", "invoke_agent": "invoke_agent", "create_agent": "create_agent",
    "invoke_workflow": "invoke_workflow", "retrieval": "retrieval", "rerank": "rerank",
}
OPENINFERENCE_OPERATIONS: dict[str, str] = {
    "LLM": "chat", "EMBEDDING": "embeddings", "RERANKER": "rerank", "TOOL": "execute_tool", "AGENT": "invoke_agent",
    "RETRIEVER": "retrieval", "CHAIN": "invoke_workflow", "GUARDRAIL": "guardrail", "EVALUATOR": "evaluation",
    "PROMPT": "prompt",
}
TRACELOOP_OPERATIONS: dict[str, str] = {"tool": "execute_tool", "agent": "invoke_agent", "workflow": "invoke_workflow",
                                        "task": "task"}

# Operations of the steps around LLM calls: agents, tools, workflows, retrieval, guardrails. A step is
# trace context, never an LLM call: it stays in `otel_traces`, and the tokens, cost and errors it
# aggregates are its child calls' (see the module docstring). Every other operation is an LLM call.
STEP_OPERATIONS = frozenset({
    "invoke_agent", "create_agent", "execute_tool", "invoke_workflow", "retrieval", "task", "guardrail",
    "evaluation", "prompt",
})


MARKER_KEYS: tuple[str, ...] = (OPENINFERENCE_SPAN_KIND, OPERATION_NAME, LLM_REQUEST_TYPE, TRACELOOP_SPAN_KIND,
                                PROVIDER_NAME, SYSTEM)
"""A span with none of these attributes is never a GenAI span (`classify_span` returns `None`): a cheap
pre-filter, e.g. in SQL over stored spans, before the classification itself."""


class SpanClass(NamedTuple):
    """A recognised GenAI span: its convention, its semconv operation name, and whether it is a call."""

    convention: str
    operation: str

    @property
    def is_llm_call(self) -> bool:
        """Whether the span is a request to a model (an `llm_calls` row) rather than a step around one."""
        return self.operation not in STEP_OPERATIONS


def classify_span(attrs: Mapping[str, Any], span_name: str = "") -> SpanClass | None:
    """The convention and operation of a GenAI span (an LLM call or a step), or `None` for any other span."""
    operation = genai_operation(attrs, span_name)
    if operation is None:
        return None
    if attrs.get(OPENINFERENCE_SPAN_KIND):
        if operation == "chat" and _any_key_starts_with(attrs, OI_PROMPTS_PREFIX):
            operation = "text_completion"
        return SpanClass(OPENINFERENCE, operation)
    if not attrs.keys().isdisjoint(OPENLLMETRY_MARKERS) or _any_key_starts_with(attrs, OPENLLMETRY_PREFIX):
        return SpanClass(OPENLLMETRY, operation)
    if PROVIDER_NAME in attrs or SYSTEM not in attrs:
        return SpanClass(GENAI_SEMCONV, operation)
    return SpanClass(GENAI_SEMCONV_LEGACY, operation)


def genai_operation(attrs: Mapping[str, Any], span_name: str = "") -> str | None:
    """The semconv operation of a GenAI span, or `None` for any other span: `classify_span`'s decision
    without the convention, cheap enough for a sampler on every span (a few key lookups)."""
    if kind := attrs.get(OPENINFERENCE_SPAN_KIND):
        return OPENINFERENCE_OPERATIONS.get(str(kind).upper())
    if raw_operation := attrs.get(OPERATION_NAME) or attrs.get(LLM_REQUEST_TYPE):
        return OPERATIONS.get(str(raw_operation), str(raw_operation))
    if traceloop_kind := attrs.get(TRACELOOP_SPAN_KIND):
        return TRACELOOP_OPERATIONS.get(str(traceloop_kind))
    if PROVIDER_NAME in attrs or SYSTEM in attrs:
        return OPERATIONS.get(span_name.partition(" ")[0], "chat")
    return None


def is_llm_call(attrs: Mapping[str, Any], span_name: str = "") -> bool:
    """Whether a span is an LLM call (one `llm_calls` row) in any supported convention."""
    found = classify_span(attrs, span_name)
    return found is not None and found.is_llm_call


def _any_key_starts_with(attrs: Mapping[str, Any], prefix: str) -> bool:
    """Whether a key starts with `prefix`; one substring search over the joined keys settles most spans."""
    if "\0" + prefix not in "\0" + "\0".join(attrs):
        return False
    return any(k.startswith(prefix) for k in attrs)


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
