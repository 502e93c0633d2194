"""Head sampling for LLM apps: every LLM span is kept, the rest is ratio-sampled by trace.

`LlmSampler` decides at span start:

* LLM spans (see `is_llm_span`) are always `RECORD_AND_SAMPLE`.
* A span with a sampled parent is sampled (whole traces stay whole).
* A root span is sampled with probability `ratio`, by trace id (`TraceIdRatioBased`), so every
  service using the same ratio takes the same decision for a trace.
* Everything else is `RECORD_ONLY`: recorded in the app but not exported, unless promoted.

`PromotingSpanProcessor` wraps the exporting processor and closes the gap head sampling leaves:
when a sampled span (an LLM span, since nothing else is sampled under an unsampled parent)
starts below a recorded-but-unsampled local parent, it marks that parent chain, and exports each
marked ancestor when it ends. Ancestors usually end after their children, so the chain is
complete and the kept LLM span is not orphaned; an ancestor that already ended (fire-and-forget
work started by a finished request) is gone and cannot be exported: tail sampling in the
collector covers that case. An unsampled span that ends with status ERROR is exported
the same way, with its ancestors; that is as far as head sampling can know errors. See the
package README for what this cannot do (remote parents, finished siblings, whole error traces).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import Link, SpanContext, SpanKind, StatusCode, TraceFlags, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from llmrel_instrumentation.attributes import SAMPLING_PROMOTED, is_llm_span
from llmrel_instrumentation.spans import copy_span

_logger = logging.getLogger(__name__)
_DEFAULT_MAX_TRACKED = 100_000
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class LlmSampler(Sampler):
    """Keeps all LLM spans, samples other traces at `ratio`, records the rest for promotion.

    Args:
        ratio: Probability in [0, 1] of keeping a trace that starts with a non-LLM root.
    """

    def __init__(self, ratio: float = 1.0) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio must be in [0, 1], got {ratio}")
        self.ratio = ratio
        self._root = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        parent_state = parent.trace_state if parent.is_valid else None
        if is_llm_span(attributes, name):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent_state)
        if parent.is_valid:
            sampled = parent.trace_flags.sampled
        else:
            sampled = self._root.should_sample(parent_context, trace_id, name).decision.is_sampled()
        decision = Decision.RECORD_AND_SAMPLE if sampled else Decision.RECORD_ONLY
        return SamplingResult(decision, attributes, parent_state)

    def get_description(self) -> str:
        return f"LlmSampler{{ratio={self.ratio}}}"


def sampler_from_arg(arg: str | None) -> LlmSampler:
    """Factory for the `opentelemetry_traces_sampler` entry point (`OTEL_TRACES_SAMPLER=llmrel`).

    Args:
        arg: `OTEL_TRACES_SAMPLER_ARG`, the ratio for non-LLM traces (default 1.0).
    """
    if arg is None or not arg.strip():
        return LlmSampler(1.0)
    try:
        return LlmSampler(float(arg))
    except ValueError:
        _logger.warning("OTEL_TRACES_SAMPLER_ARG=%r is not a ratio in [0, 1]; keeping all traces", arg)
        return LlmSampler(1.0)


def _as_sampled(span: ReadableSpan) -> ReadableSpan:
    context = span.context
    attributes = dict(span.attributes or {})
    attributes[SAMPLING_PROMOTED] = True
    sampled = SpanContext(context.trace_id, context.span_id, False, _SAMPLED, context.trace_state)
    return copy_span(span, context=sampled, attributes=attributes)


class PromotingSpanProcessor(SpanProcessor):
    """Forwards sampled spans to `delegate` and promotes the unsampled ancestors of kept spans.

    Bookkeeping is two dicts keyed by span id, touched only for unsampled spans; with ratio 1.0
    every span is sampled and the cost is one flag test per span. At most `max_tracked` open
    unsampled spans are tracked; beyond that, new ones are not promotable (logged once).

    Args:
        delegate: The exporting processor (usually a `BatchSpanProcessor`).
        shutdown_timeout_ms: Bound on the time `shutdown` may spend flushing.
        max_tracked: Bound on the number of open unsampled spans tracked.
    """

    def __init__(self, delegate: SpanProcessor, shutdown_timeout_ms: int = 30_000,
                 max_tracked: int = _DEFAULT_MAX_TRACKED) -> None:
        self.delegate = delegate
        self.shutdown_timeout_ms = shutdown_timeout_ms
        self.max_tracked = max_tracked
        self._parents: dict[int, int] = {}  # open unsampled span id -> its local unsampled parent id (or 0)
        self._promoted: set[int] = set()
        self._overflow_logged = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        context = span.context
        parent = span.parent
        local_unsampled_parent = (parent is not None and not parent.is_remote
                                  and not parent.trace_flags.sampled)
        if context.trace_flags.sampled:
            if local_unsampled_parent:
                self._promote_chain(parent.span_id)
            self.delegate.on_start(span, parent_context)
            return
        if len(self._parents) >= self.max_tracked:
            if not self._overflow_logged:
                self._overflow_logged = True
                _logger.warning("llmrel sampler tracks %d open unsampled spans; not tracking more",
                                self.max_tracked)
            return
        self._parents[context.span_id] = parent.span_id if local_unsampled_parent else 0

    def _promote_chain(self, span_id: int) -> None:
        # Only spans still open can be exported sampled; an ancestor that already ended is gone.
        while span_id in self._parents and span_id not in self._promoted:
            self._promoted.add(span_id)
            span_id = self._parents[span_id]

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context.trace_flags.sampled:
            self.delegate.on_end(span)
            return
        span_id = context.span_id
        if span.status.status_code is StatusCode.ERROR:
            self._promote_chain(span_id)
        self._parents.pop(span_id, None)
        if span_id in self._promoted:
            self._promoted.discard(span_id)
            self.delegate.on_end(_as_sampled(span))

    def shutdown(self) -> None:
        """Shut the delegate down, waiting at most `shutdown_timeout_ms` (the SDK's own bound is 30 s).

        A receiver that is down or hanging must not hold the app's exit: the flush runs on a daemon
        thread, and whatever is still unsent when the bound expires is dropped (logged).
        """
        worker = threading.Thread(target=self.delegate.shutdown, name="llmrel-span-shutdown", daemon=True)
        worker.start()
        worker.join(self.shutdown_timeout_ms / 1000)
        if worker.is_alive():
            _logger.warning("llmrel: spans not flushed within %d ms at shutdown; unsent spans are dropped",
                            self.shutdown_timeout_ms)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.delegate.force_flush(timeout_millis)
