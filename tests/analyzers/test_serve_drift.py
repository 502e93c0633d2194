"""Drift in real time through `llmrel serve` (the receiver `build_receiver` starts, ports 127.0.0.1:0): the
analyzer warm-starts from stored calls, real OTLP/HTTP spans arrive at ~9 calls/s on three streams, one
stream's output tokens double, and a drift finding on that stream comes out of GET /api/v1/findings."""

from __future__ import annotations

import math
import random
import time

import httpx

from llmrel.model import LLM_CALL_COLUMNS
from tests.actions.conftest import wait_until
from tests.otlp_builders import chat_span, request
from tests.receiver.conftest import make_receiver  # noqa: F401 - fixture

from .helpers import make_call

TOKEN = "s3cret-token-for-drift"
MODELS = ("gpt-4o-mini", "gpt-4o", "o3-mini")
SHIFTED = "gpt-4o"


def _tokens(rng: random.Random, factor: float = 1.0) -> int:
    return max(1, int(rng.lognormvariate(math.log(250 * factor), 0.6)))


def test_a_shift_sent_over_otlp_comes_out_as_a_drift_finding_of_that_stream(store, make_receiver) -> None:  # noqa: F811
    rng = random.Random(5)
    now = time.time_ns()
    # two hours of stored history per stream, the same traffic as the spans below (what a restart finds)
    history = [make_call(0, timestamp_ns=now - (2 * 3600 - i * 3) * 10**9, trace_id=f"{m:02x}{i:030x}",
                         span_id=f"{i:016x}", service_name="support-bot", model=model, request_model=model,
                         response_model=model, input_tokens=100, output_tokens=_tokens(rng), cost_usd=None,
                         duration_ns=250_000_000, feature="", output_text="")
               for m, model in enumerate(MODELS) for i in range(2000)]
    store.insert("llm_calls", history, column_names=list(LLM_CALL_COLUMNS))
    receiver = make_receiver(auth_token=TOKEN, content_drift_enabled=False)
    base = f"http://127.0.0.1:{receiver.http_port}"
    headers = {"content-type": "application/x-protobuf", "authorization": f"Bearer {TOKEN}"}
    auth = {"authorization": f"Bearer {TOKEN}"}

    def send(round_no: int, factor: float) -> None:
        start = time.time_ns()
        spans = [chat_span(round_no * 100 + 3 * k + m + 1, model=model, t0=start, trace=round_no * 100 + 3 * k + m + 1,
                           output_tokens=_tokens(rng, factor if model == SHIFTED else 1.0))
                 for k in range(3) for m, model in enumerate(MODELS)]
        response = httpx.post(f"{base}/v1/traces", headers=headers, timeout=30,
                              content=request(spans, service="support-bot").SerializeToString())
        assert response.status_code == 200, response.text

    def drift_findings() -> list[dict]:
        response = httpx.get(f"{base}/api/v1/findings", params={"kind": "drift", "since": "5m"}, headers=auth,
                             timeout=10)
        assert response.status_code == 200
        return response.json()

    for round_no in range(10):  # 3 s stationary: 30 calls per stream
        send(round_no, 1.0)
        time.sleep(0.3)
    onset = time.time_ns()
    found: list[dict] = []
    for round_no in range(10, 110):  # then output tokens x2 on one stream, up to 30 s
        send(round_no, 2.0)
        time.sleep(0.3)
        found = [f for f in drift_findings() if f["metric"] == "output_tokens" and f["model"] == SHIFTED]
        if found:
            break
    found = found or wait_until("drift finding", lambda: [f for f in drift_findings()
                                                          if f["metric"] == "output_tokens" and f["model"] == SHIFTED])
    finding = found[0]
    assert finding["service"] == "support-bot" and finding["operation"] == "chat"
    assert finding["detected_at_ns"] >= onset and finding["event_time_ns"] >= onset - 2 * 10**9
    assert 1.5 <= (finding["observed"] + 1) / (finding["expected"] + 1) <= 2.8
    assert finding["calls"] < 100  # the floor for x2 at sigma 0.6 is ~17 calls
    others = [f for f in drift_findings() if f["model"] != SHIFTED and f["metric"] == "output_tokens"]
    assert others == []
