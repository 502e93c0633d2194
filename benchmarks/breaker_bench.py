"""Circuit breaker benchmark: the guard's cost per LLM call, and how fast an app reaches its fallback.

Not a test. Run:  python benchmarks/breaker_bench.py [--calls 200000] [--seeds 20]
Prints tables and writes benchmarks/results/breakers.json.

1. Guard overhead per call. The guard's wrapper (the one installed on the openai client) around a
   no-op `create`, against the bare no-op, interleaved in rounds in one process: p50/p99 of per-call
   wall time, and the difference (target: p99 overhead <= 5 us). States: every breaker closed (the
   common case), a breaker open for another model, open with a fallback model, half-open. Also the
   real openai client end to end over an in-process transport (`httpx.MockTransport`), guard off vs on,
   for scale.

2. Time from degradation onset to the app using its fallback, median over seeded runs at 2 calls/s.
   Accelerated event time through the real parts in between: seeded traffic (`analyzers.simulate`)
   → the spans' export (batch every 1 s, the distro's default) → the real analyzer `Engine` with the
   rule file's actions attached (as `llmrel serve` runs it) → the breaker controller's core
   (`BreakerSet`, the machines `BreakerController` drives with in-process findings) → the published
   view → the app's `Guard` (the same `route` its openai wrapper calls), 50 ms after publication
   (the long-poll answers at once). Calls the guard sends to the fallback draw from healthy fallback
   traffic. Clock, network and ClickHouse are not in this loop; the end-to-end test measures them
   (tests/actions/test_end_to_end.py prints its timings).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import wrapt

from llmrel.actions.breakers import BreakerSet, policy_lookup
from llmrel.actions.machine import BreakerPolicy, FindingSeen, State
from llmrel.analyzers.engine import Engine
from llmrel.analyzers.ruleaction import attach_actions
from llmrel.analyzers.ruleset import load_ruleset
from llmrel.analyzers.testing import Shift, Traffic, generate
from llmrel_instrumentation.breakers import openai_patch
from llmrel_instrumentation.breakers.config import GuardConfig, GuardMode
from llmrel_instrumentation.breakers.guard import Guard
from llmrel_instrumentation.breakers.state import Decision

RESULTS = Path(__file__).parent / "results" / "breakers.json"
S = 1_000_000_000
PRIMARY, FALLBACK = "gpt-4o", "gpt-4o-mini"


# --- 1. guard overhead

def _view(scope: str, state: str = "open") -> dict[str, Any]:
    return {"scope": scope, "state": state, "enforced": True, "half_open_fraction": 0.1, "why": {"reason": "bench"}}


GUARD_STATES: dict[str, list[dict[str, Any]]] = {
    "all closed": [],
    "open, other model": [_view("bot/chat/o3-mini")],
    "open, fallback": [_view("bot/chat")],
    "half-open": [_view("bot/chat", "half_open")],
}


def _percentiles(samples: list[int]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] / 1e3, ordered[int(len(ordered) * 0.99)] / 1e3


def guard_overhead(calls: int, rounds: int = 40) -> dict[str, Any]:
    """Per-call time of the guard's wrapper vs the bare function, interleaved round by round."""
    config = GuardConfig(GuardMode.ENFORCE, {PRIMARY: FALLBACK})
    guard = Guard(config, "bot")
    openai_patch.install(guard)

    def create(**kwargs: Any) -> Any:
        return kwargs

    wrapped = wrapt.FunctionWrapper(create, openai_patch._sync_wrapper("chat"))
    kwargs = {"model": PRIMARY, "messages": [{"role": "user", "content": "hi"}]}
    samples: dict[str, list[int]] = {"off": [], **{name: [] for name in GUARD_STATES}}
    per_round = calls // rounds
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for name in samples:
            fn: Callable[..., Any] = create if name == "off" else wrapped
            if name != "off":
                guard.receive(GUARD_STATES[name])
            out = samples[name]
            for _ in range(per_round):
                t0 = clock()
                fn(**kwargs)
                out.append(clock() - t0)
    openai_patch.uninstall()
    base50, base99 = _percentiles(samples["off"])
    result: dict[str, Any] = {"calls_per_state": per_round * rounds, "off": {"p50_us": base50, "p99_us": base99}}
    for name in GUARD_STATES:
        p50, p99 = _percentiles(samples[name])
        result[name] = {"p50_us": p50, "p99_us": p99, "overhead_p50_us": p50 - base50, "overhead_p99_us": p99 - base99}
    return result


