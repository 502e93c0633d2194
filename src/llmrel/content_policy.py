"""Server-side content policy (`LLMREL_CONTENT_POLICY`): `full` stores prompts and completions
as received, `redacted` strips secrets and PII with the one rule set of `llmrel_core.redaction`
(the app-side exporter and `no_pii` use it too) from the values under the core's content keys,
`off` stores no content at all (neither in `llm_calls` nor in `otel_traces` span attributes).

Applied by the one span -> call adapter (`llmrel.calls_ingest`): to every span the receiver stores,
and to the span of every call `llmrel analyze` derives from spans another writer stored.
"""

from __future__ import annotations

from collections.abc import Callable

from llmrel.model import SpanRecord
from llmrel_core.redaction import redact
from llmrel_core.spans import is_content_key

SpanTransform = Callable[[SpanRecord], SpanRecord]

_EVENT_CONTENT_KEYS = frozenset({"content", "message", "tool_calls"})  # legacy per-message GenAI events


def _is_content(key: str, in_event: bool) -> bool:
    return is_content_key(key) or (in_event and key in _EVENT_CONTENT_KEYS)


def _drop(attrs: dict[str, str], in_event: bool) -> tuple[dict[str, str], int]:
    kept = {k: v for k, v in attrs.items() if not _is_content(k, in_event)}
    return (attrs, 0) if len(kept) == len(attrs) else (kept, len(attrs) - len(kept))


def _redact(attrs: dict[str, str], in_event: bool) -> tuple[dict[str, str], int]:
    keys = [k for k in attrs if _is_content(k, in_event)]
    if not keys:
        return attrs, 0
    cleaned, total = dict(attrs), 0
    for key in keys:
        cleaned[key], count = redact(attrs[key])
        total += count
    return cleaned, total


def _apply(span: SpanRecord, clean: Callable[[dict[str, str], bool], tuple[dict[str, str], int]],
           count_key: str | None) -> SpanRecord:
    """`clean` applied to the span's attributes and to every event's (GenAI content events carry prompts too)."""
    attrs, total = clean(span.span_attributes, False)
    events = span.events_attributes
    if events:
        cleaned_events = [clean(e, True) for e in events]
        if any(n for _, n in cleaned_events):
            events = [e for e, _ in cleaned_events]
            total += sum(n for _, n in cleaned_events)
    if attrs is span.span_attributes and events is span.events_attributes:
        return span
    if count_key and total:
        attrs = {**attrs, count_key: str(total)}
    return span._replace(span_attributes=attrs, events_attributes=events)


def _without_content(span: SpanRecord) -> SpanRecord:
    return _apply(span, _drop, None)


def _redacted_span(span: SpanRecord) -> SpanRecord:
    return _apply(span, _redact, "llmrel.redactions.server")


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
