"""`Board`: the published breaker state, with ETags and long-poll waiters.

The controller thread publishes; HTTP handlers (on the server's event loop) read and wait.
A waiter is woken on every change and re-checks its own view (a service's scopes), so an app
learns of a change to its service as soon as the controller has made it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
from collections.abc import Iterable
from typing import Any

from llmrel.actions.breakers import BreakerView


class Board:
    """Current views by scope. `publish` is thread-safe; `wait_for_change` runs on an event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._views: dict[str, dict[str, Any]] = {}
        self._version = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.ready = False

    def publish(self, views: Iterable[BreakerView]) -> bool:
        """Replace the views; wake waiters when anything changed. Returns whether it changed."""
        fresh = {v.last.scope: v.to_json() for v in views}
        with self._lock:
            self.ready = True
            if fresh == self._views:
                return False
            self._views = fresh
            self._version += 1
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(_resolve, future)
        return True

    def select(self, service: str | None = None, scope: str | None = None) -> tuple[int, str, list[dict[str, Any]]]:
        """(version, ETag, views) for one service, one scope, or everything; views sorted by scope."""
        with self._lock:
            version = self._version
            views = [v for s, v in sorted(self._views.items())
                     if (service is None or v["service"] == service) and (scope is None or s == scope)]
        return version, etag_of(views), views

    async def wait_for_change(self, version: int, timeout_s: float) -> bool:
        """Wait until the views differ from `version`, at most `timeout_s`. True when they do."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._version != version:
                return True
            self._waiters.append((loop, future))
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._waiters = [(lp, f) for lp, f in self._waiters if f is not future]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def etag_of(views: list[dict[str, Any]]) -> str:
    """A strong ETag of a list of views (same content → same tag on every receiver)."""
    body = json.dumps(views, sort_keys=True, separators=(",", ":")).encode()
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
