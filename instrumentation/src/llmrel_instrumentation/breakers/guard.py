"""`Guard`: the app's view of its circuit breakers and the per-call route through them.

The follower thread delivers state and reachability; the guard logs what changes (once per
change, never on the hot path) and publishes a new `GuardState`. `route()` runs in the app's
thread for calls while some breaker of the service is not closed; it takes no lock, does no
I/O and, whatever goes wrong inside it, lets the call through unchanged (logged once). Routes
are built once per state, call key and decision and reused, so a diverted call costs a few
dictionary lookups.

The decision reaches the LLM span through a context variable the openai wrapper sets around the
call (cheaper than an OpenTelemetry context copy; it follows the call into threads and tasks the
same way), read by `EnrichmentSpanProcessor` when the instrumentation starts the span.
"""

from __future__ import annotations

import contextvars
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from llmrel_instrumentation.attributes import (
    BREAKER_DECISION,
    BREAKER_DIVERTED_EVENT,
    BREAKER_MODE,
    BREAKER_REQUESTED_MODEL,
    BREAKER_SCOPE,
    BREAKER_STATE,
    FEATURE,
)
from llmrel_instrumentation.breakers.config import GuardConfig, GuardMode, Unreachable
from llmrel_instrumentation.breakers.follower import BreakerFollower
from llmrel_instrumentation.breakers.state import BreakerEntry, Decision, GuardState, decide, parse_entry
from llmrel_instrumentation.context import context_attributes

_logger = logging.getLogger("llmrel_instrumentation.breakers")
DECISION: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("llmrel_breaker_decision",
                                                                                  default=None)
"""The breaker decision (span attributes) of the LLM call running in this context, if any."""
_MISS = object()
_MAX_ROUTES = 4096
_Plan = tuple[float, "Route", "Route"]


class BreakerOpen(RuntimeError):
    """Raised instead of an LLM call when its breaker is open and no fallback or handler serves it."""

    def __init__(self, scope: str, state: str, model: str, reason: str) -> None:
        super().__init__(f"llmrel circuit breaker {scope} is {state}"
                         f"{f' ({reason})' if reason else ''}; no fallback model for {model!r}")
        self.scope, self.state, self.model, self.reason = scope, state, model, reason


@dataclass(frozen=True, slots=True)
class BreakerCall:
    """A diverted call, as the app's handler gets it."""

    scope: str
    state: str
    operation: str
    model: str
    kwargs: Mapping[str, Any]
    reason: str


Handler = Callable[[BreakerCall], Any]


@dataclass(frozen=True, slots=True)
class Route:
    """What happens to one call, with the span attributes that record it."""

    decision: Decision
    entry: BreakerEntry
    operation: str
    model: str
    fallback: str | None
    attributes: Mapping[str, str] = field(default_factory=dict)
    makes_call: bool = True  # False: answered without an LLM call (handler, BreakerOpen)
    call_model: str | None = None  # the model to call instead of the requested one


def _route(decision: Decision, entry: BreakerEntry, operation: str, model: str, fallback: str | None,
           mode: GuardMode) -> Route:
    attrs = {BREAKER_SCOPE: entry.scope, BREAKER_STATE: entry.state, BREAKER_DECISION: decision.value,
             BREAKER_MODE: mode.value}
    if decision is Decision.FALLBACK:
        attrs[BREAKER_REQUESTED_MODEL] = model
    return Route(decision, entry, operation, model, fallback, attrs,
                 makes_call=decision not in (Decision.BLOCKED, Decision.CALLBACK),
                 call_model=fallback if decision is Decision.FALLBACK else None)


def breaker_attributes(context: object = None) -> Mapping[str, str] | None:
    """The breaker decision for the LLM span starting now (set by the openai wrappers around the call)."""
    return DECISION.get()


def attach_attributes(attributes: Mapping[str, str]) -> contextvars.Token[Mapping[str, str] | None]:
    """Make `attributes` the breaker decision of LLM spans started until `detach_attributes(token)`."""
    return DECISION.set(attributes)


def detach_attributes(token: contextvars.Token[Mapping[str, str] | None]) -> None:
    DECISION.reset(token)


