"""The canary gate over stored calls: a canary version with 3x the invariant violation rate fails, an identical
one passes, one with too few calls is inconclusive; the same answer serves Argo Rollouts (GET, always 200,
`result.verdict`) and Flagger (POST with its webhook payload, non-2xx unless pass).

Argo Rollouts and Flagger cannot run here (no Kubernetes): the requests are built as their `web` metric
provider and webhook caller send them (REFERENCE §13, §14).
"""

from __future__ import annotations

import random
import time
from typing import Any

import httpx
import numpy as np
import pytest

from llmrel.actions.gate import GateConfig, VersionSample, judge
from llmrel.analyzers.callfields import empty_call
from llmrel.findings import Finding, write_findings
from llmrel.model import LLM_CALL_COLUMNS
from llmrel.receiver.server import Receiver

from .conftest import api

NOW_NS = time.time_ns()


def seed_version(store, version: str, calls: int, violation_rate: float, seed: int, error_rate: float = 0.01,
                 latency_scale: float = 1.0, ages_s: tuple[int, int] = (60, 1200)) -> None:
    rng = random.Random(seed)
    rows, findings = [], []
    for i in range(calls):
        error = rng.random() < error_rate
        call = empty_call(
            timestamp_ns=NOW_NS - rng.randint(*ages_s) * 1_000_000_000, trace_id=f"{seed:08x}{i:024x}",
            span_id=f"{seed:04x}{i:012x}", service_name="bot", service_version=version, operation="chat",
            model="gpt-4o", request_model="gpt-4o", duration_ns=int(rng.lognormvariate(np.log(800), 0.3)
                                                                    * latency_scale * 1e6),
            cost_usd=None if error else 0.002 * rng.uniform(0.9, 1.1), cost_status="priced",
            status_code="Error" if error else "Ok", input_tokens=100, output_tokens=50)
        rows.append(call)
        if rng.random() < violation_rate:
            findings.append(Finding.for_call(kind="invariant", rule_id="invalid-json", severity="error", call=call,
                                             metric="json_valid", observed=None, expected=None, message="bad json",
                                             impact_usd=0.0, detected_at_ns=NOW_NS))
    store.insert("llm_calls", rows, column_names=list(LLM_CALL_COLUMNS))
    write_findings(store, findings)


@pytest.fixture
def gated(store, make_receiver) -> Receiver:
    seed_version(store, "v1", 600, 0.05, seed=1)
    seed_version(store, "v2-bad", 400, 0.15, seed=2)
    seed_version(store, "v3-same", 400, 0.05, seed=3)
    seed_version(store, "v4-new", 20, 0.05, seed=4)
    return make_receiver(analyzers_enabled=False, auth_token="gate-token")


def argo(receiver: Receiver, canary: str, **params: Any) -> httpx.Response:
    """What Argo Rollouts' web provider sends: GET, a Bearer header from `headers`, JSON expected back."""
    query = {"service": "bot", "canary_version": canary, "baseline_version": "v1", "window": "1h", **params}
    return httpx.get(f"{api(receiver)}/gate", params=query, headers={"Authorization": "Bearer gate-token"},
                     timeout=30)


def flagger(receiver: Receiver, canary: str) -> httpx.Response:
    """What Flagger's webhook sends: POST of CanaryWebhookPayload; the gate's parameters in `metadata`."""
    payload = {"name": "bot", "namespace": "prod", "phase": "Progressing", "checksum": "7d9c4f6b",
               "metadata": {"canary_version": canary, "baseline_version": "v1", "window": "1h"}}
    return httpx.post(f"{api(receiver)}/gate", json=payload, headers={"Authorization": "Bearer gate-token"},
                      timeout=30)


def test_three_times_the_violation_rate_fails(gated: Receiver) -> None:
    response = argo(gated, "v2-bad")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["verdict"] == "fail" and result["reason"].startswith("violation_rate:")
    metric = result["metrics"]["violation_rate"]
    assert metric["verdict"] == "fail" and metric["p_value"] < 0.05 / 4
    assert metric["canary"] == pytest.approx(0.15, abs=0.04) and metric["baseline"] == pytest.approx(0.05, abs=0.03)
    assert result["calls"] == {"canary": 400, "baseline": 600}
    assert {m: result["metrics"][m]["verdict"] for m in ("error_rate", "latency_p95", "cost_per_success")} == {
        "error_rate": "pass", "latency_p95": "pass", "cost_per_success": "pass"}
    assert flagger(gated, "v2-bad").status_code == 412  # Flagger halts and counts a failed check


def test_an_identical_canary_passes(gated: Receiver) -> None:
    result = argo(gated, "v3-same").json()
    assert result["verdict"] == "pass"
    assert all(m["verdict"] == "pass" for m in result["metrics"].values())
    response = flagger(gated, "v3-same")
    assert response.status_code == 200 and response.json()["verdict"] == "pass"


def test_too_few_calls_is_inconclusive(gated: Receiver) -> None:
    result = argo(gated, "v4-new").json()
    assert result["verdict"] == "inconclusive" and "too few calls" in result["reason"]
    assert result["calls"] == {"canary": 20, "baseline": 600}
    assert flagger(gated, "v4-new").status_code == 412
    assert argo(gated, "v4-new", min_calls=10).json()["verdict"] == "pass"


def test_versions_are_guessed_when_not_given(gated: Receiver, store) -> None:
    seed_version(store, "v9-latest", 60, 0.05, seed=9, ages_s=(1, 50))  # first seen after every other version
    result = httpx.get(f"{api(gated)}/gate", params={"service": "bot", "window": "1h"},
                       headers={"Authorization": "Bearer gate-token"}, timeout=30).json()
    assert (result["canary_version"], result["baseline_version"]) == ("v9-latest", "v1")


@pytest.mark.parametrize(("params", "headers", "status"), [
    ({"canary_version": "v2-bad"}, {"Authorization": "Bearer gate-token"}, 400),
    ({"service": "bot", "window": "soon"}, {"Authorization": "Bearer gate-token"}, 400),
    ({"service": "bot"}, {}, 401),
])
def test_bad_requests_get_a_clear_error(gated: Receiver, params: dict[str, str], headers: dict[str, str],
                                        status: int) -> None:
    response = httpx.get(f"{api(gated)}/gate", params=params, headers=headers, timeout=30)
    assert response.status_code == status and response.json()["detail"]


def _sample(version: str, n: int, latency_ms: float, cost: float, errors: int = 0) -> VersionSample:
    rng = np.random.default_rng(len(version))
    latencies = rng.lognormal(np.log(latency_ms), 0.3, n)
    costs = rng.uniform(0.9, 1.1, n - errors) * cost
    return VersionSample(version, n, errors, 0, latencies, costs, float(costs.sum()), n - errors)


def test_latency_and_cost_regressions_fail_on_their_own() -> None:
    base = _sample("base", 500, 800, 0.002)
    slow = judge(_sample("slow!", 300, 1400, 0.002), base)
    assert slow.verdict == "fail" and [m.name for m in slow.metrics if m.verdict == "fail"] == ["latency_p95"]
    pricey = judge(_sample("pricey", 300, 800, 0.004), base)
    assert pricey.verdict == "fail" and [m.name for m in pricey.metrics if m.verdict == "fail"] == ["cost_per_success"]
    # A significant but immaterial difference (5% slower) does not fail a rollout.
    assert judge(_sample("close", 3000, 840, 0.002), _sample("base2", 3000, 800, 0.002)).verdict == "pass"
    assert judge(_sample("x", 10, 800, 0.002), base, GateConfig(min_calls=50)).verdict == "inconclusive"
