"""Server-side content policy (`LLMREL_CONTENT_POLICY`): `full` stores prompts and completions
as received, `redacted` strips secrets and PII with the same rules the app-side package uses,
`off` stores no content at all (neither in `llm_calls` nor in `otel_traces` span attributes).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from llmrel.model import SpanRecord

SpanTransform = Callable[[SpanRecord], SpanRecord]

CONTENT_KEY = re.compile(
    r"^(gen_ai\.(input\.messages|output\.messages|system_instructions|tool\.definitions|prompt|completion)"
    r"|gen_ai\.(prompt|completion)\.\d+\.(content|arguments|tool_calls\.\d+\.arguments)"
    r"|llm\.(input_messages|output_messages|prompts|choices)\..*(content|text|arguments)"
    r"|input\.value|output\.value|traceloop\.entity\.(input|output))$"
)


def _redact_text(text: str) -> tuple[str, int]:
    from llmrel_instrumentation.redaction import redact

    return redact(text)


def _without_content(span: SpanRecord) -> SpanRecord:
    attrs = span.span_attributes
    if not any(CONTENT_KEY.match(k) for k in attrs):
        return span
    return span._replace(span_attributes={k: v for k, v in attrs.items() if not CONTENT_KEY.match(k)})


def _redacted_span(span: SpanRecord) -> SpanRecord:
    attrs = span.span_attributes
    keys = [k for k in attrs if CONTENT_KEY.match(k)]
    if not keys:
        return span
    cleaned = dict(attrs)
    total = 0
    for key in keys:
        cleaned[key], count = _redact_text(attrs[key])
        total += count
    if total:
        cleaned["llmrel.redactions.server"] = str(total)
    return span._replace(span_attributes=cleaned)


def content_transform(policy: str) -> SpanTransform | None:
    """The span transform that enforces `policy`; None for `full`.

    It runs before normalization, so `redacted` and `off` apply to `otel_traces` and `llm_calls` alike.
    """
    if policy == "full":
        return None
    if policy == "off":
        return _without_content
    if policy == "redacted":
        return _redacted_span
    raise ValueError(f"unknown content policy {policy!r}")
