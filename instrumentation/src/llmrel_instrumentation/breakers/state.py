"""The breaker state an app holds locally, and the per-call decision (pure; no I/O, no locks).

`GuardState` is an immutable snapshot of the app's service's breakers, replaced whole by the
follower thread; the hot path reads one attribute and, only while some breaker of the service
is not closed, looks the call up (cached per operation, model and feature).

Scopes are `SERVICE[/OPERATION[/MODEL[/FEATURE]]]` with `*` (or a missing segment) matching
anything and percent-encoded segments: the syntax of `llmrel.breaker_scope`, parsed here again
because this package must not depend on the server.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

ANY = "*"
_MAX_CACHED = 4096
_SEVERITY = {"open": 2, "half_open": 1}


class Decision(enum.StrEnum):
    PASS = "pass"  # no breaker concerns the call (never recorded)
    PROBE = "probe"  # half-open: this call goes to the primary path to test it
    FALLBACK = "fallback"  # sent to the fallback model
    CALLBACK = "callback"  # answered by the app's handler
    BLOCKED = "blocked"  # BreakerOpen raised
    OBSERVE = "observe"  # observe mode: recorded, unchanged
    DRY_RUN = "dry_run"  # the breaker is in dry run: recorded, unchanged


@dataclass(frozen=True, slots=True)
class BreakerEntry:
    """One non-closed breaker of the service."""

    scope: str
    segments: tuple[str, str, str]  # operation, model, feature (ANY = any)
    state: str  # open | half_open
    enforced: bool  # False in dry run
    half_open_fraction: float
    reason: str

    def matches(self, operation: str, model: str, feature: str) -> bool:
        op, mdl, feat = self.segments
        return op in (ANY, operation) and mdl in (ANY, model) and feat in (ANY, feature)

    @property
    def specificity(self) -> int:
        return sum(s != ANY for s in self.segments)


def parse_entry(view: Mapping[str, Any], service: str) -> BreakerEntry | None:
    """A breaker view of `GET /api/v1/breakers` as an entry; None when closed, malformed or for another service."""
    try:
        scope, state = str(view["scope"]), str(view["state"])
        parts = [unquote(p) for p in scope.split("/")]
        if state not in _SEVERITY or parts[0] != service or not 1 <= len(parts) <= 4:
            return None
        parts += [ANY] * (4 - len(parts))
        fraction = min(max(float(view.get("half_open_fraction", 0.0)), 0.0), 1.0)
        reason = str((view.get("why") or {}).get("reason", ""))
        return BreakerEntry(scope, (parts[1], parts[2], parts[3]), state, bool(view.get("enforced", True)),
                            fraction, reason)
    except (KeyError, TypeError, ValueError):
        return None


@dataclass
class GuardState:
    """The service's non-closed breakers. Replace, never mutate, once published (the cache aside)."""

    entries: tuple[BreakerEntry, ...] = ()
    uses_feature: bool = False
    _cache: dict[tuple[str, str, str], BreakerEntry | None] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, entries: Iterable[BreakerEntry]) -> GuardState:
        items = tuple(sorted(entries, key=lambda e: e.scope))
        return cls(items, any(e.segments[2] != ANY for e in items))

    def lookup(self, operation: str, model: str, feature: str) -> BreakerEntry | None:
        """The breaker governing a call: the most severe matching one, then the most specific."""
        key = (operation, model, feature)
        cache = self._cache
        if key in cache:
            return cache[key]
        found = [e for e in self.entries if e.matches(operation, model, feature)]
        entry = max(found, key=lambda e: (_SEVERITY[e.state], e.specificity)) if found else None
        if len(cache) >= _MAX_CACHED:
            cache.clear()
        cache[key] = entry
        return entry


def decide(entry: BreakerEntry, enforce: bool, draw: float, has_handler: bool, has_fallback: bool) -> Decision:
    """What to do with one call governed by `entry`.

    Args:
        entry: the breaker (open or half-open).
        enforce: the guard runs in enforce mode.
        draw: a uniform random number in [0, 1) for the half-open fraction.
        has_handler: the app registered a handler for diverted calls.
        has_fallback: the requested model has a fallback model.
    """
    if not entry.enforced:
        return Decision.DRY_RUN
    if not enforce:
        return Decision.OBSERVE
    if entry.state == "half_open" and draw < entry.half_open_fraction:
        return Decision.PROBE
    if has_handler:
        return Decision.CALLBACK
    return Decision.FALLBACK if has_fallback else Decision.BLOCKED
