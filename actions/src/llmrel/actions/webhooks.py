"""Outgoing webhooks: one signed JSON POST per breaker transition, to each configured URL.

Body (`application/json`):

    {"type": "llmrel.breaker.transition", "id": "support-bot/chat#3", "scope": "support-bot/chat",
     "service": "support-bot", "from": "closed", "to": "open", "cause": "findings", "reason": "...",
     "at": "2026-05-01T10:00:00.000Z", "since": "...", "finding_ids": [...], "alert_fingerprint": null,
     "actor": "llmrel", "dry_run": false, "override": null}

With a secret, the request carries `X-Llmrel-Timestamp` (Unix seconds) and `X-Llmrel-Signature`:
lowercase hex HMAC-SHA256 of `<timestamp>:<body>` (Grafana's scheme, so one verifier serves both).
`X-Llmrel-Event-Id` repeats `id` for idempotent receivers. Delivery runs on its own thread with a
bounded queue: a slow or failing endpoint never delays the controller; 5xx, 429 and connection
errors are retried three times with backoff, then the event is dropped and logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx
import structlog

from llmrel.actions.breakers import iso
from llmrel.actions.machine import Transition
from llmrel.breaker_scope import BreakerScope

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Llmrel-Signature"
TIMESTAMP_HEADER = "X-Llmrel-Timestamp"
EVENT_ID_HEADER = "X-Llmrel-Event-Id"
_MAX_QUEUE = 1000
_ATTEMPTS = 3


def transition_payload(t: Transition) -> dict[str, Any]:
    return {"type": "llmrel.breaker.transition", "id": f"{t.scope}#{t.seq}", "scope": t.scope,
            "service": BreakerScope.parse(t.scope).service, "from": t.from_state.value, "to": t.to_state.value,
            "cause": t.cause, "reason": t.reason, "at": iso(t.at_ns), "since": iso(t.since_ns),
            "finding_ids": list(t.finding_ids), "alert_fingerprint": t.alert_fingerprint or None, "actor": t.actor,
            "dry_run": t.dry_run, "override": t.override or None}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of `timestamp:body`."""
    return hmac.new(secret.encode(), timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()


class WebhookSender:
    """Delivers transitions to `urls` in the background. `send` never blocks or raises."""

    def __init__(self, urls: Sequence[str], secret: str | None = None, timeout_s: float = 5.0,
                 backoff_s: float = 1.0) -> None:
        self.urls = tuple(urls)
        self.secret = secret
        self.backoff_s = backoff_s
        self.delivered = 0
        self.dropped = 0
        self._client = httpx.Client(timeout=timeout_s)
        self._queue: queue.Queue[Transition | None] = queue.Queue(_MAX_QUEUE)
        self._thread = threading.Thread(target=self._run, name="llmrel-webhooks", daemon=True)
        self._thread.start()

    def send(self, transitions: Sequence[Transition]) -> None:
        for t in transitions:
            try:
                self._queue.put_nowait(t)
            except queue.Full:
                self.dropped += 1
                log.error("breaker_webhook_queue_full", scope=t.scope, seq=t.seq)

    def close(self, timeout_s: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout_s)
        self._client.close()

    def _run(self) -> None:
        while (t := self._queue.get()) is not None:
            body = json.dumps(transition_payload(t), separators=(",", ":")).encode()
            for url in self.urls:
                self._deliver(url, body, f"{t.scope}#{t.seq}")

    def _deliver(self, url: str, body: bytes, event_id: str) -> None:
        for attempt in range(_ATTEMPTS):
            headers = {"Content-Type": "application/json", EVENT_ID_HEADER: event_id}
            if self.secret:
                timestamp = str(int(time.time()))
                headers[TIMESTAMP_HEADER] = timestamp
                headers[SIGNATURE_HEADER] = sign(self.secret, timestamp, body)
            try:
                response = self._client.post(url, content=body, headers=headers)
                if response.status_code < 300:
                    self.delivered += 1
                    return
                retry = response.status_code >= 500 or response.status_code == 429
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                retry, problem = True, f"{type(exc).__name__}: {exc}"
            if not retry or attempt == _ATTEMPTS - 1:
                self.dropped += 1
                log.error("breaker_webhook_failed", url=url, event_id=event_id, problem=problem)
                return
            time.sleep(self.backoff_s * 2**attempt)
