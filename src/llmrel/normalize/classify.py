"""What a span is: an LLM call, a step around LLM calls, or neither. The one definition of "LLM call".

An *LLM call* is one request to a model (chat, text completion, content generation, embeddings,
rerank) and becomes one `llm_calls` row. A *step* is the work around calls that agent frameworks
trace: an agent invocation, a tool execution, a workflow or chain, a retrieval, a guardrail. Steps
are trace context: they stay in `otel_traces` (the trace view shows them around their calls) and
never become `llm_calls` rows, because what they aggregate, tokens, cost and errors, belongs to the
calls inside them and would count twice. This holds in every convention: GenAI `invoke_agent` /
`execute_tool`, OpenInference `AGENT` / `TOOL` / `CHAIN` / `RETRIEVER`, Traceloop `workflow` /
`task` / `agent` / `tool`. The operation names are in `tables.STEP_OPERATIONS`.
"""

from __future__ import annotations

from typing import NamedTuple

from llmrel.normalize import tables as t


class SpanClass(NamedTuple):
    """A recognised GenAI span: its convention, its semconv operation name, and whether it is a call."""

    convention: str
    operation: str

    @property
    def is_llm_call(self) -> bool:
        """Whether the span is a request to a model (an `llm_calls` row) rather than a step around one."""
        return self.operation not in t.STEP_OPERATIONS


def classify_span(attrs: dict[str, str], span_name: str = "") -> SpanClass | None:
    """The convention and operation of a GenAI span (an LLM call or a step), or `None` for any other span."""
    kind = attrs.get(t.OPENINFERENCE_SPAN_KIND)
    if kind:
        operation = t.OPENINFERENCE_OPERATIONS.get(kind.upper())
        if operation == "chat" and _any_key_starts_with(attrs, t.OI_PROMPTS_PREFIX):
            operation = "text_completion"
        return SpanClass(t.OPENINFERENCE, operation) if operation else None

    raw_operation = attrs.get(t.OPERATION_NAME) or attrs.get(t.LLM_REQUEST_TYPE)
    has_provider = t.PROVIDER_NAME in attrs or t.SYSTEM in attrs
    if raw_operation:
        operation = t.OPERATIONS.get(raw_operation, raw_operation)
    elif traceloop_kind := attrs.get(t.TRACELOOP_SPAN_KIND):
        operation = t.TRACELOOP_OPERATIONS.get(traceloop_kind)
        if operation is None:
            return None
    elif has_provider:
        operation = t.OPERATIONS.get(span_name.partition(" ")[0], "chat")
    else:
        return None

    if not attrs.keys().isdisjoint(t.OPENLLMETRY_MARKERS) or _any_key_starts_with(attrs, t.OPENLLMETRY_PREFIX):
        return SpanClass(t.OPENLLMETRY, operation)
    if t.PROVIDER_NAME in attrs or t.SYSTEM not in attrs:
        return SpanClass(t.GENAI_SEMCONV, operation)
    return SpanClass(t.GENAI_SEMCONV_LEGACY, operation)


def is_llm_call(attrs: dict[str, str], span_name: str = "") -> bool:
    """Whether a span is an LLM call (one `llm_calls` row) in any supported convention."""
    found = classify_span(attrs, span_name)
    return found is not None and found.is_llm_call


def _any_key_starts_with(attrs: dict[str, str], prefix: str) -> bool:
    """Whether a key starts with `prefix`; one substring search over the joined keys settles most spans."""
    if "\0" + prefix not in "\0" + "\0".join(attrs):
        return False
    return any(k.startswith(prefix) for k in attrs)
