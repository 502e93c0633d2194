"""`BreakerMachine`: one scope's circuit breaker, closed → open → half-open → closed, as a pure state machine.

Inputs are values (`FindingSeen`, `AlertSeen`, `Override`, `DryRunSet`, `Tick`, `ProbeWindow`) and so
are the results (`Transition`); no clock, no I/O. The machine follows River's contract: parameters
stored verbatim, state built in `_reset()`, `update()` returns `self`, and the outcome of the last
update is the read-only `transition` property.

Hysteresis:

* closed → open after `trip_after` qualifying findings of one rule within its `within` window,
  or at once on a firing alert;
* open → half-open once `min_open_s` has passed and no alert on the scope is firing;
* half-open lets `half_open_fraction` of the calls through and is judged in probe windows of
  `probe_window_s`: a window with at least `min_probe_calls` primary-path calls of which at most
  `probe_max_failure_rate` have a qualifying finding is healthy; `close_after` healthy windows in a
  row close the breaker, an unhealthy one opens it again, a window with too few calls does not count.
  A breaker opened by an alert is judged on the alert instead: a window in which it did not fire is healthy.

A manual override pins the state (`open` or `closed`) and wins over automation until released; a
release closes the breaker and hands it back to automation. Dry run changes nothing of the
above: transitions are recorded with `dry_run=True` and apps do not enforce them.

Examples:
    >>> policy = BreakerPolicy(min_open_s=60, close_after=1, probe_window_s=30, min_probe_calls=1)
    >>> machine = BreakerMachine("support-bot/chat", policy)
    >>> s = 1_000_000_000
    >>> for i in range(3):
    ...     t = machine.update(FindingSeen(f"f{i}", "json", i * s, trip_after=3, within_ns=60 * s)).transition
    >>> t.to_state, t.cause, t.finding_ids
    (<State.OPEN: 'open'>, 'findings', ('f0', 'f1', 'f2'))
    >>> machine.update(Tick(62 * s)).transition.to_state
    <State.HALF_OPEN: 'half_open'>
    >>> machine.probe_due(95 * s)
    (62000000000, 92000000000)
    >>> machine.update(ProbeWindow(62 * s, 92 * s, calls=12, failures=0, at_ns=95 * s)).transition.to_state
    <State.CLOSED: 'closed'>
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

_NS = 1_000_000_000


class State(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# Causes recorded with each transition.
FINDINGS, ALERT, MIN_OPEN, PROBE_HEALTHY, PROBE_UNHEALTHY = "findings", "alert", "min_open", "probe_healthy", \
    "probe_unhealthy"
MANUAL, RELEASE, DRY_RUN = "manual", "release", "dry_run"
SYSTEM_ACTOR = "llmrel"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """How one scope's breaker behaves (defaults from `Settings.breaker_*`)."""

    min_open_s: float = 60.0
    half_open_fraction: float = 0.1
    close_after: int = 3
    probe_window_s: float = 60.0
    min_probe_calls: int = 10
    probe_max_failure_rate: float = 0.1
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class FindingSeen:
    """A finding whose rule declared this breaker (`trip_after` of them `within_ns` trip it)."""

    finding_id: str
    rule_id: str
    at_ns: int
    trip_after: int = 1
    within_ns: int = 60 * _NS


@dataclass(frozen=True, slots=True)
class AlertSeen:
    """A Grafana alert labelled with this scope, firing or resolved."""

    fingerprint: str
    firing: bool
    at_ns: int
    summary: str = ""
    actor: str = "grafana"


@dataclass(frozen=True, slots=True)
class Override:
    """A person pins the state (`OPEN`/`CLOSED`) or releases it to automation (`state=None`)."""

    state: State | None
    reason: str
    actor: str
    at_ns: int


