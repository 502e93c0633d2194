"""The guard on the openai client: wrappers around `create` of chat completions, completions and
embeddings (sync and async), installed outermost (after the instrumentations), undone by `uninstall`.

Per call: while every breaker of the service is closed, one attribute read and the original call.
Otherwise the guard's route decides: the primary call (recorded as `probe`, `observe`, `dry_run`),
the same call on the fallback model (`fallback`), the app's handler (`callback`) or `BreakerOpen`
(`blocked`). The decision reaches the LLM span the instrumentation starts through a context
variable (`EnrichmentSpanProcessor` writes it), or the surrounding span when no call is made.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from typing import Any

import wrapt

from llmrel_instrumentation.breakers.guard import (
    DECISION,
    BreakerCall,
    BreakerOpen,
    Guard,
    Route,
)
from llmrel_instrumentation.breakers.state import Decision

_logger = logging.getLogger("llmrel_instrumentation.breakers")

TARGETS: tuple[tuple[str, str, str, bool], ...] = (
    ("openai.resources.chat.completions", "Completions", "chat", False),
    ("openai.resources.chat.completions", "AsyncCompletions", "chat", True),
    ("openai.resources.completions", "Completions", "text_completion", False),
    ("openai.resources.completions", "AsyncCompletions", "text_completion", True),
    ("openai.resources.embeddings", "Embeddings", "embeddings", False),
    ("openai.resources.embeddings", "AsyncEmbeddings", "embeddings", True),
)
_installed: list[tuple[type, Any]] = []
_guard: Guard | None = None


def _diverted(guard: Guard, route: Route, kwargs: dict[str, Any]) -> Any:
    """Answer a call that is not made: the handler's value, or BreakerOpen."""
    guard.mark_current_span(route)
    entry = route.entry
    if route.decision is Decision.CALLBACK and guard.handler is not None:
        return guard.handler(BreakerCall(entry.scope, entry.state, route.operation, route.model, kwargs,
                                         entry.reason))
    raise BreakerOpen(entry.scope, entry.state, route.model, entry.reason)


def _routed(operation: str, kwargs: dict[str, Any]) -> tuple[Guard, Route] | None:
    """The armed guard and its route for this call, or None when the call goes through untouched."""
    guard = _guard
    if guard is None or not guard.armed:
        return None
    route = guard.route(operation, kwargs)
    return None if route is None else (guard, route)


def _sync_wrapper(operation: str) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if (routed := _routed(operation, kwargs)) is None:
            return wrapped(*args, **kwargs)
        guard, route = routed
        if not route.makes_call:
            return _diverted(guard, route, kwargs)
        if route.call_model is not None:
            kwargs = {**kwargs, "model": route.call_model}
        token = DECISION.set(route.attributes)
        try:
            return wrapped(*args, **kwargs)
        finally:
            DECISION.reset(token)

    return wrapper


def _async_wrapper(operation: str) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if (routed := _routed(operation, kwargs)) is None:
            return wrapped(*args, **kwargs)
        guard, route = routed

        async def call() -> Any:
            call_kwargs = kwargs
            if not route.makes_call:
                value = _diverted(guard, route, kwargs)
                return await value if inspect.isawaitable(value) else value
            if route.call_model is not None:
                call_kwargs = {**kwargs, "model": route.call_model}
            token = DECISION.set(route.attributes)
            try:
                return await wrapped(*args, **call_kwargs)
            finally:
                DECISION.reset(token)

        return call()

    return wrapper


def install(guard: Guard) -> bool:
    """Route the openai client's calls through `guard` (idempotent; replaces an earlier guard)."""
    global _guard
    _guard = guard
    if _installed:
        return True
    for module_name, class_name, operation, is_async in TARGETS:
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            continue
        original = cls.__dict__.get("create")
        if original is None:
            continue
        make = _async_wrapper if is_async else _sync_wrapper
        cls.create = wrapt.FunctionWrapper(original, make(operation))
        _installed.append((cls, original))
    if not _installed:
        _logger.warning("llmrel: breakers are on but the openai package is not installed; nothing is guarded")
    return bool(_installed)


def uninstall() -> None:
    """Restore every wrapped method."""
    global _guard
    for cls, original in _installed:
        cls.create = original
    _installed.clear()
    _guard = None
