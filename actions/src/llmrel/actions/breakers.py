"""`BreakerSet`: the machines of every scope and what they show (pure; the controller drives it).

Also what a breaker looks like from outside: `BreakerView`, built only from a scope's last
recorded step and its policy, so every receiver (leader or follower) publishes the same view,
byte for byte, for the same state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from llmrel.actions.machine import BreakerMachine, BreakerPolicy, Input, ProbeWindow, State, Tick, Transition
from llmrel.breaker_scope import BreakerScope

PolicyFor = Callable[[str], BreakerPolicy]


def iso(ns: int) -> str:
    """RFC 3339 UTC with milliseconds."""
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def policy_lookup(base: BreakerPolicy, dry_run_globs: Iterable[str]) -> PolicyFor:
    """`base` for every scope, in dry run where a glob matches the scope."""
    globs = tuple(dry_run_globs)
    cache: dict[str, BreakerPolicy] = {}

    def policy_for(scope: str) -> BreakerPolicy:
        policy = cache.get(scope)
        if policy is None:
            dry = any(fnmatchcase(scope, g) for g in globs)
            policy = cache[scope] = dataclasses.replace(base, dry_run=dry)
        return policy

    return policy_for


@dataclass(frozen=True, slots=True)
class BreakerView:
    """What apps, the CLI and Grafana see of one scope."""

    last: Transition
    half_open_fraction: float

    @property
    def service(self) -> str:
        return BreakerScope.parse(self.last.scope).service

    def to_json(self) -> dict[str, Any]:
        t = self.last
        return {
            "scope": t.scope, "service": self.service, "state": t.to_state.value, "since": iso(t.since_ns),
            "enforced": not t.dry_run, "dry_run": t.dry_run, "override": t.override or None,
            "half_open_fraction": self.half_open_fraction, "seq": t.seq,
            "why": {"cause": t.cause, "reason": t.reason, "finding_ids": list(t.finding_ids),
                    "alert_fingerprint": t.alert_fingerprint or None, "actor": t.actor, "at": iso(t.at_ns)},
        }


class BreakerSet:
    """Machines by scope, created on first input. Not thread-safe."""

    def __init__(self, policy_for: PolicyFor) -> None:
        self.policy_for = policy_for
        self.machines: dict[str, BreakerMachine] = {}

    def machine(self, scope: str) -> BreakerMachine:
        machine = self.machines.get(scope)
        if machine is None:
            machine = self.machines[scope] = BreakerMachine(scope, self.policy_for(scope))
        return machine

    def restore(self, last_steps: Iterable[Transition]) -> None:
        """Resume every scope from its last recorded step."""
        self.machines = {t.scope: BreakerMachine.from_transition(t, self.policy_for(t.scope)) for t in last_steps}

    def apply(self, scope: str, event: Input) -> Transition | None:
        return self.machine(scope).update(event).transition

    def tick(self, now_ns: int) -> list[Transition]:
        """Let time pass for every scope (open → half-open)."""
        steps = [m.update(Tick(now_ns)).transition for m in self.machines.values()]
        return [t for t in steps if t is not None]

    def probes_due(self, now_ns: int) -> list[tuple[str, int, int]]:
        """(scope, start, end) of half-open windows that ended by `now_ns`."""
        return [(scope, *due) for scope, m in self.machines.items() if (due := m.probe_due(now_ns)) is not None]

    def next_due_ns(self, probe_grace_ns: int) -> int | None:
        """The earliest time a `tick` or a due probe window (judged `probe_grace_ns` after it ends) acts."""
        due = [d + (probe_grace_ns if m.state is State.HALF_OPEN else 0)
               for m in self.machines.values() if (d := m.next_due_ns()) is not None]
        return min(due, default=None)

    def judge(self, scope: str, window: ProbeWindow) -> Transition | None:
        return self.apply(scope, window)

    def views(self) -> list[BreakerView]:
        return [view_of(m.last, self.policy_for(m.scope)) for m in self.machines.values() if m.last is not None]


def view_of(last: Transition, policy: BreakerPolicy) -> BreakerView:
    return BreakerView(last, policy.half_open_fraction)