def client_overhead(calls: int) -> dict[str, Any]:
    """The real openai client over an in-process transport, guard off vs on (closed, fallback)."""
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    client = openai.OpenAI(base_url="http://llm.invalid/v1", api_key="sk-bench", max_retries=0,
                           http_client=httpx.Client(transport=transport))
    guard = Guard(GuardConfig(GuardMode.ENFORCE, {PRIMARY: FALLBACK}), "bot")
    results: dict[str, Any] = {}
    for name, states in (("off", None), ("all closed", []), ("open, fallback", [_view("bot/chat")])):
        if states is None:
            openai_patch.uninstall()
        else:
            openai_patch.install(guard)
            guard.receive(states)
        samples = []
        for _ in range(calls):
            t0 = time.perf_counter_ns()
            client.chat.completions.create(model=PRIMARY, messages=[{"role": "user", "content": "hi"}])
            samples.append(time.perf_counter_ns() - t0)
        p50, p99 = _percentiles(samples[calls // 10:])
        results[name] = {"p50_us": p50, "p99_us": p99}
    openai_patch.uninstall()
    return results


# --- 2. time to fallback

SCENARIOS: dict[str, tuple[str, Traffic, dict[str, Any]]] = {
    "invalid JSON 0.5% -> 30% (json_valid, trip_after 5 within 2m)": (
        "rules:\n  - id: bot-json\n    kind: json_valid\n"
        "    action: {breaker: '{service}/{operation}', trip_after: 5, within: 2m}\ndrift: {enabled: false}\n",
        Traffic(service="bot", invalid_json_rate=0.005), {"invalid_json_rate": 0.30}),
    "provider errors 1% -> 20% (no_error, trip_after 8 within 1m)": (
        "rules:\n  - id: call-error\n    kind: no_error\n"
        "    action: {breaker: '{service}/{operation}', trip_after: 8, within: 1m}\ndrift: {enabled: false}\n",
        Traffic(service="bot"), {"error_rate": 0.20}),
    "invalid JSON 0% -> 10% (violation_rate drift, trip_after 1)": (
        "rules:\n  - {id: bot-json, kind: json_valid}\n"
        "drift:\n  actions:\n    violation_rate: {breaker: '{service}/{operation}', trip_after: 1, within: 10m}\n",
        Traffic(service="bot"), {"invalid_json_rate": 0.10}),
}
ONSET, AFTER = 1200, 1200  # calls: 10 minutes of healthy traffic (past the drift warm-up), then up to 10 more
EXPORT_S, ARRIVAL_S, POLL_S = 1.0, 0.005, 0.05


def time_to_fallback(rules: str, traffic: Traffic, changes: dict[str, Any], seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.yaml"
        path.write_text(rules)
        ruleset = load_ruleset(path, include_default=False)
    engine, actions = Engine(ruleset), ruleset.actions()
    breakers = BreakerSet(policy_lookup(BreakerPolicy(min_open_s=120), []))
    guard = Guard(GuardConfig(GuardMode.ENFORCE, {PRIMARY: FALLBACK}), "bot")
    step_s = 1 / traffic.calls_per_second
    start_ns = 1_764_000_000_000_000_000
    primary = list(generate(traffic, ONSET + AFTER, seed, shift=Shift("bench", ONSET, changes, ""),
                            start_ns=start_ns))
    fallback = list(generate(Traffic(service="bot", model=FALLBACK, response_model=f"{FALLBACK}-2024-07-18",
                                     invalid_json_rate=0.005), ONSET + AFTER, seed + 10_000, start_ns=start_ns,
                             trace_prefix="f"))
    phase = (seed % 10) / 10 * EXPORT_S  # where in its 1 s export cycle the app is
    in_flight: list[tuple[float, Any]] = []  # (time the span reaches the receiver, call)
    visible: list[tuple[float, list[dict[str, Any]]]] = []  # (time the app sees it, views)
    onset_s = ONSET * step_s
    found: dict[str, float | None] = {"first_finding_s": None, "open_s": None, "false_trips": 0}
    for i in range(ONSET + AFTER):
        now = i * step_s
        due = sorted((c for c in in_flight if c[0] <= now), key=lambda c: c[0])
        in_flight = [c for c in in_flight if c[0] > now]
        for arrival, group in _batches(due):
            findings = attach_actions(engine.process(group, start_ns + int(arrival * S)), actions)
            for f in findings:
                if f.action is None:
                    continue
                if found["first_finding_s"] is None and arrival >= onset_s:
                    found["first_finding_s"] = arrival - onset_s
                step = breakers.apply(f.action.breaker, FindingSeen(
                    f.finding_id, f.rule_id, f.detected_at_ns, f.action.trip_after, f.action.within_s * S))
                if step is not None and step.to_state is State.OPEN:
                    if arrival < onset_s:
                        found["false_trips"] += 1  # type: ignore[operator]
                    elif found["open_s"] is None:
                        found["open_s"] = arrival - onset_s
            breakers.tick(start_ns + int(arrival * S))
            visible.append((arrival + POLL_S, [v.to_json() for v in breakers.views()]))
        while visible and visible[0][0] <= now:
            guard.receive(visible.pop(0)[1])
        route = guard.route("chat", {"model": PRIMARY})
        if route is not None and route.decision is Decision.FALLBACK:
            call = fallback[i]
            if i >= ONSET:
                return {"seed": seed, "fallback_s": now - onset_s, **found}
        else:
            call = primary[i]
        finish = now + call.duration_ns / S
        exported = phase + EXPORT_S * (int((finish - phase) // EXPORT_S) + 1)
        in_flight.append((exported + ARRIVAL_S, call))
    return {"seed": seed, "fallback_s": None, **found}


def _batches(due: list[tuple[float, Any]]) -> list[tuple[float, list[Any]]]:
    groups: dict[float, list[Any]] = {}
    for arrival, call in due:
        groups.setdefault(round(arrival, 6), []).append(call)
    return sorted(groups.items())


def fallback_runs(seeds: int) -> dict[str, Any]:
    out = {}
    for name, (rules, traffic, changes) in SCENARIOS.items():
        runs = [time_to_fallback(rules, traffic, changes, 100 + seed) for seed in range(seeds)]
        reached = [r["fallback_s"] for r in runs if r["fallback_s"] is not None]
        out[name] = {
            "seeds": seeds, "reached": len(reached),
            "median_s": statistics.median(reached) if reached else None,
            "p90_s": sorted(reached)[int(len(reached) * 0.9) - 1] if reached else None,
            "max_s": max(reached) if reached else None,
            "median_first_finding_s": statistics.median(
                r["first_finding_s"] for r in runs if r["first_finding_s"] is not None),
            "median_open_s": statistics.median(r["open_s"] for r in runs if r["open_s"] is not None),
            "false_trips": sum(r["false_trips"] for r in runs), "runs": runs,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200_000, help="calls per guard state")
    parser.add_argument("--client-calls", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()

    overhead = guard_overhead(args.calls)
    print(f"guard overhead per call ({overhead['calls_per_state']} calls per state, interleaved; "
          f"bare call p50 {overhead['off']['p50_us']:.3f} us, p99 {overhead['off']['p99_us']:.3f} us)")
    print(f"  {'state':<20} {'p50 us':>8} {'p99 us':>8} {'+p50 us':>8} {'+p99 us':>8}")
    for name in GUARD_STATES:
        r = overhead[name]
        print(f"  {name:<20} {r['p50_us']:8.3f} {r['p99_us']:8.3f} {r['overhead_p50_us']:8.3f} "
              f"{r['overhead_p99_us']:8.3f}")
    client = client_overhead(args.client_calls)
    print("openai client, in-process transport: " + ", ".join(
        f"{name} p50 {r['p50_us']:.1f} us / p99 {r['p99_us']:.1f} us" for name, r in client.items()))
    runs = fallback_runs(args.seeds)
    print(f"time from degradation onset to the app's first fallback call, 2 calls/s, {args.seeds} seeds:")
    for name, r in runs.items():
        print(f"  {name}: median {r['median_s']:.1f} s, p90 {r['p90_s']:.1f} s, max {r['max_s']:.1f} s "
              f"(first finding {r['median_first_finding_s']:.1f} s, open {r['median_open_s']:.1f} s; "
              f"{r['reached']}/{r['seeds']} reached, {r['false_trips']} false trips before onset)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "guard_overhead": overhead, "client": client, "time_to_fallback": runs,
    }, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
