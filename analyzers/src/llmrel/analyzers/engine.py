"""`Engine`: the pure core. Calls in, findings out; no I/O, all state picklable.

For each call (a batch is taken in event-time order): the per-call rules whose scope matches,
then the stateful rules, then the stream's drift monitors. The rules that apply to a given
(service, model, operation, feature, tenant) are resolved once and cached.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llmrel.analyzers.callfields import scope_values, stream_key
from llmrel.analyzers.checks import SKIP, CallFacts, Check, compile_check
from llmrel.analyzers.drift import METRICS, DriftEvent
from llmrel.analyzers.findings import Finding, finding_id
from llmrel.analyzers.ruleset import PER_CALL_KINDS, Rule, RuleSet
from llmrel.analyzers.stateful import Budget, TraceLimit, WindowRate
from llmrel.analyzers.streams import StreamState
from llmrel.model import LlmCall

STATE_VERSION = 1
_PLAN_CACHE_MAX = 50_000
_EVICT_EVERY_NS = 30 * 1_000_000_000  # event time between sweeps of expired traces and windows
_STREAM_IDLE_NS = 3 * 86_400 * 1_000_000_000  # a stream silent this long is forgotten (warm-up again)
_MAX_CLOCK_SKEW_NS = 5 * 60 * 1_000_000_000


@dataclass(frozen=True)
class _Plan:
    checks: tuple[tuple[Rule, Check], ...]
    trace_limits: tuple[TraceLimit, ...]
    windows: tuple[WindowRate, ...]
    budgets: tuple[Budget, ...]


class Engine:
    """Invariant rules + drift detection over `LlmCall`s. Not thread-safe: one caller at a time."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._checks = [(r, compile_check(r.kind, dict(r.params))) for r in ruleset.rules if r.kind in PER_CALL_KINDS]
        self._reset()

    def _reset(self) -> None:
        rules = self.ruleset.rules
        self.trace_limits = {r.id: TraceLimit(r) for r in rules if r.kind == "trace_limit"}
        self.windows = {r.id: WindowRate(r) for r in rules if r.kind == "window_rate"}
        self.budgets = {r.id: Budget(r) for r in rules if r.kind == "budget"}
        self.streams: dict[tuple[str, ...], StreamState] = {}
        self.newest_ns = 0
        self.calls_seen = 0
        self._evicted_at_ns = 0
        self._plans: dict[tuple[str, ...], _Plan] = {}
        self._window_inputs = frozenset(w.rule.params["of"] for w in self.windows.values())

    def stream_key(self, call: LlmCall) -> tuple[str, ...]:
        return stream_key(call, self.ruleset.drift.by_feature)

    def _plan(self, values: tuple[str, ...]) -> _Plan:
        plan = self._plans.get(values)
        if plan is None:
            if len(self._plans) >= _PLAN_CACHE_MAX:
                self._plans.clear()
            plan = self._plans[values] = _Plan(
                checks=tuple((r, c) for r, c in self._checks if r.scope.matches(values)),
                trace_limits=tuple(t for t in self.trace_limits.values() if t.rule.scope.matches(values)),
                windows=tuple(w for w in self.windows.values() if w.rule.scope.matches(values)),
                budgets=tuple(b for b in self.budgets.values() if b.rule.scope.matches(values)),
            )
        return plan

    def process(self, calls: Sequence[LlmCall], now_ns: int | None = None) -> list[Finding]:
        """Analyze a batch; returns the findings it produced. `now_ns` is the detection time."""
        detected = now_ns if now_ns is not None else time.time_ns()
        findings: list[Finding] = []
        drift = self.ruleset.drift
        ordered = sorted(calls, key=_event_time)
        window_inputs, plans, streams = self._window_inputs, self._plans, self.streams
        # A clock far ahead on one sender must not push event time past now: windows and budgets
        # would then treat every later call as late, and idle streams would be evicted.
        newest_allowed = detected + _MAX_CLOCK_SKEW_NS
        for call in ordered:
            self.calls_seen += 1
            if self.newest_ns < call.timestamp_ns <= newest_allowed:
                self.newest_ns = call.timestamp_ns
            values = scope_values(call)
            plan = plans.get(values) or self._plan(values)
            facts = CallFacts(call)
            violated = False
            outcomes: dict[str, Any] = {}
            for rule, check in plan.checks:
                outcome = check(call, facts)
                if rule.id in window_inputs:
                    outcomes[rule.id] = outcome
                if outcome is None or outcome is SKIP:
                    continue
                violated = True
                findings.append(Finding.for_call(
                    kind="invariant", rule_id=rule.id, severity=rule.severity, call=call,  # type: ignore[arg-type]
                    metric=rule.kind, observed=outcome.observed, expected=outcome.expected,
                    message=outcome.message, impact_usd=rule.impact_usd, detected_at_ns=detected,
                    attributes=outcome.attributes))
            for limit in plan.trace_limits:
                self._add(findings, limit.update(call, detected))
            for window in plan.windows:
                self._add(findings, window.update(call, outcomes.get(window.rule.params["of"], SKIP),
                                                  self.newest_ns, detected))
            for budget in plan.budgets:
                self._add(findings, budget.update(call, self.newest_ns, detected))
            if drift.enabled:
                key = stream_key(call, drift.by_feature)
                stream = streams.get(key)
                if stream is None:
                    stream = streams[key] = StreamState(key, drift)
                for event in stream.update(call, facts, violated):
                    findings.append(self._drift_finding(stream, event, call, detected))
        if ordered:
            self._evict()
        return findings

    @staticmethod
    def _add(findings: list[Finding], finding: Finding | None) -> None:
        if finding is not None:
            findings.append(finding)

    def _evict(self) -> None:
        if self.newest_ns - self._evicted_at_ns < _EVICT_EVERY_NS:
            return
        self._evicted_at_ns = self.newest_ns
        for limit in self.trace_limits.values():
            limit.evict(self.newest_ns)
        for windowed in (*self.windows.values(), *self.budgets.values()):
            windowed.evict(self.newest_ns)
        horizon = self.newest_ns - _STREAM_IDLE_NS
        if any(s.last_ns < horizon for s in self.streams.values()):
            self.streams = {k: s for k, s in self.streams.items() if s.last_ns >= horizon}

    def _drift_finding(self, stream: StreamState, event: DriftEvent, call: LlmCall, detected: int) -> Finding:
        spec = METRICS[event.metric]
        key = stream.key
        change = (event.after / event.before - 1) if event.before else float("inf")
        since = datetime.fromtimestamp(event.since_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")
        attributes = {"detector": self.ruleset.drift.detector, "detected_event_ns": str(event.detected_ns),
                      "change": f"{change:+.3f}", "truncated": str(event.truncated).lower()}
        what = f"{event.metric} moved from {event.before:.4g} to {event.after:.4g}"
        if spec.kind == "rate":
            what = f"{event.metric} moved from {event.before:.2%} to {event.after:.2%}"
        if event.metric == "model_swap_rate":
            old, new = stream.accept_model_mix()
            attributes.update(from_models=",".join(sorted(old)), to_model=new)
            what = f"response model changed from {', '.join(sorted(old)) or '?'} to {new or '?'}"
        return Finding(
            finding_id=finding_id("drift", event.metric, *key, event.since_ns), kind="drift",
            rule_id=f"drift.{event.metric}", severity=spec.severity,  # type: ignore[arg-type]
            service_name=key[0], model=key[1], operation=key[2], feature=key[3] if len(key) > 3 else "",
            tenant="", metric=event.metric, trace_id=call.trace_id, span_id=call.span_id,
            observed=event.after, expected=event.before,
            message=f"{what} since {since} UTC ({event.samples} calls, confidence {event.confidence:.3f})",
            calls=event.samples, cost_usd=event.cost_usd, impact_usd=0.0, confidence=event.confidence,
            event_time_ns=event.since_ns, detected_at_ns=detected, attributes=attributes)

    # --- checkpoint state

    def state(self) -> dict[str, Any]:
        """Everything needed to resume (picklable; River detectors included)."""
        return {
            "version": STATE_VERSION,
            "drift_config": dataclasses.asdict(self.ruleset.drift),
            "streams": self.streams,
            "rules": {rid: (obj.rule.fingerprint, _rule_state(obj))
                      for rid, obj in (*self.trace_limits.items(), *self.windows.items(), *self.budgets.items())},
            "newest_ns": self.newest_ns,
            "calls_seen": self.calls_seen,
        }

    def restore(self, state: dict[str, Any]) -> list[str]:
        """Resume from `state()`. Parts that no longer fit (changed rules or drift config) start fresh.

        Returns:
            What was not restored, for one log line.
        """
        dropped: list[str] = []
        if state.get("version") != STATE_VERSION:
            return ["all state (version changed)"]
        self.newest_ns = state["newest_ns"]
        self.calls_seen = state["calls_seen"]
        if state["drift_config"] == dataclasses.asdict(self.ruleset.drift):
            self.streams = state["streams"]
        else:
            dropped.append("drift monitors (drift config changed)")
        saved = state["rules"]
        for rid, obj in (*self.trace_limits.items(), *self.windows.items(), *self.budgets.items()):
            fingerprint, rule_state = saved.get(rid, (None, None))
            if fingerprint == obj.rule.fingerprint:
                for name, value in rule_state.items():
                    setattr(obj, name, value)
            elif fingerprint is not None:
                dropped.append(f"rule {rid} (changed)")
        return dropped


def _event_time(call: LlmCall) -> int:
    return call.timestamp_ns


def _rule_state(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.STATE_FIELDS}
