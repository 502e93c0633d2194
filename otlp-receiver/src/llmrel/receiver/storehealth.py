"""Whether the store can take writes now: free disk space above the reserve, recent commits succeeding.

`DiskGuard` watches the embedded store's volume (a `statvfs`, microseconds): before every commit,
and in the background every few seconds while space is plentiful, several times a second near the
reserve and while an incident lasts (so idle serve rarely wakes for it). Below the reserve it
refuses commits before they reach the engine (senders get a retryable status) and pauses the
engine's background merges, so a full disk does not meet a half-written part. A merge caught by a
full disk can still commit a part whose files are empty; so after every disk incident (space below
the reserve, or the engine itself reporting no space) the guard checks the parts written since,
and reloads a table with a broken part, which sets the part aside and brings back the parts it
replaced (kept on disk for `old_parts_lifetime`, see `schemas/005_durability.sql`). Only then do
merges resume and commits proceed. `StoreHealth` adds the writer's latest outcome for `/readyz`.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog
from clickhouse_connect.driver.client import Client

from llmrel.receiver.metrics import ReceiverMetrics

log = structlog.get_logger(__name__)

_MIB = 1024 * 1024
_CHECK_INTERVAL_S = 0.2  # near the reserve and during an incident
_RELAXED_INTERVAL_S = 5.0  # while free space is at least _RELAXED_FACTOR times the resume level
_RELAXED_FACTOR = 2
_MIN_RESUME_MARGIN = 16 * _MIB
_FAILING_FOR_S = 10.0  # a commit failure this recent (with no success since) makes the store not ready
_INCIDENT_LOOKBACK_S = 60  # parts committed this long before an incident are verified too
_NO_SPACE_MARKERS = ("NOT_ENOUGH_SPACE", "No space left on device", "ENOSPC")


class StoreUnavailable(RuntimeError):
    """The store cannot take writes right now (retryable)."""


class DiskGuard:
    """Free-space reserve on the embedded store's volume, and recovery after a disk incident.

    Args:
        path: the store's directory.
        reserve_bytes: below this much free space, writes are refused and merges paused (0: only when the
            engine itself reports no space).
        client: a client of its own, used only by the guard (merges on/off, part checks, reloads).
        free_bytes: how free space is measured (default `shutil.disk_usage`).
        interval_s: background check interval near the reserve and during an incident.
        relaxed_interval_s: background check interval while space is plentiful.
    """

    def __init__(self, path: Path, reserve_bytes: int, client: Client, metrics: ReceiverMetrics, *,
                 free_bytes: Callable[[Path], int] | None = None, interval_s: float = _CHECK_INTERVAL_S,
                 relaxed_interval_s: float = _RELAXED_INTERVAL_S) -> None:
        self._path = path
        self._reserve = reserve_bytes
        self._resume_at = reserve_bytes + max(reserve_bytes // 4, _MIN_RESUME_MARGIN)
        self._client = client
        self._metrics = metrics
        self._free_bytes = free_bytes or (lambda p: shutil.disk_usage(p).free)
        self._interval_s = interval_s
        self._relaxed_interval_s = max(interval_s, relaxed_interval_s)
        self._plentiful = False  # the last measurement was far above the reserve
        self._low = False
        self._incident_since: float | None = None  # wall-clock start of an incident not yet verified
        self._stop = threading.Event()
        self._wake = threading.Event()  # an incident began outside the guard thread: check often from now
        self._lock = threading.Lock()
        self.check()
        self._thread = threading.Thread(target=self._run, name="llmrel-diskguard", daemon=True)
        self._thread.start()

    @property
    def low(self) -> bool:
        """True from the moment space falls below the reserve until it is back and the store verified."""
        return self._low

    def reason(self) -> str:
        return (f"free disk space on the store's volume is below the reserve of {self._reserve // _MIB} MiB "
                "(LLMREL_MIN_FREE_DISK_MIB)")

    def note_failure(self, error: BaseException) -> None:
        """A commit failed; if the engine ran out of space, treat it as an incident like a low reserve."""
        if any(marker in str(error) for marker in _NO_SPACE_MARKERS):
            with self._lock:
                self._enter_low(None)

    def writable(self) -> bool:
        """For the writer, before each commit: False while low (measures now, so a fast fill is seen)."""
        if self._low:
            return False
        with self._lock:
            if not self._low and (free := self._measure()) is not None and free < self._reserve:
                self._enter_low(free)
            return not self._low

    def check(self) -> None:
        """The guard thread's round: enter low, or after an incident verify the store and resume."""
        with self._lock:
            free = self._measure()
            if free is None:
                return
            if not self._low and free < self._reserve:
                self._enter_low(free)
            elif self._low and free >= self._resume_at:
                self._recover()

    def _measure(self) -> int | None:
        try:
            free = self._free_bytes(self._path)
        except OSError:
            log.exception("disk_space_unreadable", path=str(self._path))
            return None
        self._metrics.store_free_bytes.set(free)
        self._plentiful = free >= _RELAXED_FACTOR * self._resume_at
        return free

    def _enter_low(self, free: int | None) -> None:
        if self._incident_since is None:
            self._incident_since = time.time()
        if self._low:
            return
        self._low = True
        self._wake.set()
        self._metrics.store_disk_low.set(1)
        log.error("disk_space_low", free_mib=None if free is None else free // _MIB,
                  reserve_mib=self._reserve // _MIB, action="refusing writes and pausing merges")
        self._command("SYSTEM STOP MERGES")

    def _recover(self) -> None:
        """Space is back: verify the parts written since the incident began, then resume merges and writes."""
        try:
            reloaded = verify_recent_parts(self._client, self._incident_since or 0.0)
        except Exception:
            log.exception("store_verify_failed")
            return  # writes stay refused; tried again at the next check
        for table in reloaded:
            self._metrics.store_tables_reloaded.inc()
            log.error("store_broken_part_recovered", table=table,
                      action="reloaded the table: the broken part is set aside, the parts it replaced are back")
        self._incident_since = None
        self._low = False
        self._metrics.store_disk_low.set(0)
        log.info("disk_space_recovered", reserve_mib=self._reserve // _MIB)
        self._command("SYSTEM START MERGES")

    def _command(self, sql: str) -> None:
        try:
            self._client.command(sql)
        except Exception:
            log.exception("store_command_failed", sql=sql)

    def _run(self) -> None:
        while not self._stop.is_set():
            relaxed = self._plentiful and not self._low
            self._wake.wait(self._relaxed_interval_s if relaxed else self._interval_s)
            self._wake.clear()
            if not self._stop.is_set():
                self.check()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(5)
        if self._low:
            self._command("SYSTEM START MERGES")
        self._client.close()


def verify_recent_parts(client: Client, since: float) -> list[str]:
    """Check every active part committed since `since` (minus a margin); reload each table with a broken one.

    Returns:
        The tables that were reloaded.
    """
    parts = client.query(
        "SELECT table, name FROM system.parts WHERE database = currentDatabase() AND active "
        "AND modification_time >= toDateTime({since:Int64}) ORDER BY table, name",
        parameters={"since": int(since) - _INCIDENT_LOOKBACK_S}).result_rows
    broken: dict[str, list[str]] = {}
    for table, name in parts:
        rows = client.query(f"CHECK TABLE `{table}` PART '{name}'",
                            settings={"check_query_single_value_result": 0}).result_rows
        if any(str(row[1]) == "0" for row in rows):
            broken.setdefault(table, []).append(name)
    for table, names in broken.items():
        log.error("store_broken_parts", table=table, parts=names)
        client.command(f"DETACH TABLE `{table}`")
        client.command(f"ATTACH TABLE `{table}`")
    return list(broken)


class StoreHealth:
    """Readiness of the store for writes: the disk guard (embedded stores) and the latest commits."""

    def __init__(self, guard: DiskGuard | None = None) -> None:
        self.guard = guard
        self._failed_at: float | None = None
        self._failure = ""

    def before_commit(self) -> None:
        """Raise `StoreUnavailable` when a commit must not be attempted now."""
        if self.guard is not None and not self.guard.writable():
            raise StoreUnavailable(self.guard.reason())

    def committed(self) -> None:
        self._failed_at = None

    def failed(self, error: BaseException) -> None:
        self._failed_at = time.monotonic()
        self._failure = str(error)[:300]
        if self.guard is not None:
            self.guard.note_failure(error)

    def problem(self) -> str | None:
        """Why the store cannot take writes now, or None when it can."""
        if self.guard is not None and self.guard.low:
            return self.guard.reason()
        if self._failed_at is not None and time.monotonic() - self._failed_at < _FAILING_FOR_S:
            return f"the last commit failed: {self._failure}"
        return None

    def close(self) -> None:
        if self.guard is not None:
            self.guard.close()
