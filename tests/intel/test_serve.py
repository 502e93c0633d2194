"""Explanations through `llmrel serve`: real OTLP/HTTP in, analyzers, the intel thread, the authenticated API."""

from __future__ import annotations

import json
import random
import time

import httpx

from tests.actions.conftest import wait_until
from tests.otlp_builders import chat_span, request
from tests.receiver.conftest import make_receiver  # noqa: F401 - fixture

TOKEN = "s3cret-token-for-tests"
TENANTS = ("acme", "globex", "initech", "umbrella")


def _output(text: str) -> str:
    return json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": text}]}])


def test_prompt_version_for_one_tenant_is_explained_over_the_api(make_receiver) -> None:  # noqa: F811
    receiver = make_receiver(auth_token=TOKEN, content_drift_enabled=False)
    rng = random.Random(4)
    now = time.time_ns()
    spans = []
    for n in range(1, 1201):
        tenant, version = rng.choice(TENANTS), rng.choice(("v5", "v6", "v7"))
        broken = tenant == "globex" and version == "v7"
        spans.append(chat_span(n, t0=now, extra={
            "llmrel.tenant": tenant, "llmrel.prompt.version": version,
            "gen_ai.output.messages": _output('{"answer": "ok"' if broken else '{"answer": "ok"}')}))
    headers = {"content-type": "application/x-protobuf", "authorization": f"Bearer {TOKEN}"}
    base = f"http://127.0.0.1:{receiver.http_port}"
    response = httpx.post(f"{base}/v1/traces", headers=headers, timeout=30,
                          content=request(spans, service="support-bot").SerializeToString())
    assert response.status_code == 200, response.text
    auth = {"authorization": f"Bearer {TOKEN}"}

    def invalid_json_findings() -> list[dict]:
        rows = httpx.get(f"{base}/api/v1/findings", params={"rule": "invalid-json", "since": "1h"}, headers=auth,
                         timeout=10).json()
        return rows if len(rows) > 10 else []

    finding = wait_until("invalid-json findings", invalid_json_findings)[0]
    url = f"{base}/api/v1/findings/{finding['finding_id']}/explanation"
    assert httpx.get(url, timeout=10).status_code == 401
    explanation = httpx.get(url, headers=auth, timeout=30).json()
    assert explanation["verdict"] == "explained"
    assert set(explanation["top_cause"].split(" & ")) == {"attr:llmrel.prompt.version=v7", "tenant=globex"}
    assert explanation["causes"][0]["baseline_calls"] == 0
    # The receiver's own thread explained the first finding of the rule as it arrived.
    wait_until("stored by serve", lambda: httpx.get(f"{base}/api/v1/intel/status", headers=auth,
                                                    timeout=10).json()["explained"] >= 1)
    assert httpx.get(f"{base}/api/v1/findings/{'0' * 32}/explanation", headers=auth, timeout=10).status_code == 404
    assert httpx.get(f"{base}/api/v1/findings/nope/explanation", headers=auth, timeout=10).status_code == 400
    recs = httpx.get(f"{base}/api/v1/recommendations", params={"since": "1h"}, headers=auth, timeout=30)
    assert recs.status_code == 200 and recs.json()["groups"][0]["service"] == "support-bot"
    assert httpx.get(f"{base}/api/v1/recommendations", params={"since": "soon"}, headers=auth,
                     timeout=10).status_code == 400
