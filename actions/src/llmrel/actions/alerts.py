"""Grafana alerting's webhook contact point as a breaker input (`POST /api/v1/alerts/grafana`).

Grafana 11/12 posts one JSON document per notification of an alert group: `status`, `groupKey`,
`alerts[]` each with its own `status` (`firing`/`resolved`), `labels`, `annotations`, `startsAt`,
`fingerprint`. The label `llmrel_breaker` names the scope an alert acts on (alerts without it are
ignored); each alert of a group is taken on its own.

Authentication, when configured: Grafana's HMAC signature (`hmacConfig` of the contact point;
`grafana/alerting` `http/hmac.go`): header `X-Grafana-Alerting-Signature` (configurable) = lowercase
hex HMAC-SHA256(secret, body), or of `<timestamp>:<body>` when a timestamp header is configured,
whose Unix-seconds value must then be recent. The signature is checked on the raw body, before
parsing. The bearer token (`authorization_credentials` of the contact point) is checked by the API.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmrel.actions.signals import Signal, alert_signal
from llmrel.breaker_scope import canonical_scope

SCOPE_LABEL = "llmrel_breaker"
MAX_BODY_BYTES = 1 << 20


class SignatureError(ValueError):
    """The request is not signed by the configured secret (or too old)."""


def verify_signature(body: bytes, headers: Mapping[str, str], secret: str, header: str,
                     timestamp_header: str | None, max_skew_s: int, now_s: float | None = None) -> None:
    """Check Grafana's HMAC signature of `body`.

    Raises:
        SignatureError: missing or wrong signature, missing or stale timestamp.
    """
    given = headers.get(header.lower(), "").strip().lower()
    if not given:
        raise SignatureError(f"missing {header} header")
    message = body
    if timestamp_header:
        stamp = headers.get(timestamp_header.lower(), "").strip()
        if not stamp.isdigit():
            raise SignatureError(f"missing or invalid {timestamp_header} header")
        now = time.time() if now_s is None else now_s
        if abs(now - int(stamp)) > max_skew_s:
            raise SignatureError(f"{timestamp_header} is more than {max_skew_s}s away from now")
        message = stamp.encode() + b":" + body
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise SignatureError("signature does not match the body")


@dataclass(frozen=True, slots=True)
class AlertNotice:
    """One alert of a notification that names a breaker scope."""

    scope: str
    fingerprint: str
    firing: bool
    starts_at: str
    summary: str


@dataclass(frozen=True, slots=True)
class ParsedNotification:
    notices: list[AlertNotice]
    ignored: list[str]  # why alerts were not taken (no scope label, invalid scope)
    group_key: str


def parse_notification(body: bytes) -> ParsedNotification:
    """Read a webhook notification.

    Raises:
        ValueError: not JSON, or not shaped like Grafana's webhook payload.
    """
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("alerts"), list):
        raise ValueError("expected Grafana's webhook payload: an object with an 'alerts' array")
    notices, ignored = [], []
    for index, alert in enumerate(doc["alerts"]):
        if not isinstance(alert, dict) or alert.get("status") not in ("firing", "resolved"):
            raise ValueError(f"alerts[{index}]: expected an object with status firing or resolved")
        labels = alert.get("labels") or {}
        annotations = alert.get("annotations") or {}
        if not isinstance(labels, dict) or not isinstance(annotations, dict):
            raise ValueError(f"alerts[{index}]: labels and annotations must be objects")
        name = str(labels.get("alertname", f"alerts[{index}]"))
        raw_scope = labels.get(SCOPE_LABEL)
        if not raw_scope:
            ignored.append(f"{name}: no {SCOPE_LABEL} label")
            continue
        try:
            scope = canonical_scope(str(raw_scope))
        except ValueError as exc:
            ignored.append(f"{name}: {exc}")
            continue
        fingerprint = str(alert.get("fingerprint") or _label_fingerprint(labels))
        summary = str(annotations.get("summary") or name)[:500]
        notices.append(AlertNotice(scope, fingerprint, alert["status"] == "firing", str(alert.get("startsAt", "")),
                                   summary))
    return ParsedNotification(notices, ignored, str(doc.get("groupKey", "")))


def _label_fingerprint(labels: dict[str, Any]) -> str:
    text = "\x1f".join(f"{k}={labels[k]}" for k in sorted(labels))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def notification_signals(parsed: ParsedNotification, received_ns: int) -> list[Signal]:
    return [alert_signal(n.scope, n.fingerprint, n.firing, n.starts_at, n.summary, received_ns)
            for n in parsed.notices]
