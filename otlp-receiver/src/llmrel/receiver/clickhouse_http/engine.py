"""Runs statements on the embedded engine, each on a fresh chDB connection of its own.

A connection carries session state (`USE`, `SET`), so a request's settings and `readonly` never
leak into another's. Calls block: the app runs them in threads, at most `max_concurrent` at once
(more are refused with TOO_MANY_SIMULTANEOUS_QUERIES rather than queued).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import chdb

from llmrel.receiver.clickhouse_http.errors import ClickHouseError, from_engine
from llmrel.receiver.clickhouse_http.policy import Node, parse_ast


@dataclass(frozen=True)
class Result:
    body: bytes
    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    elapsed_ns: int = 0

    def summary(self) -> dict[str, str]:
        return {"read_rows": str(self.read_rows), "read_bytes": str(self.read_bytes),
                "written_rows": str(self.written_rows), "written_bytes": str(self.written_bytes),
                "total_rows_to_read": str(self.read_rows), "result_rows": "0",
                "result_bytes": str(len(self.body)), "elapsed_ns": str(self.elapsed_ns)}


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class Engine:
    """The embedded store at `path`, as the interface uses it."""

    def __init__(self, path: Path, max_concurrent: int) -> None:
        self._path = str(path)
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._max = max_concurrent
        probe = self._connect()
        try:
            info = probe.query("SELECT version(), timezone(), displayName()", "TabSeparated").bytes().decode()
            self.version, self.timezone, self.display_name = info.rstrip("\n").split("\t")
            names = probe.query("SELECT name FROM system.settings", "TabSeparated").bytes().decode()
            self.known_settings = frozenset(names.split())
        finally:
            probe.close()

    def _connect(self) -> chdb.state.sqlitelike.Connection:
        return chdb.connect(self._path)

    def slot(self) -> _Slot:
        """A concurrency slot for one request, or TOO_MANY_SIMULTANEOUS_QUERIES."""
        if not self._slots.acquire(blocking=False):
            raise ClickHouseError(202, f"Too many simultaneous queries. Maximum: {self._max}")
        return _Slot(self._slots)

    def run(self, sql: str, fmt: str, *, database: str, settings: Mapping[str, str], params: Mapping[str, str],
            readonly: bool, check: Callable[[list[Node]], None] | None = None) -> Result:
        """Run one statement with `settings`, then (for readers and writers) `readonly=1`.

        With `check`, the engine's parse of the statement (`EXPLAIN AST`) is passed to it first; it
        raises to refuse the statement.
        """
        started = time.perf_counter_ns()
        conn = self._connect()
        try:
            conn.query(f"USE {quote_identifier(database)}")
            if check is not None:
                check(parse_ast(conn.query(f"EXPLAIN AST {sql}", "TSVRaw", params=dict(params)).bytes().decode()))
            assignments = [f"{quote_identifier(k)} = {quote_string(v)}" for k, v in settings.items()]
            if readonly:
                assignments.append("readonly = 1")
            if assignments:
                conn.query("SET " + ", ".join(assignments))
            result = conn.query(sql, fmt, params=dict(params))
            return Result(result.bytes() or b"", result.rows_read(), result.bytes_read(), result.rows_written(),
                          result.bytes_written(), time.perf_counter_ns() - started)
        except ClickHouseError:
            raise
        except Exception as exc:
            raise from_engine(exc) from None
        finally:
            conn.close()


class _Slot:
    def __init__(self, semaphore: threading.BoundedSemaphore) -> None:
        self._semaphore = semaphore

    def __enter__(self) -> _Slot:
        return self

    def __exit__(self, *exc: object) -> None:
        self._semaphore.release()
