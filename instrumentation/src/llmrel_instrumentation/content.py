"""`ContentPolicyExporter`: applies the content policy (and deferred enrichment) on the export thread.

Wrapping the exporter (not a `SpanProcessor.on_end` on the app's thread) keeps redaction cost off
the app's request path: the batch processor hands finished spans to this exporter on its worker
thread, which strips (`off`) or redacts (`redacted`) content attributes, counts redactions in
`llmrel.redactions`, and passes the copies to the real exporter.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from llmrel_instrumentation.attributes import REDACTIONS
from llmrel_instrumentation.config import ContentPolicy
from llmrel_instrumentation.enrichment import PendingContext
from llmrel_instrumentation.redaction import is_content_key, redact
from llmrel_instrumentation.spans import copy_span

_logger = logging.getLogger(__name__)


def _redact_value(value: Any) -> tuple[Any, int]:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], str):
        total = 0
        out = []
        for item in value:
            text, count = redact(item)
            out.append(text)
            total += count
        return tuple(out), total
    return value, 0


def apply_policy(attributes: Mapping[str, Any], policy: ContentPolicy) -> tuple[dict[str, Any], int] | None:
    """New attributes with the policy applied, and the redaction count; `None` if nothing changes.

    Args:
        attributes: Span or event attributes.
        policy: `off` drops content keys, `redacted` redacts their values, `full` changes nothing.
    """
    if policy is ContentPolicy.FULL or not any(is_content_key(key) for key in attributes):
        return None
    result: dict[str, Any] = {}
    total = 0
    for key, value in attributes.items():
        if not is_content_key(key):
            result[key] = value
        elif policy is ContentPolicy.REDACTED:
            result[key], count = _redact_value(value)
            total += count
    return result, total


def prepare_span(span: ReadableSpan, policy: ContentPolicy,
                 pending: Mapping[str, str] | None = None) -> ReadableSpan:
    """The span as it may leave the app: deferred context attributes added, content policy applied."""
    changed = apply_policy(span.attributes or {}, policy)
    events = list(span.events)
    events_changed = False
    total = 0
    for index, event in enumerate(events):
        event_change = apply_policy(event.attributes or {}, policy)
        if event_change is not None:
            events[index] = Event(event.name, event_change[0], event.timestamp)
            total += event_change[1]
            events_changed = True
    if changed is None and not events_changed and not pending:
        return span
    attributes = dict(span.attributes or {}) if changed is None else changed[0]
    if pending:
        for key, value in pending.items():
            attributes.setdefault(key, value)
    if policy is ContentPolicy.REDACTED and (changed is not None or events_changed):
        attributes[REDACTIONS] = total + (changed[1] if changed is not None else 0)
    return copy_span(span, attributes=attributes, events=events)


class ContentPolicyExporter(SpanExporter):
    """Applies a `ContentPolicy` to each span, then delegates to the wrapped exporter.

    With `pending` shared with an `EnrichmentSpanProcessor`, it also writes the deferred context
    attributes.

    If applying the policy fails for a span, that span is dropped rather than exported with
    unredacted content (fail closed), and the failure is logged.
    """

    def __init__(self, exporter: SpanExporter, policy: ContentPolicy, pending: PendingContext | None = None) -> None:
        self.exporter = exporter
        self.policy = policy
        self.pending = pending
        self.dropped = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        safe = []
        pending = self.pending
        for span in spans:
            try:
                values = pending.take(span.context.span_id) if pending is not None else None
                safe.append(prepare_span(span, self.policy, values))
            except Exception:
                self.dropped += 1
                if self.dropped == 1:
                    _logger.exception("llmrel content policy failed on span %r; span dropped (later failures are "
                                      "counted in `dropped`, not logged)", span.name)
        return self.exporter.export(safe)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        if "timeout_millis" in inspect.getfullargspec(self.exporter.shutdown).args:
            self.exporter.shutdown(timeout_millis=timeout_millis, **kwargs)
        else:
            self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)