@dataclass(frozen=True, slots=True)
class DryRunSet:
    """Switch dry run on or off for this scope."""

    enabled: bool
    reason: str
    actor: str
    at_ns: int


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passes (moves open → half-open)."""

    now_ns: int


@dataclass(frozen=True, slots=True)
class ProbeWindow:
    """What the primary path saw during a half-open window: calls, and those with a qualifying finding."""

    start_ns: int
    end_ns: int
    calls: int
    failures: int
    at_ns: int


Input = FindingSeen | AlertSeen | Override | DryRunSet | Tick | ProbeWindow


@dataclass(frozen=True, slots=True)
class Transition:
    """One recorded step of a scope: a state change, or an override / dry-run change (same state)."""

    scope: str
    seq: int
    at_ns: int
    from_state: State
    to_state: State
    cause: str
    reason: str
    finding_ids: tuple[str, ...] = ()
    alert_fingerprint: str = ""
    actor: str = SYSTEM_ACTOR
    dry_run: bool = False
    override: str = ""
    opened_by: str = ""
    since_ns: int = 0


class BreakerMachine:
    """The breaker of one scope. Not thread-safe; one caller at a time."""

    def __init__(self, scope: str, policy: BreakerPolicy) -> None:
        self.scope = scope
        self.policy = policy
        self._reset()

    def _reset(self) -> None:
        self.state = State.CLOSED
        self.since_ns = 0
        self.seq = 0
        self.dry_run = self.policy.dry_run
        self.override: State | None = None
        self.opened_by = ""
        self.last: Transition | None = None
        self._hits: dict[str, deque[tuple[int, str]]] = {}
        self._firing: dict[str, str] = {}
        self._healthy = 0
        self._window_start = 0
        self._transition: Transition | None = None

    @classmethod
    def from_transition(cls, last: Transition, policy: BreakerPolicy) -> BreakerMachine:
        """Resume from the scope's last recorded step (after a restart or a change of leader)."""
        machine = cls(last.scope, policy)
        machine.state, machine.since_ns, machine.seq = last.to_state, last.since_ns or last.at_ns, last.seq
        machine.dry_run = last.dry_run if last.cause == DRY_RUN else policy.dry_run
        machine.override = State(last.override) if last.override else None
        machine.opened_by = last.opened_by
        machine.last = last
        machine._window_start = machine.since_ns
        return machine

    @property
    def transition(self) -> Transition | None:
        """What the last `update` recorded, else None."""
        return self._transition

    @property
    def firing_alerts(self) -> tuple[str, ...]:
        return tuple(sorted(self._firing))

    def restore_alerts(self, firing: dict[str, str]) -> None:
        """Set the alerts known to be firing (fingerprint -> summary) without recording anything."""
        self._firing = dict(firing)

    def probe_due(self, now_ns: int) -> tuple[int, int] | None:
        """The half-open window that has ended by `now_ns` and awaits its `ProbeWindow`, if any."""
        if self.state is not State.HALF_OPEN or self.override is not None:
            return None
        end = self._window_start + int(self.policy.probe_window_s * _NS)
        return (self._window_start, end) if now_ns >= end else None

    def next_due_ns(self) -> int | None:
        """When letting time pass next changes something: the end of the minimum open time (→ half-open),
        or the end of the current probe window (→ judged). None when only an input can."""
        if self.override is not None:
            return None
        if self.state is State.OPEN and not self._firing:
            return self.since_ns + int(self.policy.min_open_s * _NS)
        if self.state is State.HALF_OPEN:
            return self._window_start + int(self.policy.probe_window_s * _NS)
        return None

    def update(self, event: Input) -> BreakerMachine:
        """Apply one input; the step it caused (if any) is then `transition`."""
        self._transition = None
        if isinstance(event, Override):
            self._on_override(event)
        elif isinstance(event, DryRunSet):
            if event.enabled != self.dry_run:
                self.dry_run = event.enabled
                self._record(self.state, DRY_RUN, event.reason, event.at_ns, actor=event.actor)
        elif isinstance(event, AlertSeen):
            self._on_alert(event)
        elif self.override is not None:
            return self  # pinned by a person: automation waits
        elif isinstance(event, FindingSeen):
            self._on_finding(event)
        elif isinstance(event, Tick):
            self._on_tick(event.now_ns)
        elif isinstance(event, ProbeWindow):
            self._on_probe(event)
        return self

    # --- inputs

    def _on_override(self, event: Override) -> None:
        if event.state is None:
            if self.override is None:
                return
            self.override = None
            self._clear()
            self._record(State.CLOSED, RELEASE, event.reason, event.at_ns, actor=event.actor)
            return
        self.override = event.state
        opened_by = MANUAL if event.state is State.OPEN else ""
        self._record(event.state, MANUAL, event.reason, event.at_ns, actor=event.actor, opened_by=opened_by)

    def _on_alert(self, event: AlertSeen) -> None:
        if not event.firing:
            self._firing.pop(event.fingerprint, None)
            return
        self._firing[event.fingerprint] = event.summary
        if self.override is None and self.state is not State.OPEN:
            reason = f"alert firing: {event.summary}" if event.summary else "alert firing"
            self._record(State.OPEN, ALERT, reason, event.at_ns, alert=event.fingerprint, actor=event.actor,
                         opened_by=ALERT)

    def _on_finding(self, event: FindingSeen) -> None:
        if self.state is not State.CLOSED or event.at_ns < self.since_ns:
            return  # only findings made since the breaker (last) closed count toward tripping it
        hits = self._hits.setdefault(event.rule_id, deque())
        if any(fid == event.finding_id for _, fid in hits):
            return
        hits.append((event.at_ns, event.finding_id))
        horizon = event.at_ns - event.within_ns
        while hits and hits[0][0] < horizon:
            hits.popleft()
        if len(hits) >= event.trip_after:
            ids = tuple(fid for _, fid in hits)
            reason = f"{len(hits)} findings of rule {event.rule_id} within {event.within_ns // _NS}s"
            self._record(State.OPEN, FINDINGS, reason, event.at_ns, findings=ids, opened_by=FINDINGS)

    def _on_tick(self, now_ns: int) -> None:
        if self.state is not State.OPEN or self._firing:
            return
        if now_ns - self.since_ns >= int(self.policy.min_open_s * _NS):
            self._record(State.HALF_OPEN, MIN_OPEN, f"open for {(now_ns - self.since_ns) / _NS:.0f}s; probing",
                         now_ns)

    def _on_probe(self, event: ProbeWindow) -> None:
        if self.state is not State.HALF_OPEN or event.start_ns != self._window_start:
            return
        self._window_start = event.end_ns
        policy = self.policy
        if self.opened_by == ALERT:
            healthy, what = not self._firing, "no alert fired"
        elif event.calls < policy.min_probe_calls:
            return  # too little evidence: the window does not count either way
        else:
            rate = event.failures / event.calls
            healthy = rate <= policy.probe_max_failure_rate
            what = f"{event.failures} of {event.calls} probe calls had findings ({rate:.0%})"
        if not healthy:
            self._record(State.OPEN, PROBE_UNHEALTHY, f"probe window unhealthy: {what}", event.at_ns,
                         opened_by=self.opened_by)
            return
        self._healthy += 1
        if self._healthy >= policy.close_after:
            self._record(State.CLOSED, PROBE_HEALTHY, f"{self._healthy} healthy probe windows; last: {what}",
                         event.at_ns)

    # --- recording

    def _clear(self) -> None:
        self._hits.clear()
        self._healthy = 0

    def _record(self, to_state: State, cause: str, reason: str, at_ns: int, *, findings: tuple[str, ...] = (),
                alert: str = "", actor: str = SYSTEM_ACTOR, opened_by: str | None = None) -> None:
        from_state = self.state
        if to_state is not from_state:
            self.since_ns = at_ns
            self._healthy = 0
            self._window_start = at_ns
            if to_state is State.CLOSED:
                self._clear()
                self.opened_by = ""
        if opened_by is not None and to_state is not State.CLOSED:
            self.opened_by = opened_by
        self.state = to_state
        self.seq += 1
        self.last = self._transition = Transition(
            scope=self.scope, seq=self.seq, at_ns=at_ns, from_state=from_state, to_state=to_state, cause=cause,
            reason=reason, finding_ids=findings, alert_fingerprint=alert, actor=actor, dry_run=self.dry_run,
            override=self.override.value if self.override is not None else "", opened_by=self.opened_by,
            since_ns=self.since_ns)
