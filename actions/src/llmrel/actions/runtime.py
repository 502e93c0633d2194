"""`Actions`: the action layer as `llmrel serve` runs it, built from `Settings` (wiring only).

The receiver creates one, includes `router(auth)` in its HTTP app, hands every analyzed batch's
findings to `observe`, and calls `close()` on shutdown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from clickhouse_connect.driver.client import Client
from fastapi import APIRouter, Request
from prometheus_client import CollectorRegistry, Counter, Gauge

from llmrel.actions.api import ActionsApi, build_actions_router
from llmrel.actions.board import Board
from llmrel.actions.breakers import BreakerSet, policy_lookup
from llmrel.actions.controller import BreakerController
from llmrel.actions.lease import Lease
from llmrel.actions.machine import BreakerPolicy, Transition
from llmrel.actions.webhooks import WebhookSender
from llmrel.config import Settings


def policy_from_settings(settings: Settings) -> BreakerPolicy:
    return BreakerPolicy(
        min_open_s=settings.breaker_min_open_s, half_open_fraction=settings.breaker_half_open_fraction,
        close_after=settings.breaker_close_after, probe_window_s=settings.breaker_probe_window_s,
        min_probe_calls=settings.breaker_min_probe_calls,
        probe_max_failure_rate=settings.breaker_probe_max_failure_rate)


class _TransitionMetrics:
    """Prometheus counts of transitions (`llmrel_breaker_transitions_total`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.transitions = Counter("llmrel_breaker_transitions", "Breaker transitions recorded by this receiver",
                                   ["to_state", "cause"], registry=registry)

    def send(self, transitions: Sequence[Transition], /) -> None:
        for t in transitions:
            self.transitions.labels(t.to_state.value, t.cause).inc()


class Actions:
    """Breaker controller + board + webhooks + API of one receiver."""

    def __init__(self, settings: Settings, client_factory: Callable[[], Client],
                 registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self._api_client = client_factory()
        self.board: Board | None = None
        self.controller: BreakerController | None = None
        self.webhooks: WebhookSender | None = None
        self._controller_client: Client | None = None
        if settings.breakers_enabled:
            self._controller_client = client_factory()
            self.board = Board()
            sinks: list[Any] = []
            if settings.breaker_webhook_urls:
                secret = settings.breaker_webhook_secret.get_secret_value() if settings.breaker_webhook_secret else None
                self.webhooks = WebhookSender(settings.breaker_webhook_urls, secret)
                sinks.append(self.webhooks)
            if registry is not None:
                sinks.append(_TransitionMetrics(registry))
                self._leader = Gauge("llmrel_breaker_leader", "1 while this receiver leads the breakers",
                                     registry=registry)
                self._leader.set_function(lambda: float(self.controller is not None and self.controller.leading))
            self.controller = BreakerController(
                self._controller_client, BreakerSet(policy_lookup(policy_from_settings(settings),
                                                                  settings.breaker_dry_run)),
                self.board, Lease(self._controller_client, lease_s=settings.breaker_lease_s),
                poll_s=settings.breaker_tick_s, sinks=sinks)

    def start(self) -> Actions:
        """Load the recorded state (one step, so the API answers with it at once), then run the loop."""
        if self.controller is not None:
            self.controller.step()
            self.controller.start()
        return self

    def observe(self, findings: Sequence[Any]) -> None:
        if self.controller is not None:
            self.controller.observe(findings)

    def router(self, auth: Callable[[Request], bool]) -> APIRouter:
        api = ActionsApi(self.settings, self.board, self._api_client,
                         self.controller.notify if self.controller is not None else lambda: None,
                         self._controller_info)
        return build_actions_router(api, auth)

    def _controller_info(self) -> dict[str, Any]:
        c = self.controller
        if c is None:
            return {"enabled": False}
        return {"enabled": True, "role": "leader" if c.leading else "follower", "holder": c.lease.holder,
                "leader": c.lease.leader, "term": c.lease.term or None}

    def close(self) -> None:
        if self.controller is not None:
            self.controller.stop()
        if self.webhooks is not None:
            self.webhooks.close()
        for client in (self._controller_client, self._api_client):
            if client is not None:
                client.close()
