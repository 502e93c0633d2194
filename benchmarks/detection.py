"""Drift detection against the sequential-test floor: 7 shifts x 4 stream rates x N seeds, and false alarms.

Each run warm-starts a real `Engine` (drift only: the rules have their own benchmark) from 24 h of
stored-like history of two streams of one service at the same rate (`testing.history_frame` through
`history.stream_histories`, the warm start's own code), feeds 300 live stationary calls of each, then
shifts one stream (the other is the control) for up to 3,000 calls. Per scenario and rate it reports:
detected (the shifted stream's own finding on the shifted metric) / missed, covered (own or its
service's finding), median and p90 delay in calls of the stream and in seconds, the floor (an oracle
CUSUM that knows the true before/after distributions, threshold ln 1e5, on the same samples), the
ratio to it (median, p90), the reported size over the true one, false alarms (any drift finding
before the onset, per 100k stationary calls) and false attributions (findings on the control stream
after the onset). A second run measures false alarms with 1,000 stationary streams in one engine.

    .venv/bin/python benchmarks/detection.py                       # 20 seeds
    .venv/bin/python benchmarks/detection.py --seeds 5 --fa-calls 100
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import polars as pl

from llmrel.analyzers.engine import Engine
from llmrel.analyzers.history import stream_histories
from llmrel.analyzers.ruleset import RuleSet, load_ruleset
from llmrel.analyzers.testing import Shift, Traffic, generate, history_frame

RESULTS = Path(__file__).parent / "results" / "detection.json"
RATES = (0.1, 0.5, 2.0, 10.0)
PRE, MAX_POST, BATCH = 300, 3000, 16
T0 = 1_764_000_000_000_000_000
ARL = 1e5
BASE = Traffic(service="app", model="m-shift", response_model="m-shift-2024-08-06", feature="")
CONTROL = replace(BASE, model="m-ctrl", response_model="m-ctrl-2024-08-06")

SCENARIOS = (  # name, changes of the shifted stream, metric, true factor of the metric (None: no oracle)
    ("output tokens x1.5", {"output_tokens_median": BASE.output_tokens_median * 1.5}, "output_tokens", 1.5),
    ("output tokens x3", {"output_tokens_median": BASE.output_tokens_median * 3}, "output_tokens", 3.0),
    ("latency +30%", {"latency_factor": 1.3}, "latency_ms", 1.3),
    ("latency +100%", {"latency_factor": 2.0}, "latency_ms", 2.0),
    ("error rate 1% -> 4%", {"error_rate": 0.04}, "error_rate", 4.0),
    ("length finish 2% -> 10%", {"length_rate": 0.10}, "length_finish_rate", 5.0),
    ("model silently swapped", {"response_model": "m-other-2025-01-01"}, "model_swap_rate", None),
)


def drift_only() -> RuleSet:
    return replace(load_ruleset(), rules=())


def true_parameters() -> dict[str, float | tuple[float, float]]:
    """Before-change parameters of the oracle: log1p mean and sd from a large sample, and the rates."""
    frame = history_frame(BASE, 400_000, seed=99).filter(pl.col("failed") == 0)
    logs = {m: frame[m].cast(pl.Float64).log1p() for m in ("output_tokens", "latency_ms")}
    return {"error_rate": BASE.error_rate, "length_finish_rate": BASE.length_rate,
            **{m: (float(v.mean()), float(v.std())) for m, v in logs.items()}}  # type: ignore[arg-type]


def metric_value(call, metric: str) -> float | None:
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


def history_calls(rate: float, ruleset: RuleSet) -> int:
    drift = ruleset.drift
    return min(int(rate * drift.history_hours * 3600), drift.history_calls)


def run(seed: int, changes: dict, metric: str, factor: float | None, rate: float, pre: dict,
        ruleset: RuleSet) -> dict:
    engine = Engine(ruleset)
    n_hist = history_calls(rate, ruleset)
    engine.warm_start(stream_histories(pl.concat([history_frame(BASE, n_hist, seed * 2 + 1),
                                                  history_frame(CONTROL, n_hist, seed * 2 + 2)])), T0)
    shifted = replace(BASE, calls_per_second=rate)
    step = 1e9 / rate
    stream = list(generate(shifted, PRE + MAX_POST, seed * 2 + 1, shift=Shift("s", PRE, changes, metric),
                           start_ns=T0, trace_prefix="a"))
    control = generate(replace(CONTROL, calls_per_second=rate), PRE + MAX_POST, seed * 2 + 2,
                       start_ns=T0 + int(step / 2), trace_prefix="b")
    onset_ns = stream[PRE].timestamp_ns
    key, control_key = (BASE.service, BASE.model, BASE.operation), (CONTROL.service, CONTROL.model, CONTROL.operation)
    result = {"false_alarms": 0, "false_attributions": 0, "stationary_calls": 2 * PRE, "detected": None,
              "covered": False}
    batch: list = []

    def flush() -> bool:
        for f in engine.process(batch, now_ns=batch[-1].timestamp_ns):
            if f.kind != "drift":
                continue
            at = int(f.attributes["detected_event_ns"])
            where = (f.service_name, f.model, f.operation)
            if at < onset_ns:
                result["false_alarms"] += 1
            elif where == control_key:
                result["false_attributions"] += 1
            elif f.metric == metric and where == key and result["detected"] is None:
                result["detected"] = f
                result["covered"] = True
            elif f.metric == metric and where == (BASE.service, "*", "*"):
                result["covered"] = True
        batch.clear()
        return result["detected"] is not None

    for call in heapq.merge(stream, control, key=lambda c: c.timestamp_ns):
        batch.append(call)
        if len(batch) == BATCH and flush():
            break
    else:
        if batch:
            flush()
    found = result.pop("detected")
    floor = oracle_delay(stream[PRE:], metric, pre, factor) if factor else None
    row = {**result, "detected": found is not None, "floor_calls": floor}
    if found is not None:
        detected_ns = int(found.attributes["detected_event_ns"])
        calls_after = sum(1 for c in stream[PRE:] if c.timestamp_ns <= detected_ns)
        row.update(delay_calls=calls_after, delay_s=(detected_ns - onset_ns) / 1e9,
                   ratio=calls_after / floor if floor else None)
        if factor and found.expected:
            reported = ((found.observed + 1) / (found.expected + 1) if metric in ("output_tokens", "latency_ms")
                        else found.observed / found.expected)
            row["size_over_true"] = reported / factor
    return row


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def summarize(name: str, metric: str, rate: float | str, runs: list[dict]) -> dict:
    hits = [r for r in runs if r["detected"]]

    def values(field: str) -> list[float]:
        return [r[field] for r in hits if r.get(field) is not None]

    stationary = sum(r["stationary_calls"] for r in runs)
    return {
        "scenario": name, "metric": metric, "calls_per_s": rate, "runs": len(runs), "detected": len(hits),
        "missed": len(runs) - len(hits), "covered_incl_service": sum(r["covered"] for r in runs),
        "median_delay_calls": percentile(values("delay_calls"), 0.5), "p90_delay_calls": percentile(
            values("delay_calls"), 0.9),
        "median_delay_s": percentile(values("delay_s"), 0.5), "p90_delay_s": percentile(values("delay_s"), 0.9),
        "floor_median_calls": percentile([r["floor_calls"] for r in runs if r["floor_calls"]], 0.5),
        "ratio_median": percentile(values("ratio"), 0.5), "ratio_p90": percentile(values("ratio"), 0.9),
        "size_over_true_median": percentile(values("size_over_true"), 0.5),
        "false_alarms": sum(r["false_alarms"] for r in runs), "stationary_calls": stationary,
        "false_alarms_per_100k_calls": sum(r["false_alarms"] for r in runs) / stationary * 1e5,
        "false_attributions": sum(r["false_attributions"] for r in runs),
    }


def many_streams(streams: int, calls: int, ruleset: RuleSet) -> dict:
    """`streams` stationary streams (100 services x `streams`/100 models, rates cycling over RATES) in one
    engine, warm-started from history: drift findings are all false alarms."""
    traffics = [replace(BASE, service=f"svc-{i % 100}", model=f"m-{i // 100}", response_model=f"m-{i // 100}-v1",
                        calls_per_second=RATES[i % len(RATES)]) for i in range(streams)]
    engine = Engine(ruleset)
    frames = [history_frame(t, min(history_calls(t.calls_per_second, ruleset), 5000), 7_000 + i)
              for i, t in enumerate(traffics)]
    engine.warm_start(stream_histories(pl.concat(frames)), T0)
    # every stream sends `calls` calls, each at its own rate (sparse streams span more event time)
    merged = heapq.merge(*(generate(t, calls, 9_000 + i, start_ns=T0 + i * 1_000_003, trace_prefix=f"{i:x}")
                           for i, t in enumerate(traffics)), key=lambda c: c.timestamp_ns)
    alarms: list = []
    batch: list = []
    for call in merged:
        batch.append(call)
        if len(batch) == 500:
            alarms += [f for f in engine.process(batch, now_ns=batch[-1].timestamp_ns) if f.kind == "drift"]
            batch = []
    if batch:
        alarms += [f for f in engine.process(batch, now_ns=batch[-1].timestamp_ns) if f.kind == "drift"]
    samples = sum(m.n for s in engine.streams.values() for m in s.monitors.values())
    total = streams * calls
    return {"streams": streams, "calls_per_stream": calls, "calls": total, "stream_metric_samples": samples,
            "false_alarms": len(alarms), "false_alarms_per_100k_calls": len(alarms) / total * 1e5,
            "false_alarms_per_100k_stream_metric_samples": len(alarms) / samples * 1e5,
            "streams_with_a_false_alarm": len({(f.service_name, f.model, f.operation) for f in alarms}),
            "by_metric": {m: sum(1 for f in alarms if f.metric == m) for m in sorted({f.metric for f in alarms})}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--fa-streams", type=int, default=1000)
    parser.add_argument("--fa-calls", type=int, default=200, help="stationary calls per stream in the 1,000-stream run")
    args = parser.parse_args()
    started = time.process_time()
    ruleset = drift_only()
    pre = true_parameters()
    rows, pooled = [], []
    for name, changes, metric, factor in SCENARIOS:
        every = []
        for i, rate in enumerate(RATES):  # other samples at each rate (the same ones would only change the clock)
            runs = [run(1000 * i + seed, changes, metric, factor, rate, pre, ruleset) for seed in range(args.seeds)]
            rows.append(summarize(name, metric, rate, runs))
            every += runs
        pooled.append(summarize(name, metric, "all", every))  # type: ignore[arg-type]
    scenario_cpu = time.process_time() - started
    fa = many_streams(args.fa_streams, args.fa_calls, ruleset)
    cpu = time.process_time() - started

    def fmt(v, spec="{:.0f}"):
        return "-" if v is None else spec.format(v)

    print(f"{'scenario':24} {'rate':>5} {'found':>7} {'cover':>5} {'med calls':>9} {'p90':>5} {'med s':>7} "
          f"{'p90 s':>7} {'floor':>5} {'ratio':>5} {'p90 r':>5} {'size':>5} {'FA':>3} {'attr':>4}")
    for r in rows + pooled:
        print(f"{r['scenario']:24} {r['calls_per_s']:>5} {r['detected']:>3}/{r['runs']:<3} "
              f"{r['covered_incl_service']:>5} {fmt(r['median_delay_calls']):>9} {fmt(r['p90_delay_calls']):>5} "
              f"{fmt(r['median_delay_s']):>7} {fmt(r['p90_delay_s']):>7} {fmt(r['floor_median_calls']):>5} "
              f"{fmt(r['ratio_median'], '{:.2f}'):>5} {fmt(r['ratio_p90'], '{:.2f}'):>5} "
              f"{fmt(r['size_over_true_median'], '{:.2f}'):>5} {r['false_alarms']:>3} {r['false_attributions']:>4}")
    stationary = sum(r["stationary_calls"] for r in rows)
    alarms = sum(r["false_alarms"] for r in rows)
    print(f"scenario runs: {alarms} false alarms in {stationary} stationary calls "
          f"({alarms / stationary * 1e5:.2f} per 100k), {sum(r['false_attributions'] for r in rows)} false "
          f"attributions; CPU {scenario_cpu:.0f} s")
    print(f"{fa['streams']} stationary streams x {fa['calls_per_stream']} calls: {fa['false_alarms']} false alarms "
          f"({fa['false_alarms_per_100k_calls']:.2f} per 100k calls, "
          f"{fa['false_alarms_per_100k_stream_metric_samples']:.3f} per 100k stream-metric samples, "
          f"{fa['streams_with_a_false_alarm']} streams, {fa['by_metric']}); total CPU {cpu:.0f} s")
    results = {"seeds": args.seeds, "rates": RATES, "pre_calls": PRE, "max_post_calls": MAX_POST, "arl": ARL,
               "scenarios": rows, "pooled_over_rates": pooled, "many_streams": fa, "cpu_s": round(cpu, 1)}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
