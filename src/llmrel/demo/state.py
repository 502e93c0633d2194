"""Mutable simulator state shared by the server's event loop and its controller (thread-safe)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from llmrel.demo.config import Degradation, SimulatorConfig

_MAX_TRACKED_DIGESTS = 200_000
_REQUEST_LOG_SIZE = 10_000


class SimulatorState:
    """Degradation switch, per-request occurrence counters, outcome counts and a log of recent requests.

    The scheduled degradation (`config.degrade_at_s`) fires on the first request after its time; an explicit
    `degrade()` or `recover()` cancels the schedule. Every method takes the lock briefly and never blocks.
    """

    def __init__(self, config: SimulatorConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._started_at = self._clock()
        self._degrade_deadline = (None if self.config.degrade_at_s is None
                                  else self._started_at + self.config.degrade_at_s)
        self._active: Degradation | None = None
        self._occurrences: dict[str, int] = {}
        self._outcomes: Counter[str] = Counter()
        self._requests: deque[dict[str, Any]] = deque(maxlen=_REQUEST_LOG_SIZE)

    def mark_started(self) -> None:
        """Restart the clock (and the schedule, counters and degradation) when the server starts serving."""
        with self._lock:
            self._reset()

    def active_degradation(self) -> Degradation | None:
        """The degradation in force now, firing the scheduled one when its time has come."""
        with self._lock:
            if self._degrade_deadline is not None and self._clock() >= self._degrade_deadline:
                self._active, self._degrade_deadline = self.config.degradation, None
            return self._active

    def degrade(self, degradation: Degradation | None = None) -> Degradation:
        """Switch degradation on now (default: the configured one) and cancel any schedule."""
        chosen = degradation or self.config.degradation
        with self._lock:
            self._active, self._degrade_deadline = chosen, None
        return chosen

    def recover(self) -> None:
        """Switch degradation off and cancel any schedule."""
        with self._lock:
            self._active, self._degrade_deadline = None, None

    def next_occurrence(self, digest: str) -> int:
        """How many identical requests came before this one (counters reset past a large bound)."""
        with self._lock:
            if len(self._occurrences) >= _MAX_TRACKED_DIGESTS and digest not in self._occurrences:
                self._occurrences.clear()
            n = self._occurrences.get(digest, 0)
            self._occurrences[digest] = n + 1
            return n

    def log_request(self, endpoint: str, model: str, outcome: str, degraded: bool) -> None:
        """Remember one request: when, which endpoint and model, its planned outcome, whether degraded."""
        entry = {"time": time.time(), "endpoint": endpoint, "model": model, "outcome": outcome, "degraded": degraded}
        with self._lock:
            self._requests.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        """The most recent requests (at most 10,000), oldest first."""
        with self._lock:
            return list(self._requests)

    def count(self, outcome: str) -> None:
        """Count one request outcome (`ok`, `rate_limit`, `server_error`, `invalid`)."""
        with self._lock:
            self._outcomes[outcome] += 1

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready view for `GET /admin/state`."""
        active = self.active_degradation()
        with self._lock:
            deadline = self._degrade_deadline
            return {
                "degraded": active is not None,
                "degradation": dataclasses.asdict(active) if active is not None else None,
                "degrade_in_s": None if deadline is None else max(0.0, deadline - self._clock()),
                "uptime_s": self._clock() - self._started_at,
                "requests": dict(self._outcomes),
                "seed": self.config.seed,
            }
