"""`BreakerController`: the loop that turns findings, alerts and overrides into breaker transitions.

Every receiver runs one; the one holding the lease (`lease.Lease`) leads. The loop sleeps until
something is due: findings from its own analyzers or a signal its own HTTP API stored wake it at
once; the next deadline wakes it (a breaker's minimum open time, a probe window's end, renewing or
claiming the lease); and every `poll_s` it reads what other processes stored. Each time the leader:

1. takes its inputs: findings from its own analyzers (handed over in process), and at each poll
   findings other receivers or `llmrel analyze` stored (`llm_findings`, by detection time) and
   signals stored by any receiver's HTTP API (Grafana alerts, overrides), each once (re-reading a
   few seconds before its cursors, for rows another receiver stored late);
2. applies them in time order to the scopes' machines, lets time pass, and judges half-open
   probe windows on the calls stored for them (a grace period after each window ends, so late
   calls and their findings are in);
3. records the transitions in `llm_breaker_events` (keyed by scope and step), publishes the
   views, and hands the transitions to the outgoing webhooks.

Followers publish the views of the recorded state at each poll. On taking over, a leader restores every
scope from its last recorded step and the alerts still firing, and continues from the previous
leader's input cursors.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import structlog
from clickhouse_connect.driver.client import Client

from llmrel.actions import store
from llmrel.actions.board import Board
from llmrel.actions.breakers import BreakerSet, view_of
from llmrel.actions.lease import Cursors, Lease
from llmrel.actions.machine import FindingSeen, Input, ProbeWindow, Transition

log = structlog.get_logger(__name__)

_S = 1_000_000_000
_OVERLAP_NS = 10 * _S  # re-read this much before a cursor: rows stored late by another receiver
_FINDING_HORIZON_NS = 3600 * _S  # a new leader counts findings this far back
_FRESH_SIGNALS_NS = 600 * _S  # the first leader ever (no cursor to inherit) applies signals this recent
_MAX_QUEUED = 10_000
_RETRY_S = 1.0  # after a failed step, the next one waits at least this long


class TransitionSink(Protocol):
    def send(self, transitions: Sequence[Transition], /) -> None: ...


class BreakerController:
    """Drives a `BreakerSet` from stored and in-process inputs; one thread, started by `start()`.

    `observe` (the analyzers' hook) and `notify` are thread-safe and never raise or block.
    """

    def __init__(self, client: Client, breakers: BreakerSet, board: Board, lease: Lease, *, poll_s: float = 10.0,
                 probe_grace_s: float = 2.0, sinks: Sequence[TransitionSink] = (),
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.client = client
        self.breakers = breakers
        self.board = board
        self.lease = lease
        self.poll_ns = int(poll_s * _S)
        self.probe_grace_ns = int(probe_grace_s * _S)
        self.sinks = tuple(sinks)
        self.clock = clock
        self.leading = False
        self.failures = 0
        self.evaluations = 0
        self._poll_at = 0  # next read of the inputs other processes stored
        self._read_stored = False  # a signal was stored here: read stored inputs at the next step
        self._queue: deque[tuple[str, FindingSeen]] = deque(maxlen=_MAX_QUEUED)
        self._seen_findings: dict[str, int] = {}
        self._seen_signals: dict[str, int] = {}
        self._cursors = Cursors()
        self._unwritten: list[Transition] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="llmrel-breakers", daemon=True)

    # --- thread-safe entry points

    def observe(self, findings: Sequence[Any]) -> None:
        """Findings just written by this process's analyzers; those declaring a breaker are taken now."""
        try:
            for f in findings:
                action = getattr(f, "action", None)
                if action is not None:
                    self._queue.append((action.breaker, FindingSeen(
                        f.finding_id, f.rule_id, f.detected_at_ns, action.trip_after, action.within_s * _S)))
            if findings:
                self._wake.set()
        except Exception:
            log.exception("breaker_observe_failed")

    def notify(self) -> None:
        """Read the stored inputs and evaluate now rather than at the next poll (a signal was just stored)."""
        self._read_stored = True
        self._wake.set()

    def start(self) -> BreakerController:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the loop, then give up the lead so another receiver takes over at once."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        try:
            self.lease.release(self._cursors)
        except Exception:
            log.warning("breaker_lease_release_failed", exc_info=True)

    # --- the loop

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.idle_s())
            self._wake.clear()
            if self._stop.is_set():
                return
            self.step()

    def idle_s(self) -> float:
        """Seconds until the next thing due: a breaker deadline, the lease's, or the next poll."""
        due = [self._poll_at, self.lease.next_due_ns()]
        if self.leading:
            due.append(self.breakers.next_due_ns(self.probe_grace_ns))
        idle = max(0.0, (min(d for d in due if d is not None) - self.clock()) / _S)
        return max(idle, min(_RETRY_S, self.poll_ns / _S)) if self._failing else idle

    def step(self) -> None:
        """One evaluation. Never raises; a failing stretch is logged once."""
        self.evaluations += 1
        now = self.clock()
        read_stored = self._read_stored or now >= self._poll_at or self._failing
        if read_stored:
            self._read_stored = False
            self._poll_at = now + self.poll_ns
        try:
            if self.lease.hold(self._cursors):
                if not self.leading:
                    self._take_over()
                    read_stored = True
                self.leading = True
                self._lead(self.clock(), read_stored)
            else:
                if self.leading:
                    log.warning("breaker_controller_following", leader=self.lease.leader)
                    read_stored = True
                self.leading = False
                self._queue.clear()  # the leader reads these findings back from llm_findings
                if read_stored:
                    self._follow()
        except Exception:
            self.failures += 1
            if not self._failing:
                log.exception("breaker_controller_failed")
            self._failing = True
            return
        if self._failing:
            log.info("breaker_controller_recovered", failed_steps=self.failures)
        self._failing = False

    def _follow(self) -> None:
        policy_for = self.breakers.policy_for
        self.board.publish(view_of(t, policy_for(t.scope)) for t in store.latest_transitions(self.client))

    def _take_over(self) -> None:
        last_steps = store.latest_transitions(self.client)
        self.breakers.restore(last_steps)
        for scope, firing in store.firing_alerts(self.client).items():
            self.breakers.machine(scope).restore_alerts(firing)
        now = self.clock()
        inherited = self.lease.inherited
        self._cursors = Cursors(inherited.signals_ns or now - _FRESH_SIGNALS_NS,
                                inherited.findings_ns or now - _FINDING_HORIZON_NS)
        self._seen_findings.clear()
        # Signals up to the previous leader's cursor were applied (and recorded) by it: not again.
        self._seen_signals = {s.signal_id: s.received_ns
                              for s in store.read_signals(self.client, inherited.signals_ns - _OVERLAP_NS)
                              if s.received_ns <= inherited.signals_ns} if inherited.signals_ns else {}
        self._unwritten = []
        log.info("breaker_controller_leading", term=self.lease.term, scopes=len(last_steps))

    def _lead(self, now: int, read_stored: bool) -> None:
        inputs = self._inputs(read_stored)
        steps: list[Transition] = []
        for _, scope, event in sorted(inputs, key=lambda item: item[0]):
            step = self.breakers.apply(scope, event)
            if step is not None:
                steps.append(step)
        steps += self.breakers.tick(now)
        for scope, start, end in self.breakers.probes_due(now - self.probe_grace_ns):
            calls, failures = store.probe_stats(self.client, scope, start, end)
            step = self.breakers.judge(scope, ProbeWindow(start, end, calls, failures, now))
            if step is not None:
                steps.append(step)
        self._unwritten += steps
        try:  # recorded first, so what apps see is in the audit log; shown even when the write failed
            if self._unwritten:
                store.write_transitions(self.client, self._unwritten, self.lease.term)
                self._unwritten = []
        finally:
            self.board.publish(self.breakers.views())
        for step in steps:
            log.info("breaker_transition", scope=step.scope, seq=step.seq, from_state=step.from_state.value,
                     to_state=step.to_state.value, cause=step.cause, reason=step.reason, dry_run=step.dry_run)
        if steps:
            for sink in self.sinks:
                sink.send(steps)

    def _inputs(self, read_stored: bool) -> list[tuple[int, str, Input]]:
        """Unseen inputs, as (time, scope, input): those handed over in process, and the stored ones if asked."""
        inputs: list[tuple[int, str, Input]] = []
        while self._queue:
            scope, finding = self._queue.popleft()
            if self._first_finding(finding.finding_id, finding.at_ns):
                inputs.append((finding.at_ns, scope, finding))
        if not read_stored:
            return inputs
        cursors = self._cursors
        newest_finding = cursors.findings_ns
        for f in store.action_findings(self.client, cursors.findings_ns - _OVERLAP_NS):
            newest_finding = max(newest_finding, f.detected_ns)
            if self._first_finding(f.finding_id, f.detected_ns):
                inputs.append((f.detected_ns, f.scope, FindingSeen(f.finding_id, f.rule_id, f.detected_ns,
                                                                   f.trip_after, f.within_s * _S)))
        newest_signal = cursors.signals_ns
        for signal in store.read_signals(self.client, cursors.signals_ns - _OVERLAP_NS):
            newest_signal = max(newest_signal, signal.received_ns)
            if signal.signal_id in self._seen_signals:
                continue
            self._seen_signals[signal.signal_id] = signal.received_ns
            try:
                inputs.append((signal.received_ns, signal.scope, signal.to_input()))
            except (KeyError, ValueError) as exc:
                log.warning("breaker_signal_unreadable", signal_id=signal.signal_id, problem=str(exc))
        self._cursors = Cursors(newest_signal, newest_finding)
        self._prune(newest_signal, newest_finding)
        return inputs

    def _first_finding(self, finding_id: str, at_ns: int) -> bool:
        if finding_id in self._seen_findings:
            return False
        self._seen_findings[finding_id] = at_ns
        return True

    def _prune(self, signals_ns: int, findings_ns: int) -> None:
        if len(self._seen_signals) > 1000:
            horizon = signals_ns - 2 * _OVERLAP_NS
            self._seen_signals = {k: v for k, v in self._seen_signals.items() if v >= horizon}
        if len(self._seen_findings) > 10_000:
            horizon = findings_ns - _FINDING_HORIZON_NS
            self._seen_findings = {k: v for k, v in self._seen_findings.items() if v >= horizon}
