"""Grafana's webhook contact point into the breakers: a Grafana 11 notification (firing, then resolved, two
alerts grouped, one labelled with a breaker scope) opens and closes the scope; wrong signatures and tokens are
refused and store nothing.

The payload is Grafana's documented webhook body (`tests/fixtures/grafana/webhook-firing.json`); it is signed
here the way `grafana/alerting` `http/hmac.go` signs (no Grafana server can run here).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmrel.receiver.server import Receiver

from .conftest import api, state_of, wait_until

PAYLOAD = Path(__file__).resolve().parents[1] / "fixtures" / "grafana" / "webhook-firing.json"
TOKEN, SECRET = "ingest-token", "grafana-hmac-secret"
HEADER = "X-Grafana-Alerting-Signature"


def firing() -> dict[str, Any]:
    return json.loads(PAYLOAD.read_text())


def resolved() -> dict[str, Any]:
    doc = copy.deepcopy(firing())
    doc["status"], doc["state"] = "resolved", "ok"
    doc["title"] = doc["title"].replace("FIRING", "RESOLVED")
    for alert in doc["alerts"]:
        alert["status"], alert["endsAt"] = "resolved", "2026-11-30T10:05:03.157076+01:00"
    return doc


def grafana_signature(secret: str, body: bytes, timestamp: str | None = None) -> str:
    """What Grafana's HMACRoundTripper puts in the signature header."""
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    if timestamp is not None:
        mac.update(timestamp.encode() + b":")
    mac.update(body)
    return mac.hexdigest()


def post(receiver: Receiver, doc: dict[str, Any] | bytes, *, token: str | None = TOKEN, secret: str | None = SECRET,
         extra: dict[str, str] | None = None) -> httpx.Response:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    headers = {"content-type": "application/json", "user-agent": "Grafana"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if secret:
        headers[HEADER] = grafana_signature(secret, body)
    headers.update(extra or {})
    return httpx.post(f"{api(receiver)}/alerts/grafana", content=body, headers=headers, timeout=10)


@pytest.fixture
def receiver(make_receiver: Callable[..., Receiver]) -> Receiver:
    return make_receiver(auth_token=TOKEN, grafana_webhook_secret=SECRET, breaker_tick_s=0.1, breaker_min_open_s=0.5,
                         breaker_probe_window_s=1.0, breaker_close_after=1, analyzers_enabled=False)


def signals(query: Callable[[str], list[tuple]]) -> int:
    return query("SELECT uniqExact(SignalId) FROM llm_breaker_signals")[0][0]


def test_firing_opens_the_labelled_scope_and_resolved_closes_it(receiver: Receiver, query) -> None:
    response = post(receiver, firing())
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "scopes": ["checkout/chat"],
                               "ignored": ["LLM error rate: no llmrel_breaker label"]}
    view = wait_until("open", lambda: (v := state_of(receiver, "checkout/chat", TOKEN)) and v["state"] == "open"
                      and v)
    assert view["why"]["cause"] == "alert" and view["why"]["alert_fingerprint"] == "5ab24e0b4a1f3c27"
    assert view["why"]["actor"] == "grafana" and "23.4%" in view["why"]["reason"]
    # A repeated notification of the same episode (repeat_interval, HA peers) is one signal.
    assert post(receiver, firing()).status_code == 200
    time.sleep(0.8)
    assert state_of(receiver, "checkout/chat", TOKEN)["state"] == "open"  # still firing: no probing
    assert post(receiver, resolved()).status_code == 200
    wait_until("closed", lambda: state_of(receiver, "checkout/chat", TOKEN)["state"] == "closed")
    steps = query("SELECT FromState, ToState, Cause, AlertFingerprint != '' FROM llm_breaker_events FINAL "
                  "WHERE Scope = 'checkout/chat' ORDER BY Seq")
    assert steps == [("closed", "open", "alert", True), ("open", "half_open", "min_open", False),
                     ("half_open", "closed", "probe_healthy", False)]
    assert signals(query) == 2


@pytest.mark.parametrize(("case", "kwargs"), [
    ("no token", {"token": None}),
    ("wrong token", {"token": "guess"}),
    ("no signature", {"secret": None}),
    ("wrong secret", {"secret": "other-secret"}),
])
def test_wrong_token_or_signature_is_refused_and_nothing_stored(receiver: Receiver, query, case: str,
                                                                 kwargs: dict[str, Any]) -> None:
    response = post(receiver, firing(), **kwargs)
    assert response.status_code == 401, case
    assert signals(query) == 0
    assert state_of(receiver, "checkout/chat", TOKEN) is None


def test_a_body_changed_after_signing_is_refused(receiver: Receiver, query) -> None:
    body = json.dumps(firing()).encode()
    signature = grafana_signature(SECRET, body)
    tampered = body.replace(b"checkout/chat", b"checkout/pay")
    response = httpx.post(f"{api(receiver)}/alerts/grafana", content=tampered, timeout=10, headers={
        "authorization": f"Bearer {TOKEN}", HEADER: signature, "content-type": "application/json"})
    assert response.status_code == 401 and signals(query) == 0


@pytest.mark.parametrize(("body", "status"), [
    (b"{not json", 400), (b'{"alerts": "x"}', 400), (b'{"alerts": [{"status": "pending"}]}', 400),
    (b"x" * (1 << 20 + 1), 413)])
def test_malformed_payloads_get_a_clear_error(receiver: Receiver, query, body: bytes, status: int) -> None:
    response = post(receiver, body)
    assert response.status_code == status and response.json()["detail"]
    assert signals(query) == 0


def test_signed_timestamp_must_be_recent(make_receiver: Callable[..., Receiver], query) -> None:
    receiver = make_receiver(grafana_webhook_secret=SECRET, grafana_webhook_timestamp_header="X-Grafana-Timestamp",
                             analyzers_enabled=False)
    body = json.dumps(firing()).encode()
    for stamp, status in ((str(int(time.time()) - 3600), 401), (str(int(time.time())), 200)):
        response = httpx.post(f"{api(receiver)}/alerts/grafana", content=body, timeout=10, headers={
            "content-type": "application/json", "X-Grafana-Timestamp": stamp,
            HEADER: grafana_signature(SECRET, body, stamp)})
        assert response.status_code == status, response.text
    assert signals(query) == 1
