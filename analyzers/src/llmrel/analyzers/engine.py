"""`Engine`: the pure core. Calls in, findings out; no I/O, all state data-only (see `checkpoint`).

For each call (a batch is taken in event-time order): the per-call rules whose scope matches,
then the stateful rules, then the stream's drift monitors. The rules that apply to a given
(service, model, operation, feature, tenant) are resolved once and cached.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from llmrel.analyzers import checkpoint
from llmrel.analyzers.callfields import scope_values
from llmrel.analyzers.checks import SKIP, CallFacts, Check, compile_check
from llmrel.analyzers.drift import METRICS, DriftEvent
from llmrel.analyzers.ruleset import PER_CALL_KINDS, Rule, RuleSet
from llmrel.analyzers.stateful import Budget, TraceLimit, WindowRate
from llmrel.analyzers.streams import ANY, StreamHistory, StreamState, level_of, parent_keys
from llmrel.call_traits import stream_key
from llmrel.findings import Finding, finding_id
from llmrel.model import LlmCall

log = structlog.get_logger(__name__)

_PLAN_CACHE_MAX = 50_000
_EVICT_EVERY_NS = 30 * 1_000_000_000  # event time between sweeps of expired traces and windows
_STREAM_IDLE_NS = 3 * 86_400 * 1_000_000_000  # a stream silent this long is forgotten
_MAX_CLOCK_SKEW_NS = 5 * 60 * 1_000_000_000
_ATTRIBUTION_NS = 3600 * 1_000_000_000
_ROOT_SAMPLING = 8  # past its first `warmup` calls, the root (a prior for new services only) learns from 1 in 8
_PRIOR_CALLS = 30  # a stream younger than this looks for a parent's prior on each call


@dataclass(frozen=True)
class _Plan:
    checks: tuple[tuple[Rule, Check], ...]
    trace_limits: tuple[TraceLimit, ...]
    windows: tuple[WindowRate, ...]
    budgets: tuple[Budget, ...]


class Engine:
    """Invariant rules + drift detection over `LlmCall`s. Not thread-safe: one caller at a time."""

    def __init__(self, ruleset: RuleSet, lateness_s: float = 600.0) -> None:
        self.ruleset = ruleset
        self.lateness_ns = int(lateness_s * 1e9)
        self._checks = [(r, compile_check(r.kind, dict(r.params))) for r in ruleset.rules if r.kind in PER_CALL_KINDS]
        self._reset()

    def _reset(self) -> None:
        rules = self.ruleset.rules
        self.trace_limits = {r.id: TraceLimit(r) for r in rules if r.kind == "trace_limit"}
        self.windows = {r.id: WindowRate(r, self.lateness_ns) for r in rules if r.kind == "window_rate"}
        self.budgets = {r.id: Budget(r, self.lateness_ns) for r in rules if r.kind == "budget"}
        # leaves and pooled parents, least recently used first (each capped at drift.max_streams)
        self.streams: OrderedDict[tuple[str, ...], StreamState] = OrderedDict()
        self.pooled: OrderedDict[tuple[str, ...], StreamState] = OrderedDict()
        self.streams_evicted = 0
        self._dirty: set[tuple[str, ...]] = set()
        self._leaf_reported: dict[tuple[str, str], int] = {}
        self._children: Counter[tuple[str, ...]] = Counter()
        self._created = 0  # streams created or restored so far (with their number, the key of `_children`)
        self._counted_at = (-1, 0)
        self._config_id = checkpoint.config_id(dataclasses.asdict(self.ruleset.drift))
        self.newest_ns = 0
        self.calls_seen = 0
        self._evicted_at_ns = 0
        self._plans: dict[tuple[str, ...], _Plan] = {}
        self._window_inputs = frozenset(w.rule.params["of"] for w in self.windows.values())

    @property
    def late_dropped(self) -> int:
        """Calls that came after their window or budget period had closed (beyond the lateness bound)."""
        return sum(w.late_dropped for w in (*self.windows.values(), *self.budgets.values()))

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
        window_inputs, plans = self._window_inputs, self._plans
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
                for stream in self._lineage(key):
                    for event in stream.update(call, facts, violated):
                        if self._attribute(stream, event):
                            findings.append(self._drift_finding(stream, event, call, detected))
        if ordered:
            self._evict()
        return findings

    def _attribute(self, stream: StreamState, event: DriftEvent) -> bool:
        """Whether a finding is due: a pooled parent stays quiet on a metric that one of its own streams
        reported within the last hour, since that stream explains the change more specifically."""
        service = stream.key[0]
        if stream.leaf:
            self._leaf_reported[(event.metric, service)] = self._leaf_reported[(event.metric, ANY)] = \
                event.detected_ns
            return True
        last = self._leaf_reported.get((event.metric, service), -_ATTRIBUTION_NS)
        return event.detected_ns - last >= _ATTRIBUTION_NS

    def _lineage(self, key: tuple[str, ...]) -> list[StreamState]:
        """The leaf stream of `key` and its pooled parents (created on first use, marked used and dirty)."""
        service, everything = parent_keys(key)
        root = self._touch(self.pooled, everything, None)
        parent = self._touch(self.pooled, service, root)
        leaf = self._touch(self.streams, key, parent)
        if leaf.calls < _PRIOR_CALLS:
            if parent.calls < _PRIOR_CALLS:
                parent.adopt_priors(root)
            leaf.adopt_priors(parent)
        lineage = [leaf]
        # a service with a single stream would only repeat that stream's tests (it keeps its state
        # and resumes when a second stream appears)
        if self._streams_of(service) > 1 or parent.calls < _PRIOR_CALLS:
            lineage.append(parent)
        if root.calls < self.ruleset.drift.warmup or self.calls_seen % _ROOT_SAMPLING == 0:
            lineage.append(root)
        return lineage

    def _streams_of(self, service: tuple[str, ...]) -> int:
        """How many leaf streams a service has (recounted when the number of streams changes)."""
        if self._counted_at != (len(self.streams), self._created):
            self._children = Counter(parent_keys(key)[0] for key in self.streams)
            self._counted_at = (len(self.streams), self._created)
        return self._children[service]

    def warm_start(self, histories: Iterable[StreamHistory], now_ns: int) -> int:
        """Seed the streams no checkpoint restored from their stored history; returns how many were seeded.

        Parents first, so a leaf without enough calls of its own still borrows a seeded parent's prior.
        A seeded stream counts as used at `now_ns` (not idle: it is kept until it stays silent that long).
        """
        seeded = 0
        for history in sorted(histories, key=lambda h: (level_of(h.key) != "all", level_of(h.key) == "stream")):
            table = self.streams if level_of(history.key) == "stream" else self.pooled
            if history.key in table:
                continue
            parent = None if level_of(history.key) == "all" else self.pooled.get(parent_keys(history.key)[
                0 if level_of(history.key) == "stream" else 1])
            stream = self._touch(table, history.key, None)
            stream.seed(history)
            stream.last_ns = now_ns
            if parent is not None:
                stream.adopt_priors(parent)
            seeded += 1
        return seeded

    def _touch(self, table: OrderedDict[tuple[str, ...], StreamState], key: tuple[str, ...],
               parent: StreamState | None) -> StreamState:
        stream = table.get(key)
        if stream is None:
            stream = table[key] = StreamState(key, self.ruleset.drift, parent)
            self._created += 1
            if len(table) > self.ruleset.drift.max_streams:
                self._evict_lru(table)
        else:
            table.move_to_end(key)
        self._dirty.add(key)
        return stream

    def _evict_lru(self, table: OrderedDict[tuple[str, ...], StreamState]) -> None:
        old, _ = table.popitem(last=False)
        self._dirty.discard(old)
        self.streams_evicted += 1
        if self.streams_evicted & (self.streams_evicted - 1) == 0:  # 1, 2, 4, 8 ...: bounded log volume
            log.warning("drift_streams_evicted", total=self.streams_evicted, cap=self.ruleset.drift.max_streams,
                        last=list(old))

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
        for table in (self.streams, self.pooled):
            while table and next(iter(table.values())).last_ns < horizon:
                self._dirty.discard(table.popitem(last=False)[0])

    def _drift_finding(self, stream: StreamState, event: DriftEvent, call: LlmCall, detected: int) -> Finding:
        spec = METRICS[event.metric]
        key = stream.key
        change = (event.after / event.before - 1) if event.before else float("inf")
        since = datetime.fromtimestamp(event.since_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")
        attributes = {"detector": "cusum", "level": level_of(key), "detected_event_ns": str(event.detected_ns),
                      "change": f"{change:+.3f}", "after_low": f"{event.low:.6g}", "after_high": f"{event.high:.6g}",
                      "truncated": str(event.truncated).lower()}
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

    # --- checkpoint state (data only)

    def state(self) -> str:
        """The engine row of a checkpoint (JSON): rule state and counters; drift streams are separate rows."""
        rules = {rid: {"fingerprint": obj.rule.fingerprint, **obj.state()}
                 for rid, obj in (*self.trace_limits.items(), *self.windows.items(), *self.budgets.items())}
        return checkpoint.dump(checkpoint.EngineRow(format=checkpoint.FORMAT_VERSION, config=self._config_id,
                                                    rules=rules, newest_ns=self.newest_ns,
                                                    calls_seen=self.calls_seen))

    def stream_rows(self, keys: Iterable[tuple[str, ...]] | None = None) -> list[tuple[str, str]]:
        """(stream id, JSON) of the given streams (default: those changed since `mark_saved`)."""
        rows = []
        for key in self._dirty if keys is None else keys:
            stream = self.streams.get(key) or self.pooled.get(key)
            if stream is not None:
                state = {"format": checkpoint.FORMAT_VERSION, "config": self._config_id, **stream.state()}
                rows.append(("\x1f".join(key), checkpoint.dump(checkpoint.StreamRow.model_validate(state))))
        return rows

    def mark_saved(self) -> None:
        """The rows of `stream_rows()` are stored: the next checkpoint writes only streams used after now."""
        self._dirty = set()

    def snapshot(self, calls: Sequence[LlmCall]) -> tuple[str, list[tuple[str, ...]], list[str], set[Any]]:
        """Data-only snapshot of what processing `calls` can change (rules, counters, their streams)."""
        keys = set()
        for call in calls:
            key = stream_key(call, self.ruleset.drift.by_feature)
            keys.update((key, *parent_keys(key)))
        touched = sorted(keys)
        return self.state(), touched, [blob for _, blob in self.stream_rows(touched)], set(self._dirty)

    def rollback(self, snap: tuple[str, list[tuple[str, ...]], list[str], set[Any]]) -> None:
        """Undo a `process` that could not be committed, back to `snapshot`."""
        engine_blob, touched, blobs, dirty = snap
        for key in touched:
            self.streams.pop(key, None)
            self.pooled.pop(key, None)
        self._created += 1
        self.restore(engine_blob, blobs)
        self._dirty = dirty

    def restore(self, engine_blob: str | None, stream_blobs: Iterable[str] = ()) -> list[str]:
        """Resume from stored rows (newest stream rows first). Invalid parts are skipped, never executed.

        Returns:
            What was not restored, for one log line.

        Raises:
            CheckpointError: when the engine row is invalid (nothing is restored then).
        """
        dropped: list[str] = []
        if engine_blob is not None:
            row = checkpoint.load_engine(engine_blob)
            restored = {}
            for rid, obj in (*self.trace_limits.items(), *self.windows.items(), *self.budgets.items()):
                saved = row.rules.get(rid)
                if saved is not None and saved.fingerprint == obj.rule.fingerprint:
                    restored[rid] = (obj, saved)
                elif saved is not None:
                    dropped.append(f"rule {rid} (changed)")
            for obj, saved in restored.values():
                obj.load_state(saved)
            self.newest_ns, self.calls_seen = row.newest_ns, row.calls_seen
        cap, stale, invalid = self.ruleset.drift.max_streams, 0, 0
        streams: list[StreamState] = []
        for blob in stream_blobs:
            try:
                saved_stream = checkpoint.load_stream(blob)
                if saved_stream.config != self._config_id:
                    stale += 1
                    continue
                streams.append(StreamState.from_state(saved_stream.model_dump(), self.ruleset.drift))
            except (checkpoint.CheckpointError, ValueError, KeyError):
                invalid += 1
        leaves = [st for st in streams if st.leaf][:cap]
        parents = [st for st in streams if not st.leaf][:cap]
        self._created += 1
        for table, kept in ((self.streams, leaves), (self.pooled, parents)):
            for stream in reversed(kept):  # oldest first, so the least recently used is evicted first
                table[stream.key] = stream
        if stale:
            dropped.append(f"{stale} drift streams (drift config changed)")
        if invalid:
            dropped.append(f"{invalid} drift streams (invalid rows)")
        return dropped


def _event_time(call: LlmCall) -> int:
    return call.timestamp_ns
