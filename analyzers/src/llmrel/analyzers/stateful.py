"""Stateful rules: per-trace limits, windowed violation rates per key, and budgets per key.

Windows are tumbling and aligned on event time (`Timestamp // window`), so the same calls give
the same windows and the same finding ids whatever order or batch size they arrive in. A window
stays open for late calls until the newest event time seen is one window past its end; a trace
is forgotten after `idle` seconds without a call. Each rule fires at most once per trace or
window and key, as soon as its condition holds (lowest delay). `impact_usd` is counted once per
finding.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from llmrel.analyzers.callfields import NUMBER_FIELDS, STATUS_ERROR
from llmrel.analyzers.checks import SKIP, Violation
from llmrel.analyzers.ruleset import Rule
from llmrel.call_traits import stream_model
from llmrel.findings import Finding, finding_id
from llmrel.model import LlmCall

_NS = 1_000_000_000
_RESEND_KEY = "http.request.resend_count"
_KEY_FIELDS = {"service": "service_name", "model": "model", "operation": "operation", "feature": "feature",
               "tenant": "tenant"}


def _key_getter(by: tuple[str, ...]) -> Callable[[LlmCall], tuple[str, ...]]:
    """The `by` key values of a call as a tuple (attrgetter runs in C)."""
    if not by:
        return lambda call: ()
    getter = attrgetter(*(_KEY_FIELDS[k] for k in by))
    return getter if len(by) > 1 else lambda call: (getter(call),)


def _key_fields(by: tuple[str, ...], key: tuple[str, ...]) -> dict[str, str]:
    fields = dict.fromkeys(_KEY_FIELDS.values(), "")
    fields.update({_KEY_FIELDS[k]: v for k, v in zip(by, key, strict=True)})
    return fields


class TraceLimit:
    """At most `max` calls / retries / tool calls / errors per trace (kind `trace_limit`).

    A retry is a call that follows a failed call with the same operation and requested model in
    the same trace, or a call that carries `http.request.resend_count`.
    """

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self._reset()

    def _reset(self) -> None:
        # trace_id -> [count, cost, last_ts, fired, failed keys, requested tool calls]
        self.traces: dict[str, list[Any]] = {}

    def update(self, call: LlmCall, detected_at_ns: int) -> Finding | None:
        state = self.traces.get(call.trace_id)
        if state is None:
            if not self._may_count(call):
                return None  # most traces never need state: no allocation for them
            state = self.traces[call.trace_id] = [0, 0.0, call.timestamp_ns, False, set(), 0]
        elif call.timestamp_ns > state[2]:
            state[2] = call.timestamp_ns
        increment = self._increment(call, state)
        if not increment:
            return None
        state[0] += increment
        state[1] += call.cost_usd or 0.0
        limit = self.rule.params["max"]
        if state[3] or state[0] <= limit:
            return None
        state[3] = True
        what = self.rule.params["count"].replace("_", " ")
        return Finding(
            finding_id=finding_id("trace", self.rule.id, call.trace_id), kind="trace", rule_id=self.rule.id,
            severity=self.rule.severity, service_name=call.service_name, model=call.model,
            operation=call.operation, feature=call.feature, tenant=call.tenant, metric=self.rule.params["count"],
            trace_id=call.trace_id, span_id=call.span_id, observed=float(state[0]), expected=float(limit),
            message=f"trace has {state[0]} {what}, more than {limit}", calls=state[0], cost_usd=state[1],
            impact_usd=self.rule.impact_usd, confidence=None, event_time_ns=call.timestamp_ns,
            detected_at_ns=detected_at_ns)

    def _may_count(self, call: LlmCall) -> bool:
        """Whether a call on a trace without state could count or leave state behind."""
        count = self.rule.params["count"]
        if count == "calls":
            return True
        if count == "tool_calls":
            return bool(call.tool_calls) or call.operation == "execute_tool"
        return call.status_code == STATUS_ERROR or (
            count == "retries" and call.attributes.get(_RESEND_KEY, "0") not in ("", "0"))

    def _increment(self, call: LlmCall, state: list[Any]) -> int:
        count = self.rule.params["count"]
        failed = call.status_code == STATUS_ERROR
        if count == "calls":
            return 1
        if count == "errors":
            return int(failed)
        if count == "tool_calls":
            if call.operation == "execute_tool":
                # Executed tools count unless the model's requests already counted more.
                state[5] -= 1
                return 1 if state[5] < 0 else 0
            requested = call.tool_calls
            state[5] += requested
            return requested
        key = (call.operation, stream_model(call))
        retry = key in state[4] or call.attributes.get(_RESEND_KEY, "0") not in ("", "0")
        if failed:
            state[4].add(key)
        else:
            state[4].discard(key)
        return int(retry)

    def evict(self, newest_ns: int) -> None:
        horizon = newest_ns - self.rule.params["idle"] * _NS
        self.traces = {t: s for t, s in self.traces.items() if s[2] >= horizon}

    def state(self) -> dict[str, Any]:
        """Data-only state (see `llmrel.analyzers.checkpoint.RuleState`)."""
        return {"traces": [{"trace_id": t, "count": s[0], "cost": s[1], "last_ns": s[2], "fired": s[3],
                            "failed": sorted(list(f) for f in s[4]), "tools": s[5]} for t, s in self.traces.items()]}

    def load_state(self, state: Any) -> None:
        self.traces = {e.trace_id: [e.count, e.cost, e.last_ns, e.fired, {tuple(f) for f in e.failed}, e.tools]
                       for e in state.traces or ()}


class _Windowed:
    """Tumbling event-time windows per key; a window stays open for late calls `lateness_ns` (at least one
    window length) past its end, then is dropped; calls later than that are counted in `late_dropped`."""

    def __init__(self, rule: Rule, lateness_ns: int = 0) -> None:
        self.rule = rule
        self.lateness_ns = lateness_ns
        self._reset()

    def _reset(self) -> None:
        self.windows: dict[tuple[Any, ...], list[Any]] = {}
        self.late_dropped = 0
        self._keys = _key_getter(self.rule.params["by"])

    @property
    def window_ns(self) -> int:
        return self.rule.params["window"] * _NS

    def _slot(self, call: LlmCall, newest_ns: int, fresh: list[Any]) -> tuple[tuple[Any, ...], list[Any]] | None:
        size = self.window_ns
        start = call.timestamp_ns - call.timestamp_ns % size
        if start + size + max(size, self.lateness_ns) < newest_ns:
            self.late_dropped += 1
            return None
        key = (*self._keys(call), start)
        state = self.windows.get(key)
        if state is None:
            state = self.windows[key] = fresh
        return key, state

    def evict(self, newest_ns: int) -> None:
        size = self.window_ns
        keep = size + max(size, self.lateness_ns)
        self.windows = {k: s for k, s in self.windows.items() if k[-1] + keep >= newest_ns}

    _INT_SLOTS: tuple[int, ...] = ()

    def state(self) -> dict[str, Any]:
        """Data-only state (see `llmrel.analyzers.checkpoint.RuleState`)."""
        return {"windows": [{"key": list(k[:-1]), "start": k[-1], "values": [float(v) for v in s[:3]],
                             "fired": s[3]} for k, s in self.windows.items()], "late_dropped": self.late_dropped}

    def load_state(self, state: Any) -> None:
        windows = {}
        for e in state.windows or ():
            values: list[Any] = [int(v) if i in self._INT_SLOTS else v for i, v in enumerate(e.values)]
            windows[(*e.key, e.start)] = [*values, e.fired]
        self.windows = windows
        self.late_dropped = state.late_dropped

    def _finding(self, key: tuple[Any, ...], call: LlmCall, *, kind: str, observed: float, expected: float,
                 message: str, calls: int, cost: float, detected_at_ns: int, metric: str) -> Finding:
        by = self.rule.params["by"]
        start = key[-1]
        return Finding(
            finding_id=finding_id(kind, self.rule.id, *key), kind=kind, rule_id=self.rule.id,  # type: ignore[arg-type]
            severity=self.rule.severity, **_key_fields(by, key[:-1]), metric=metric, trace_id=call.trace_id,
            span_id=call.span_id, observed=observed, expected=expected, message=message, calls=calls,
            cost_usd=cost, impact_usd=self.rule.impact_usd, confidence=None, event_time_ns=call.timestamp_ns,
            detected_at_ns=detected_at_ns,
            attributes={"window_start_ns": str(start), "window_s": str(self.rule.params["window"])})


class WindowRate(_Windowed):
    """Violation rate of the per-call rule `of` above `threshold` in a window, per key (kind `window_rate`)."""

    _INT_SLOTS = (0, 1)

    def update(self, call: LlmCall, outcome: Violation | None, newest_ns: int, detected_at_ns: int) -> Finding | None:
        if outcome is SKIP:
            return None
        slot = self._slot(call, newest_ns, [0, 0, 0.0, False])
        if slot is None:
            return None
        key, state = slot
        state[0] += 1
        if outcome is not None:
            state[1] += 1
            state[2] += call.cost_usd or 0.0
        params = self.rule.params
        rate = state[1] / state[0]
        if state[3] or state[0] < params["min_calls"] or rate <= params["threshold"]:
            return None
        state[3] = True
        return self._finding(
            key, call, kind="window", observed=rate, expected=params["threshold"], calls=state[0], cost=state[2],
            message=(f"{params['of']} violated by {state[1]} of {state[0]} calls ({rate:.1%}) in a "
                     f"{params['window']}s window, above {params['threshold']:.1%}"),
            detected_at_ns=detected_at_ns, metric=f"rate:{params['of']}")


class Budget(_Windowed):
    """Sum of `metric` per key above `max` in a window (kind `budget`)."""

    _INT_SLOTS = (2,)

    def update(self, call: LlmCall, newest_ns: int, detected_at_ns: int) -> Finding | None:
        value = NUMBER_FIELDS[self.rule.params["metric"]](call)
        if value is None:
            return None
        slot = self._slot(call, newest_ns, [0.0, 0.0, 0, False])
        if slot is None:
            return None
        key, state = slot
        state[0] += value
        state[1] += call.cost_usd or 0.0
        state[2] += 1
        limit = self.rule.params["max"]
        if state[3] or state[0] <= limit:
            return None
        state[3] = True
        metric = self.rule.params["metric"]
        return self._finding(
            key, call, kind="budget", observed=state[0], expected=limit, calls=state[2], cost=state[1],
            message=f"{metric} {state[0]:g} in a {self.rule.params['window']}s window is above the budget {limit:g}",
            detected_at_ns=detected_at_ns, metric=metric)
