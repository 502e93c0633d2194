"""Finished-span helpers shared by the exporting processors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanContext


def copy_span(span: ReadableSpan, *, context: SpanContext | None = None, attributes: dict[str, Any] | None = None,
              events: Sequence[Event] | None = None) -> ReadableSpan:
    """A copy of a finished span with some fields replaced (finished spans are immutable)."""
    return ReadableSpan(
        name=span.name,
        context=context if context is not None else span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes if attributes is not None else span.attributes,
        events=events if events is not None else span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
