"""`Lease`: which receiver leads the breakers, agreed through ClickHouse (which has no compare-and-set).

Rows of `llm_breaker_leases` are claims and renewals of numbered terms. A term's leader is the
holder first by name among the claims made within `claim_window_s` of the term's earliest claim;
a claimant decides only after that window (plus a margin) has passed since its own claim, so
every receiver that looks sees the same set of valid claims and the same leader. The leader renews
every third of the lease; when the winner's lease has expired, anyone may claim the next term.
A leader that cannot renew stops leading when its lease runs out by its own clock, a margin
before anyone else may claim, so two leaders do not act at once while clocks agree within that
margin. (Transitions are also keyed per scope and step, so even then a step is recorded once.)

The leader's input cursors (signals and findings applied up to) travel with its renewals, so the
next leader continues where it stopped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from clickhouse_connect.driver.client import Client

log = structlog.get_logger(__name__)

LEASES_TABLE = "llm_breaker_leases"
LEASE_NAME = "breakers"
_COLUMNS = ("Name", "Term", "Holder", "ClaimedAt", "RenewedAt", "ExpiresAt", "SignalCursor", "FindingCursor")
_MS = 1_000_000


@dataclass(frozen=True, slots=True)
class Cursors:
    """Inputs applied up to these times (ns)."""

    signals_ns: int = 0
    findings_ns: int = 0


@dataclass(frozen=True, slots=True)
class _Claim:
    holder: str
    claimed_ns: int
    expires_ns: int
    cursors: Cursors


class Lease:
    """Leader election for one holder. Call `hold()` from one thread, once per controller tick."""

    def __init__(self, client: Client, holder: str | None = None, lease_s: float = 30.0,
                 claim_window_s: float = 1.0, margin_s: float = 0.25,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.client = client
        self.holder = holder or uuid.uuid4().hex[:12]
        self.lease_ns = int(lease_s * 1e9)
        self.claim_window_ns = int(claim_window_s * 1e9)
        self.margin_ns = int(margin_s * 1e9)
        self.clock = clock
        self.term = 0  # the term this holder leads, 0 when not leading
        self.leader = ""  # who leads, as last seen
        self.inherited = Cursors()  # cursors of the previous leader, set when this holder takes over
        self._claimed_ns = 0
        self._valid_until = 0
        self._renew_at = 0
        self._pending: tuple[int, int] | None = None  # (term, claimed_ns) of a claim awaiting its window
        self._leader_until = 0  # when the lease of the leader seen last runs out (followers)

    @property
    def is_leader(self) -> bool:
        return self.term > 0

    def next_due_ns(self) -> int | None:
        """When `hold()` next has something to do: renew the lead, settle a claim, or claim a lapsed lead."""
        if self.term:
            return min(self._renew_at, self._valid_until)
        if self._pending is not None:
            return self._pending[1] + self.claim_window_ns + self.margin_ns
        return self._leader_until or None

    def hold(self, cursors: Cursors) -> bool:
        """Keep, take or follow the lead; True when this holder leads now. Storage errors propagate."""
        now = self.clock()
        if self.term:
            if now >= self._valid_until:
                log.warning("breaker_leadership_lost", holder=self.holder, term=self.term)
                self.term = 0
            else:
                if now >= self._renew_at:
                    try:
                        self._write(self.term, self._claimed_ns, now, cursors)
                    except Exception:  # lead on until the lease runs out; try again shortly
                        log.warning("breaker_lease_renewal_failed", holder=self.holder, term=self.term, exc_info=True)
                        self._renew_at = now + 1_000_000_000
                        return True
                    self._valid_until = now + self.lease_ns - self.margin_ns
                    self._renew_at = now + self.lease_ns // 3
                return True
        if self._pending is not None:
            return self._settle(now, cursors)
        term, claims = self._current()
        winner = _winner(claims, self.claim_window_ns)
        if winner is not None and now < winner.expires_ns:
            self.leader, self._leader_until = winner.holder, winner.expires_ns
            return False
        self.inherited = winner.cursors if winner is not None else Cursors()
        self._write(term + 1, now, now, self.inherited)
        self._pending = (term + 1, now)
        return False

    def _settle(self, now: int, cursors: Cursors) -> bool:
        term, claimed = self._pending  # type: ignore[misc]
        if now < claimed + self.claim_window_ns + self.margin_ns:
            return False
        self._pending = None
        current, claims = self._current()
        winner = _winner(claims, self.claim_window_ns) if current == term else None
        if winner is None or winner.holder != self.holder:
            self.leader = winner.holder if winner is not None else ""
            return False
        self.term, self._claimed_ns, self.leader = term, claimed, self.holder
        self._write(term, claimed, now, self.inherited)
        self._valid_until = now + self.lease_ns - self.margin_ns
        self._renew_at = now + self.lease_ns // 3
        log.info("breaker_leadership_taken", holder=self.holder, term=term)
        return True

    def release(self, cursors: Cursors) -> None:
        """Give the lead up now (at shutdown), so another receiver takes over without waiting for expiry."""
        if self.term:
            now = self.clock()
            self._write(self.term, self._claimed_ns, now, cursors, expires_ns=now)
            self.term = 0

    def _write(self, term: int, claimed_ns: int, now: int, cursors: Cursors, expires_ns: int | None = None) -> None:
        expires = now + self.lease_ns if expires_ns is None else expires_ns
        self.client.insert(LEASES_TABLE, [(LEASE_NAME, term, self.holder, claimed_ns // _MS, now // _MS,
                                           expires // _MS, cursors.signals_ns // _MS, cursors.findings_ns // _MS)],
                           column_names=list(_COLUMNS))

    def _current(self) -> tuple[int, list[_Claim]]:
        """The highest term and its claims (each holder's latest renewal)."""
        rows = self.client.query(
            "SELECT Term, Holder, min(toUnixTimestamp64Milli(ClaimedAt)), "
            "argMax(toUnixTimestamp64Milli(ExpiresAt), RenewedAt), argMax(toUnixTimestamp64Milli(SignalCursor), "
            "RenewedAt), argMax(toUnixTimestamp64Milli(FindingCursor), RenewedAt) "
            f"FROM {LEASES_TABLE} WHERE Name = {{name:String}} "
            f"AND Term = (SELECT max(Term) FROM {LEASES_TABLE} WHERE Name = {{name:String}}) "
            "GROUP BY Term, Holder", parameters={"name": LEASE_NAME}).result_rows
        if not rows:
            return 0, []
        claims = [_Claim(str(holder), int(claimed) * _MS, int(expires) * _MS,
                         Cursors(int(signals) * _MS, int(findings) * _MS))
                  for _, holder, claimed, expires, signals, findings in rows]
        return int(rows[0][0]), claims


def _winner(claims: list[_Claim], window_ns: int) -> _Claim | None:
    """The first holder by name among the claims made within the window of the earliest one."""
    if not claims:
        return None
    earliest = min(c.claimed_ns for c in claims)
    valid = [c for c in claims if c.claimed_ns <= earliest + window_ns]
    return min(valid, key=lambda c: c.holder)
