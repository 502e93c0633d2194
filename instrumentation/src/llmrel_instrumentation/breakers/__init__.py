"""The in-app guard: the app honours llmrel's circuit breakers for its `service.name`.

Turned on by the distro under `opentelemetry-instrument` with `LLMREL_BREAKERS=observe|enforce`
(see `config` for every variable):

    LLMREL_BREAKERS=enforce LLMREL_FALLBACK_MODELS='gpt-4o=gpt-4o-mini' opentelemetry-instrument python app.py

A daemon thread long-polls llmrel (`LLMREL_API_URL`) for the service's breakers; the openai
client's calls only read the state it keeps. In `observe` mode nothing changes but the span
(`llmrel.breaker.*` attributes) and a log line per change. In `enforce` mode a call under an open
breaker goes to the app's handler (`on_breaker_open`), else to its fallback model, else raises
`BreakerOpen`; a half-open breaker lets its fraction of calls through. A breaker in dry run is
recorded, never enforced. When llmrel cannot be reached the guard fails open (or keeps the last
state, `LLMREL_BREAKERS_UNREACHABLE=keep`), says so once in the log, and never blocks a call.
"""

from __future__ import annotations

import logging
import os

from opentelemetry import trace

from llmrel_instrumentation.breakers import openai_patch
from llmrel_instrumentation.breakers.config import GuardConfig, GuardMode
from llmrel_instrumentation.breakers.guard import BreakerCall, BreakerOpen, Guard, Handler

__all__ = ["BreakerCall", "BreakerOpen", "Guard", "GuardConfig", "GuardMode", "current_guard", "on_breaker_open",
           "start_guard", "stop_guard"]

_logger = logging.getLogger("llmrel_instrumentation.breakers")
_guard: Guard | None = None
_handler: Handler | None = None


def service_name() -> str:
    """The `service.name` of the SDK's resource (as the spans carry it)."""
    resource = getattr(trace.get_tracer_provider(), "resource", None)
    name = resource.attributes.get("service.name") if resource is not None else None
    return str(name or os.environ.get("OTEL_SERVICE_NAME") or "unknown_service")


def start_guard(config: GuardConfig, service: str | None = None) -> Guard | None:
    """Follow `service`'s breakers and guard the openai client (replacing a running guard)."""
    global _guard
    if config.mode is GuardMode.OFF:
        return None
    stop_guard()
    guard = Guard(config, service or service_name())
    guard.handler = _handler
    openai_patch.install(guard)
    _guard = guard.start()
    _logger.info("llmrel: breakers %s for service %r from %s", config.mode.value, guard.service, config.api_url)
    return guard


def stop_guard() -> None:
    """Stop following and unwrap the openai client."""
    global _guard
    openai_patch.uninstall()
    if _guard is not None:
        _guard.stop()
        _guard = None


def current_guard() -> Guard | None:
    return _guard


def on_breaker_open(handler: Handler | None) -> None:
    """Answer diverted calls with `handler(call: BreakerCall)` instead of a fallback model or `BreakerOpen`.

    The handler's return value is returned by `create` (awaited for the async client when it is
    awaitable); its exceptions reach the app unchanged. `None` removes it.
    """
    global _handler
    _handler = handler
    if _guard is not None:
        _guard.handler = handler
