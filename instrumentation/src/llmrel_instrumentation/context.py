"""Business context for LLM spans: `with llm_context(feature=..., tenant=..., user_id=...)`.

Values live in the OTel context under a private key, not in baggage, so they are never sent in a
`baggage` header to third parties (such as the LLM provider). Baggage entries with the same keys
(`llmrel.feature`, `llmrel.tenant`, `user.id`, `session.id`) set by the app or an upstream
service are honoured too; explicit `llm_context` values win over baggage.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType

from opentelemetry import context as otel_context
from opentelemetry.baggage import _BAGGAGE_KEY
from opentelemetry.context import Context

from llmrel_instrumentation.attributes import CONTEXT_KEYS, FEATURE, SESSION_ID, TENANT, USER_ID

_CONTEXT_KEY = otel_context.create_key("llmrel.llm_context")
_EMPTY: Mapping[str, str] = MappingProxyType({})


@contextmanager
def llm_context(
    *,
    feature: str | None = None,
    tenant: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
) -> Iterator[None]:
    """Attach business context to every LLM span started inside the block.

    Nested blocks inherit the outer values and override the ones they set. Keep values low
    cardinality where you can (feature, tenant); user and session ids are fine as attributes.

    Examples:
        >>> with llm_context(feature="refund-bot", tenant="acme", user_id="u-42"):
        ...     current_llm_context()["llmrel.feature"]
        'refund-bot'
    """
    values = dict(current_llm_context())
    for key, value in ((FEATURE, feature), (TENANT, tenant), (USER_ID, user_id), (SESSION_ID, session_id)):
        if value is not None:
            values[key] = str(value)
    token = otel_context.attach(otel_context.set_value(_CONTEXT_KEY, MappingProxyType(values)))
    try:
        yield
    finally:
        otel_context.detach(token)


def current_llm_context(context: Context | None = None) -> Mapping[str, str]:
    """Values set by enclosing `llm_context` blocks (not baggage)."""
    values = otel_context.get_value(_CONTEXT_KEY, context)
    return values if isinstance(values, Mapping) else _EMPTY


def context_attributes(context: Context | None = None) -> Mapping[str, str]:
    """Span attributes for the business context: baggage first, `llm_context` values on top.

    On the hot path of every LLM span start: two lookups in the context (a dict) when neither
    baggage nor `llm_context` is set.
    """
    if context is None:
        context = otel_context.get_current()
    ours = context.get(_CONTEXT_KEY)
    entries = context.get(_BAGGAGE_KEY)
    if not entries:
        return ours if isinstance(ours, Mapping) else _EMPTY
    attributes = {key: str(entries[key]) for key in CONTEXT_KEYS if key in entries}
    if isinstance(ours, Mapping):
        attributes.update(ours)
    return attributes
