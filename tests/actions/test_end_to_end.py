"""End to end: the real openai client under `opentelemetry-instrument`, guarded in enforce mode, against the
local OpenAI-compatible simulator and a real `llmrel serve`.

The provider's gpt-4o degrades (every call fails) → `call-error` findings → the breaker of `bot/chat` opens
→ the app's calls go to gpt-4o-mini (in the simulator's request log and in `llm_calls`) → degradation off →
half-open probes on gpt-4o → closed. A second app (`shadow`) runs the same traffic on a scope in dry run:
its breaker opens on record, its calls never change. Timings are asserted loosely and printed exactly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llmrel.demo import Simulator, SimulatorConfig
from tests.instrumentation.serve import llmrel_serve, query_store

from .helpers import App, breaker, start_app, wait_for

RULES = """
rules:
  - id: call-error
    kind: no_error
    severity: warning
    action: {breaker: "{service}/{operation}", trip_after: 3, within: 30s}
"""
SERVE_ENV = {
    "LLMREL_BREAKER_MIN_OPEN_S": "6", "LLMREL_BREAKER_PROBE_WINDOW_S": "2", "LLMREL_BREAKER_CLOSE_AFTER": "2",
    "LLMREL_BREAKER_MIN_PROBE_CALLS": "3", "LLMREL_BREAKER_HALF_OPEN_FRACTION": "0.5",
    "LLMREL_BREAKER_TICK_S": "0.2", "LLMREL_BREAKER_DRY_RUN": '["shadow/*"]',
}
PRIMARY, FALLBACK = "gpt-4o", "gpt-4o-mini"


@dataclass
class Run:
    times: dict[str, float]
    bot: App
    shadow: App
    requests: list[dict[str, Any]]
    store_url: str


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("breakers")
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    config = SimulatorConfig(seed=5, latency_median_s=0.01, ttft_median_s=0.0, output_tokens_median=10,
                             tool_call_rate=0.0)
    with Simulator(config).run() as sim, llmrel_serve(tmp / "store", env={
            **SERVE_ENV, "LLMREL_RULES_FILE": str(rules)}) as serve:
        api = f"http://127.0.0.1:{serve.http_port}"
        guard_env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{serve.grpc_port}", "LLMREL_API_URL": api,
                     "LLMREL_BREAKERS": "enforce", "LLMREL_FALLBACK_MODELS": f"{PRIMARY}={FALLBACK}"}
        bot = start_app(sim.base_url, tmp / "stop-bot", {**guard_env, "OTEL_SERVICE_NAME": "bot"})
        shadow = start_app(sim.base_url, tmp / "stop-shadow", {**guard_env, "OTEL_SERVICE_NAME": "shadow"})
        times: dict[str, float] = {}
        try:
            wait_for("both apps calling", lambda: len(sim.requests()) >= 20, 60)
            time.sleep(1.0)
            times["degraded"] = time.time()
            sim.degrade(models=(PRIMARY,), server_error_rate=1.0, rate_limit_rate=0.0, latency_multiplier=1.0,
                        output_tokens_multiplier=1.0, length_rate=0.0, invalid_json_rate=0.0, response_model=None)
            times["open"] = wait_for("bot/chat open", lambda: (breaker(api, "bot/chat") or {}).get("state") == "open",
                                     60)
            times["fallback"] = wait_for("a fallback request", lambda: any(
                r["model"] == FALLBACK and r["time"] > times["degraded"] for r in sim.requests()), 30)
            time.sleep(2.0)
            times["recovered"] = time.time()
            sim.recover()
            times["half_open"] = wait_for("bot/chat half-open", lambda: (breaker(api, "bot/chat") or {}).get(
                "state") == "half_open", 60)
            times["closed"] = wait_for("bot/chat closed", lambda: (breaker(api, "bot/chat") or {}).get(
                "state") == "closed", 60)
            time.sleep(1.0)
        finally:
            bot.stop()
            shadow.stop()
        requests = sim.requests()
    print("\nbreaker end-to-end timings (s after degradation): " + json.dumps(
        {k: round(v - times["degraded"], 3) for k, v in times.items()}))
    yield Run(times, bot, shadow, requests, serve.url)


def test_breaker_opens_on_findings_and_the_app_falls_back(run: Run) -> None:
    t = run.times
    assert t["open"] - t["degraded"] < 20  # loosely; the exact figures are printed
    assert t["fallback"] - t["open"] < 5
    during = [r for r in run.requests if t["fallback"] <= r["time"] < t["recovered"]]
    assert during and {r["model"] for r in during} >= {FALLBACK}
    # While open, the bot asked gpt-4o-mini only; the shadow app (dry run) kept asking gpt-4o.
    bot_calls = [c for c in run.bot.calls if t["fallback"] + 1 <= c["t"] < t["recovered"]]
    assert bot_calls and all(c.get("model", "").startswith(FALLBACK) for c in bot_calls), bot_calls[:5]
    failed = [c for c in run.bot.calls if "error" in c]
    assert 3 <= len(failed) < 100  # the errors between degradation and the switch, nothing after
    assert all(c["t"] < t["fallback"] + 1 for c in failed)


def test_half_open_probes_the_primary_and_closes(run: Run) -> None:
    t = run.times
    assert t["half_open"] - t["open"] >= 6 - 0.5  # minimum open time
    assert t["closed"] - t["half_open"] < 30
    after = [r["model"] for r in run.requests if r["time"] > t["closed"] + 0.5]
    assert after and PRIMARY in after
    probes = [r for r in run.requests if t["half_open"] < r["time"] < t["closed"]]
    assert {r["model"] for r in probes} == {PRIMARY, FALLBACK}  # a fraction probes, the rest falls back
    assert not any("blocked" in c for c in run.bot.calls)


def test_llm_calls_record_the_fallback_and_the_transitions(run: Run) -> None:
    rows = dict(query_store(run.store_url, "SELECT Attributes['llmrel.breaker.decision'] AS d, count() FROM llm_calls "
                            "WHERE ServiceName = 'bot' GROUP BY d"))
    assert rows.get("fallback", 0) > 5 and rows.get("probe", 0) >= 3 and rows[""] > 10
    fallback_models = query_store(run.store_url, "SELECT DISTINCT RequestModel, Attributes['llmrel.breaker."
                                  "requested_model'] FROM llm_calls WHERE Attributes['llmrel.breaker.decision'] = "
                                  "'fallback' AND ServiceName = 'bot'")
    assert fallback_models == [[FALLBACK, PRIMARY]]
    steps = query_store(run.store_url, "SELECT FromState, ToState, Cause, DryRun FROM llm_breaker_events FINAL "
                        "WHERE Scope = 'bot/chat' ORDER BY Seq")
    assert steps[:3] == [["closed", "open", "findings", False], ["open", "half_open", "min_open", False],
                         ["half_open", "closed", "probe_healthy", False]]


def test_dry_run_records_and_does_not_enforce(run: Run) -> None:
    steps = query_store(run.store_url, "SELECT FromState, ToState, Cause, DryRun FROM llm_breaker_events FINAL "
                        "WHERE Scope = 'shadow/chat' ORDER BY Seq")
    assert steps[0] == ["closed", "open", "findings", True]
    assert not any(c.get("model", "").startswith(FALLBACK) for c in run.shadow.calls)
    decisions = dict(query_store(run.store_url, "SELECT Attributes['llmrel.breaker.decision'] AS d, count() "
                                 "FROM llm_calls WHERE ServiceName = 'shadow' GROUP BY d"))
    assert decisions.get("dry_run", 0) > 5 and "fallback" not in decisions
    assert query_store(run.store_url, "SELECT count() FROM llm_calls WHERE ServiceName = 'shadow' "
                       f"AND RequestModel = '{FALLBACK}'") == [[0]]
    assert "shadow/chat is open" in run.shadow.stderr and "dry run, calls unchanged" in run.shadow.stderr


def test_llmrel_down_the_app_keeps_working_and_says_so_once(tmp_path: Path) -> None:
    config = SimulatorConfig(seed=6, latency_median_s=0.0, ttft_median_s=0.0, output_tokens_median=5,
                             tool_call_rate=0.0)
    with Simulator(config).run() as sim:
        app = start_app(sim.base_url, tmp_path / "stop", {
            "OTEL_SERVICE_NAME": "bot", "OTEL_TRACES_EXPORTER": "none", "LLMREL_BREAKERS": "enforce",
            "LLMREL_API_URL": "http://127.0.0.1:9", "LLMREL_FALLBACK_MODELS": f"{PRIMARY}={FALLBACK}"},
            interval_s=0.05, max_calls=40)
        app.process.wait(120)
        app.stop()
    assert len(app.calls) == 40 and all(c.get("model", "").startswith(PRIMARY) for c in app.calls)
    assert max(c["seconds"] for c in app.calls) < 2.0
    assert app.stderr.count("breaker state unavailable") == 1, app.stderr
    assert "fail-open" in app.stderr
