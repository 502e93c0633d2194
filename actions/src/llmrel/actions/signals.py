"""Signals: inputs that arrive over HTTP at any receiver and wait in `llm_breaker_signals` for the leader.

A Grafana alert (firing or resolved), a manual override, a dry-run switch. Each becomes one
machine `Input` when the leader applies it. Payloads are plain JSON: nothing stored here is
ever executed or unpickled.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from llmrel.actions.machine import AlertSeen, DryRunSet, Input, Override, State

SignalKind = Literal["alert", "override", "dry_run"]
SIGNAL_KINDS: tuple[str, ...] = ("alert", "override", "dry_run")


@dataclass(frozen=True, slots=True)
class Signal:
    """One stored input for one scope."""

    signal_id: str
    received_ns: int
    kind: SignalKind
    scope: str
    actor: str
    payload: dict[str, Any] = field(default_factory=dict)

    def payload_json(self) -> str:
        return json.dumps(self.payload, sort_keys=True, separators=(",", ":"))

    def to_input(self) -> Input:
        """The machine input this signal stands for (at its arrival time).

        Raises:
            ValueError: a payload that does not fit its kind (written by a newer or broken version).
        """
        p = self.payload
        if self.kind == "alert":
            return AlertSeen(str(p["fingerprint"]), bool(p["firing"]), self.received_ns, str(p.get("summary", "")),
                             actor=self.actor)
        if self.kind == "override":
            state = p.get("state")
            return Override(None if state == "auto" else State(state), str(p.get("reason", "")), self.actor,
                            self.received_ns)
        if self.kind == "dry_run":
            return DryRunSet(bool(p["enabled"]), str(p.get("reason", "")), self.actor, self.received_ns)
        raise ValueError(f"unknown signal kind {self.kind!r}")


def alert_signal(scope: str, fingerprint: str, firing: bool, starts_at: str, summary: str,
                 received_ns: int, actor: str = "grafana") -> Signal:
    """An alert notification; the same alert episode (fingerprint, status, start) always gets the same id,
    so repeated or duplicated deliveries collapse."""
    key = f"{scope}\x1f{fingerprint}\x1f{firing}\x1f{starts_at}"
    signal_id = "alert-" + hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
    return Signal(signal_id, received_ns, "alert", scope, actor,
                  {"fingerprint": fingerprint, "firing": firing, "starts_at": starts_at, "summary": summary})


def override_signal(scope: str, state: Literal["open", "closed", "auto"], reason: str, actor: str,
                    received_ns: int) -> Signal:
    """A person pins a scope open or closed, or hands it back to automation (`auto`)."""
    return Signal(f"override-{uuid.uuid4().hex}", received_ns, "override", scope, actor,
                  {"state": state, "reason": reason})


def dry_run_signal(scope: str, enabled: bool, reason: str, actor: str, received_ns: int) -> Signal:
    return Signal(f"dry-run-{uuid.uuid4().hex}", received_ns, "dry_run", scope, actor,
                  {"enabled": enabled, "reason": reason})