class Guard:
    """Follows one service's breakers and routes its LLM calls. See the package docstring."""

    def __init__(self, config: GuardConfig, service: str, rng: Callable[[], float] = random.random) -> None:
        self._config = config
        self.service = service
        self._state = GuardState()
        self.armed = False  # some breaker of the service is not closed: the one flag the hot path reads
        self._handler: Handler | None = None
        self._routes: dict[tuple[Any, ...], Any] = {}
        self._rng = rng
        self._known = GuardState()
        self._route_failed = False
        self._follower = BreakerFollower(config.api_url, service, config.api_token, config.poll_s,
                                         self.receive, self.reachability)

    # Changing any of these drops the routes built for the previous ones.

    @property
    def config(self) -> GuardConfig:
        return self._config

    @config.setter
    def config(self, config: GuardConfig) -> None:
        self._config, self._routes = config, {}

    @property
    def state(self) -> GuardState:
        return self._state

    @state.setter
    def state(self, state: GuardState) -> None:
        self._state, self._routes, self.armed = state, {}, bool(state.entries)

    @property
    def handler(self) -> Handler | None:
        return self._handler

    @handler.setter
    def handler(self, handler: Handler | None) -> None:
        self._handler, self._routes = handler, {}

    def _plan(self, operation: str, model: str, feature: str) -> _Plan | None:
        """For calls with this key: the half-open fraction (0 when not half-open), the route of a call drawn
        into that fraction and the route of any other call (built once per state, config and handler)."""
        if len(self._routes) >= _MAX_ROUTES:
            self._routes.clear()
        entry = self._state.lookup(operation, model, feature)
        if entry is None:
            return None
        mode = self._config.mode
        fallback = self._config.fallback_models.get(model)
        enforce, handler = mode is GuardMode.ENFORCE, self._handler is not None

        def route_for(draw: float) -> Route:
            decision = decide(entry, enforce, draw, handler, fallback is not None)
            return _route(decision, entry, operation, model, fallback, mode)

        fraction = entry.half_open_fraction if entry.state == "half_open" else 0.0
        return fraction, route_for(0.0), route_for(1.0)

    def start(self) -> Guard:
        self._follower.start()
        return self

    def stop(self) -> None:
        self._follower.stop()

    # --- follower side

    def receive(self, views: list[dict[str, Any]]) -> None:
        """A new list of the service's breakers from llmrel."""
        entries = [e for v in views if (e := parse_entry(v, self.service)) is not None]
        fresh = GuardState.of(entries)
        self._log_changes(self._known, fresh)
        self._known = self.state = fresh

    def reachability(self, reachable: bool, detail: str) -> None:
        url = self.config.api_url
        if reachable:
            _logger.warning("llmrel: breaker state available from %s", url)
            return
        if self.config.unreachable is Unreachable.ALLOW:
            self.state = GuardState()
            _logger.warning("llmrel: breaker state unavailable from %s (%s); LLM calls go through unguarded "
                            "(fail-open) until it answers", url, detail)
        else:
            _logger.warning("llmrel: breaker state unavailable from %s (%s); keeping the last known state", url,
                            detail)

    def _log_changes(self, old: GuardState, new: GuardState) -> None:
        before = {e.scope: e for e in old.entries}
        for entry in new.entries:
            previous = before.pop(entry.scope, None)
            if previous is not None and (previous.state, previous.enforced) == (entry.state, entry.enforced):
                continue
            _logger.warning("llmrel: circuit breaker %s is %s%s: %s", entry.scope, entry.state,
                            f" ({entry.reason})" if entry.reason else "", self._effect(entry))
        for scope in before:
            _logger.warning("llmrel: circuit breaker %s is closed: calls take the primary path again", scope)

    def _effect(self, entry: BreakerEntry) -> str:
        if not entry.enforced:
            return "dry run, calls unchanged"
        if self.config.mode is GuardMode.OBSERVE:
            return "observe mode, calls unchanged"
        share = f"{entry.half_open_fraction:.0%} of calls probe the primary path, the rest " \
            if entry.state == "half_open" else "calls "
        target = ("go to the app's handler" if self.handler is not None else
                  "fall back per LLMREL_FALLBACK_MODELS, else raise BreakerOpen")
        return share + target

    # --- app side (hot path)

    def route(self, operation: str, kwargs: Mapping[str, Any]) -> Route | None:
        """How to treat one call; None to let it through untouched. Never raises."""
        try:
            state = self._state
            model = kwargs.get("model", "")
            feature = context_attributes().get(FEATURE, "") if state.uses_feature else ""
            key = (operation, model, feature)
            plan = self._routes.get(key, _MISS)
            if plan is _MISS:
                plan = self._routes[key] = self._plan(operation, str(model), feature)
            if plan is None:
                return None
            fraction, drawn, other = plan
            return drawn if fraction and self._rng() < fraction else other
        except Exception:
            if not self._route_failed:
                self._route_failed = True
                _logger.exception("llmrel: breaker guard failed; calls go through unguarded")
            return None

    def mark_current_span(self, route: Route) -> None:
        """Record a diversion that makes no LLM call (blocked, handler) on the span around it."""
        try:
            span = trace.get_current_span()
            if span.is_recording():
                attrs = dict(route.attributes)
                span.set_attributes(attrs)
                span.add_event(BREAKER_DIVERTED_EVENT, {**attrs, "gen_ai.request.model": route.model})
        except Exception:
            _logger.debug("llmrel: could not record the breaker decision", exc_info=True)
