"""Drift detection against the statistical floor: 20 streams, 4 services x 5 models, ~8 calls/s in total.

Each run simulates 10 minutes of stationary traffic (event time), then a shift on every stream, then
10 more minutes, through the real `Engine` with the default rule pack. Per scenario it reports the
share of streams whose own (leaf-level) drift finding came after the onset, the median and p90 delay
in calls of that stream and in seconds, the size of change reported against the true one, and the
delay of an oracle CUSUM that knows the pre/post parameters and starts at the onset with the same
false-alarm target (1 per 1e5 calls), computed on the same samples: the ratio is ours / oracle.
False alarms are counted on a separate stationary run of the same 20 streams.

    .venv/bin/python benchmarks/detection.py            # 5 seeds, about 2 min of CPU
    .venv/bin/python benchmarks/detection.py --seeds 2  # quicker
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path

from llmrel.analyzers.drift import DriftConfig
from llmrel.analyzers.engine import Engine
from llmrel.analyzers.ruleset import load_ruleset
from llmrel.analyzers.testing import Shift, Traffic, generate

SERVICES = (("checkout", 0.4), ("support", 0.3), ("search", 0.2), ("billing", 0.1))
MODELS = (("gpt-4o", 0.45, 250.0), ("gpt-4o-mini", 0.25, 120.0), ("claude-sonnet", 0.15, 400.0),
          ("llama-70b", 0.10, 300.0), ("mistral-large", 0.05, 180.0))
TOTAL_RATE = 8.0
STATIONARY_S, AFTER_S = 600.0, 600.0
ARL = 1e5
T0 = 1_764_000_000_000_000_000
OUT_SIGMA = 0.6  # simulate.py: output tokens are lognormal with this sigma

SCENARIOS = (
    ("output tokens x1.5", {"output_tokens_median": 1.5}, "output_tokens", 1.5),
    ("output tokens x3", {"output_tokens_median": 3.0}, "output_tokens", 3.0),
    ("latency +30%", {"latency_factor": 1.3}, "latency_ms", 1.3),
    ("latency +100%", {"latency_factor": 2.0}, "latency_ms", 2.0),
    ("error rate 1% -> 4%", {"error_rate": 0.04}, "error_rate", 4.0),
    ("length finish 2% -> 10%", {"length_rate": 0.10}, "length_finish_rate", 5.0),
    ("model silently swapped", {"response_model": "gpt-4o-mini-2024-07-18"}, "model_swap_rate", None),
)


def streams() -> list[Traffic]:
    return [Traffic(service=s, model=m, response_model=f"{m}-2024", operation="chat", output_tokens_median=med,
                    calls_per_second=TOTAL_RATE * sw * mw) for s, sw in SERVICES for m, mw, med in MODELS]


def shifted(t: Traffic, changes: dict) -> Traffic:
    values = {k: (getattr(t, k) * v if k in ("output_tokens_median",) else v) for k, v in changes.items()}
    return replace(t, **values)


def simulate(seed: int, changes: dict | None, duration_s: float) -> tuple[list, dict]:
    """All calls of the 20 streams merged in event time, and per stream the onset index and time."""
    calls, onsets = [], {}
    for j, t in enumerate(streams()):
        count = max(1, int(duration_s * t.calls_per_second))
        onset = int(STATIONARY_S * t.calls_per_second)
        shift = None
        if changes is not None:
            after = shifted(t, changes)
            shift = Shift("s", onset, {k: getattr(after, k) for k in changes}, "")
        stream = list(generate(t, count, seed * 100 + j, shift=shift, start_ns=T0 + j * 7_919_000,
                               trace_prefix=f"{j:02x}"))
        calls += stream
        onsets[(t.service, t.model, "chat")] = (onset, T0 + j * 7_919_000 + int(onset * 1e9 / t.calls_per_second),
                                                stream)
    calls.sort(key=lambda c: c.timestamp_ns)
    return calls, onsets


def run_engine(calls: list) -> list:
    engine = Engine(load_ruleset())
    findings = []
    for i in range(0, len(calls), 64):  # ~8 s of traffic per batch, as serve commits it
        findings += engine.process(calls[i:i + 64], now_ns=calls[min(i + 63, len(calls) - 1)].timestamp_ns)
    return [f for f in findings if f.kind == "drift"]


def metric_value(call, metric: str):
    failed = call.status_code == "Error"
    if metric == "error_rate":
        return 1.0 if failed else 0.0
    if failed:
        return None
    if metric == "output_tokens":
        return math.log1p(call.output_tokens)
    if metric == "latency_ms":
        return math.log1p(call.duration_ns / 1e6)
    if metric == "length_finish_rate":
        return 1.0 if call.finish_reason == "length" else 0.0
    return None


def oracle_delay(post: list, metric: str, pre: dict, factor: float) -> int | None:
    """Calls after the onset an oracle CUSUM (true parameters, threshold ln ARL) needs; None if never."""
    h, s = math.log(ARL), 0.0
    for k, call in enumerate(post, start=1):
        y = metric_value(call, metric)
        if y is None:
            continue
        if metric in ("error_rate", "length_finish_rate"):
            p0 = pre[metric]
            p1 = p0 * factor
            s = max(0.0, s + (math.log(p1 / p0) if y else math.log((1 - p1) / (1 - p0))))
        else:
            mu, sigma = pre[metric]
            d = math.log(factor)
            s = max(0.0, s + d / sigma**2 * (y - mu - d / 2))
        if s >= h:
            return k
    return None


def pre_parameters(stream: list) -> dict:
    values = {m: [v for c in stream if (v := metric_value(c, m)) is not None] for m in ("output_tokens", "latency_ms")}
    return {"error_rate": 0.01, "length_finish_rate": 0.02,
            **{m: (statistics.fmean(v), statistics.stdev(v)) for m, v in values.items()}}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def scenario(name: str, changes: dict, metric: str, factor: float | None, seeds: int) -> dict:
    delays, delays_s, oracle, ratios, sizes, found, covered, total, false_alarms = [], [], [], [], [], 0, 0, 0, 0
    for seed in range(seeds):
        calls, onsets = simulate(seed, changes, STATIONARY_S + AFTER_S)
        findings = run_engine(calls)
        # large pre-onset samples of each stream give the oracle its parameters
        reference, _ = simulate(10_000 + seed, None, 3000)
        by_key: dict = {}
        for c in reference:
            by_key.setdefault((c.service_name, c.model, c.operation), []).append(c)
        for key, (onset, onset_ns, stream) in onsets.items():
            total += 1
            own = sorted(int(f.attributes["detected_event_ns"]) for f in findings
                         if (f.service_name, f.model, f.operation) == key and f.metric == metric)
            false_alarms += sum(1 for f in findings if (f.service_name, f.model, f.operation) == key
                                and int(f.attributes["detected_event_ns"]) < onset_ns)
            parent = [int(f.attributes["detected_event_ns"]) for f in findings if f.metric == metric
                      and f.service_name in (key[0], "*") and f.model == "*"
                      and int(f.attributes["detected_event_ns"]) >= onset_ns]
            hits = [t for t in own if t >= onset_ns]
            post = stream[onset:]
            floor = oracle_delay(post, metric, pre_parameters(by_key[key]), factor) if factor else None
            if hits or parent:
                covered += 1
            if not hits:
                continue
            found += 1
            detected = hits[0]
            calls_after = sum(1 for c in post if c.timestamp_ns <= detected)
            delays.append(calls_after)
            delays_s.append((detected - onset_ns) / 1e9)
            if floor:
                oracle.append(floor)
                ratios.append(calls_after / floor)
            f = next(f for f in findings if (f.service_name, f.model, f.operation) == key and f.metric == metric
                     and int(f.attributes["detected_event_ns"]) == detected)
            if factor and f.expected:
                reported = ((f.observed + 1) / (f.expected + 1) if metric in ("output_tokens", "latency_ms")
                            else f.observed / f.expected)
                sizes.append(reported / factor)
    return {
        "scenario": name, "metric": metric, "streams": total, "detected": found, "covered_incl_parents": covered,
        "median_delay_calls": percentile(delays, 0.5), "p90_delay_calls": percentile(delays, 0.9),
        "median_delay_s": percentile(delays_s, 0.5), "p90_delay_s": percentile(delays_s, 0.9),
        "oracle_median_calls": percentile(oracle, 0.5),
        "ratio_to_oracle_median": percentile(ratios, 0.5), "ratio_to_oracle_p90": percentile(ratios, 0.9),
        "reported_size_over_true_median": percentile(sizes, 0.5),
        "false_alarms_before_onset_same_stream": false_alarms,
    }


def stationary(seeds: int) -> dict:
    calls_total, alarms, monitored = 0, 0, 0
    for seed in range(seeds):
        calls, _ = simulate(500 + seed, None, 3600)
        calls_total += len(calls)
        alarms += len(run_engine(calls))
        monitored += len(calls) * len(DriftConfig().metrics)
    return {"stationary_calls": calls_total, "false_alarms": alarms,
            "false_alarms_per_100k_calls": alarms / calls_total * 1e5,
            "false_alarms_per_100k_stream_metric_samples": alarms / monitored * 1e5}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    started = time.process_time()
    rows = [scenario(*s, seeds=args.seeds) for s in SCENARIOS]
    fa = stationary(max(1, args.seeds // 2))
    cpu = time.process_time() - started
    print(f"{'scenario':28} {'found':>7} {'cover':>6} {'med calls':>9} {'p90':>6} {'med s':>7} {'oracle':>7} "
          f"{'ratio':>6} {'p90 r':>6} {'size':>6}")
    for r in rows:
        def fmt(v, spec="{:.0f}"):
            return "-" if v is None else spec.format(v)
        print(f"{r['scenario']:28} {r['detected']:>3}/{r['streams']:<3} {r['covered_incl_parents']:>6} "
              f"{fmt(r['median_delay_calls']):>9} {fmt(r['p90_delay_calls']):>6} {fmt(r['median_delay_s']):>7} "
              f"{fmt(r['oracle_median_calls']):>7} {fmt(r['ratio_to_oracle_median'], '{:.2f}'):>6} "
              f"{fmt(r['ratio_to_oracle_p90'], '{:.2f}'):>6} {fmt(r['reported_size_over_true_median'], '{:.2f}'):>6}")
    print(f"stationary: {fa['false_alarms']} false alarms in {fa['stationary_calls']} calls "
          f"({fa['false_alarms_per_100k_calls']:.2f} per 100k calls, "
          f"{fa['false_alarms_per_100k_stream_metric_samples']:.3f} per 100k stream-metric samples); CPU {cpu:.0f} s")
    out = Path(__file__).parent / "results" / "detection.json"
    out.write_text(json.dumps({"seeds": args.seeds, "scenarios": rows, "stationary": fa, "cpu_s": cpu}, indent=2))


if __name__ == "__main__":
    main()
