"""`EnrichmentSpanProcessor`: copies business context and the breaker decision onto LLM spans when they start."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from llmrel_instrumentation.attributes import is_llm_span
from llmrel_instrumentation.breakers.guard import breaker_attributes
from llmrel_instrumentation.context import context_attributes

_logger = logging.getLogger(__name__)
_DEFAULT_MAX_PENDING = 10_000


class PendingContext:
    """Context attributes read on the app thread, waiting to be written on the export thread.

    Keyed by span id. Bounded: when `max_spans` are pending (an exporter that stopped draining),
    `record` refuses and the processor sets the attributes on the span directly instead.
    """

    def __init__(self, max_spans: int = _DEFAULT_MAX_PENDING) -> None:
        self.max_spans = max_spans
        self._values: dict[int, Mapping[str, str]] = {}

    def record(self, span_id: int, values: Mapping[str, str]) -> bool:
        if len(self._values) >= self.max_spans:
            return False
        self._values[span_id] = values
        return True

    def take(self, span_id: int) -> Mapping[str, str] | None:
        return self._values.pop(span_id, None)


class EnrichmentSpanProcessor(SpanProcessor):
    """Puts `llmrel.feature`, `llmrel.tenant`, `user.id`, `session.id` (and `llmrel.breaker.*`) on LLM spans.

    Values come from `llm_context` blocks and from OTel baggage in the span's parent context, read
    in `on_start` on the app's thread: it never blocks, and never raises into the app (a failure is
    logged once). Attributes the instrumentation already set are left alone.

    Args:
        pending: Defer writing: record the values in `pending` in `on_start`, and let a
            `ContentPolicyExporter` sharing it write them on the export thread. This keeps attribute
            validation off the app's request path (the distro does this). Unsampled spans are never
            exported, so they get their attributes directly.
    """

    def __init__(self, pending: PendingContext | None = None) -> None:
        self.pending = pending
        self._failure_logged = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            if not is_llm_span(span.attributes, span.name):
                return
            values = context_attributes(parent_context)
            breaker = breaker_attributes(parent_context)
            if breaker:
                values = {**values, **breaker}
            if not values:
                return
            pending = self.pending
            if (pending is not None and span.context.trace_flags.sampled
                    and pending.record(span.context.span_id, values)):
                return
            existing = span.attributes
            span.set_attributes({k: v for k, v in values.items() if k not in existing})
        except Exception:  # never break the app
            if not self._failure_logged:
                self._failure_logged = True
                _logger.exception("llmrel enrichment failed; later failures are not logged")

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
