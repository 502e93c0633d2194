"""In-process receivers (real HTTP, gRPC, embedded ClickHouse) for the action-layer tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmrel.config import Settings
from llmrel.receiver.server import Receiver
from tests.otlp_builders import chat_span, request
from tests.receiver.conftest import make_receiver, query  # noqa: F401 - fixtures shared with the receiver tests

ERROR_RULES = """
rules:
  - id: call-error
    kind: no_error
    action: {breaker: "{service}/{operation}", trip_after: 3, within: 60s}
"""
FAST = {"breaker_tick_s": 0.1, "breaker_min_open_s": 30.0, "breaker_probe_window_s": 1.0, "breaker_close_after": 1,
        "breaker_min_probe_calls": 1}


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(ERROR_RULES)
    return path


@pytest.fixture
def fast_settings(settings: Settings, rules_file: Path) -> dict[str, Any]:
    return {**FAST, "rules_file": rules_file}


_span_counter = iter(range(1, 10**9))


def send_calls(receiver: Receiver, n: int, *, service: str = "bot", error: bool = False, model: str = "gpt-4o",
               token: str | None = None, **resource: Any) -> None:
    """POST `n` chat spans (now) to the receiver over OTLP/HTTP, failing ones when `error`."""
    now = time.time_ns()
    spans = [chat_span(next(_span_counter), model=model, error="InternalServerError" if error else None, t0=now)
             for _ in range(n)]
    headers = {"content-type": "application/x-protobuf"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    response = httpx.post(f"http://127.0.0.1:{receiver.http_port}/v1/traces", headers=headers,
                          content=request(spans, service=service, **resource).SerializeToString(), timeout=30)
    assert response.status_code == 200, response.text


def api(receiver: Receiver) -> str:
    return f"http://127.0.0.1:{receiver.http_port}/api/v1"


def state_of(receiver: Receiver, scope: str, token: str | None = None) -> dict[str, Any] | None:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    views = httpx.get(f"{api(receiver)}/breakers", headers=headers, timeout=10).json()["breakers"]
    return next((v for v in views if v["scope"] == scope), None)


def wait_until(what: str, check: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
