"""`BreakerFollower`: a daemon thread that long-polls llmrel for the breakers of one service.

`GET {api}/api/v1/breakers?service=S&wait=W` with `If-None-Match`: the server answers at once on
a change and `304` after `W` seconds otherwise, so a change reaches the app within a second and an
idle app costs one request per `W` seconds. Requests run with OpenTelemetry instrumentation
suppressed (no spans of our own) on `http.client`. Failures back off up to 10 s.

Reachability is reported through `on_reachable(bool, detail)` only when it changes, so the guard
logs an outage once and its end once.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from opentelemetry.instrumentation.utils import suppress_instrumentation

_MAX_BACKOFF_S = 10.0
_MAX_BODY = 4 << 20


class BreakerFollower:
    """Follows `service`'s breakers at `api_url`; calls `on_views(views)` with each new list."""

    def __init__(self, api_url: str, service: str, token: str | None, poll_s: float,
                 on_views: Callable[[list[dict[str, Any]]], None], on_reachable: Callable[[bool, str], None]) -> None:
        parts = urlsplit(api_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path.rstrip("/")
        self.service = service
        self.poll_s = poll_s
        self._headers = {"Accept": "application/json", "User-Agent": "llmrel-instrumentation"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._on_views = on_views
        self._on_reachable = on_reachable
        self._etag: str | None = None
        self._reachable: bool | None = None
        self._stop = threading.Event()
        self._conn: http.client.HTTPConnection | None = None
        self._thread = threading.Thread(target=self._run, name="llmrel-breakers", daemon=True)

    def start(self) -> BreakerFollower:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 1.0) -> None:
        self._stop.set()
        if self._conn is not None:
            self._conn.close()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with suppress_instrumentation():
                    self._poll()
                backoff = 0.5
            except Exception as exc:  # anything at all: report, back off, try again
                self._close()
                self._set_reachable(False, f"{type(exc).__name__}: {exc}")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)

    def _poll(self) -> None:
        conn = self._conn
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = self._conn = cls(self._host, self._port, timeout=self.poll_s + 10)
        wait = self.poll_s if self._etag else 0
        path = f"{self._base}/api/v1/breakers?service={quote(self.service, safe='')}&wait={wait:g}"
        headers = dict(self._headers)
        if self._etag:
            headers["If-None-Match"] = self._etag
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read(_MAX_BODY + 1)
        if response.status == 304:
            self._set_reachable(True, "")
            return
        if response.status != 200:
            raise ConnectionError(f"HTTP {response.status}: {body[:200].decode(errors='replace')}")
        if len(body) > _MAX_BODY:
            raise ValueError("breaker state larger than 4 MiB")
        views = json.loads(body)["breakers"]
        if not isinstance(views, list):
            raise ValueError("unexpected breaker state document")
        self._on_views(views)
        self._etag = response.getheader("ETag")
        self._set_reachable(True, "")

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._etag = None

    def _set_reachable(self, reachable: bool, detail: str) -> None:
        if reachable != self._reachable:
            self._reachable = reachable
            self._on_reachable(reachable, detail)
