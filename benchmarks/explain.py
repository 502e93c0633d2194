"""Intelligence-layer benchmark: explanation latency vs calls in scope, output-content drift detection.

Not a test. Run:  python benchmarks/explain.py [--sizes 100000,1000000] [--drift-runs 5] [--fa-calls 40000]
Prints a table and writes benchmarks/results/explain.json.

Explanation: N calls of one service within one hour are generated in the embedded store (INSERT ... SELECT
FROM numbers(N): 8 tenants, 4 prompt versions, 3 models, 2 service versions, 3 regions); a quarter of the
calls of prompt version v7 in tenant t3 fail an invariant (plus 0.2% noise everywhere), written as findings
through the findings writer. `explain` of one of them is timed (median of 3) and reported against a
baseline measured in the same run: one scan counting the scope's affected and baseline calls. The top
cause must be the planted pair.

Output-content drift: streams of paraphrased answers switch topic at a random call (same length); the
delay is counted in calls from the switch to the detecting window's last call. False alarms: findings on
stationary paraphrase streams, per 100k calls. Throughput is µs per call of the detector.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from llmrel.analyzers.callfields import empty_call
from llmrel.config import load_settings
from llmrel.findings import Finding, write_findings
from llmrel.intel.content_drift import ContentDriftMonitor
from llmrel.intel.explain import explain
from llmrel.intel.simulate import answer
from llmrel.store import connect, migrate

RESULTS = Path(__file__).parent / "results" / "explain.json"
START_NS = 1_764_000_000_000_000_000
HOUR_NS = 3_600 * 1_000_000_000
PLANTED = {"attr:llmrel.prompt.version=v7", "tenant=t3"}

_GENERATE = """
INSERT INTO llm_calls (Timestamp, TraceId, SpanId, ServiceName, ServiceVersion, Environment, Provider, Operation,
    Model, RequestModel, ResponseModel, InputTokens, OutputTokens, CostUSD, CostStatus, Duration, FinishReason,
    StatusCode, Feature, Tenant, Attributes)
SELECT fromUnixTimestamp64Nano(toInt64({start:Int64} + intDiv(number * {span:Int64}, {n:UInt64}))),
    lower(hex(cityHash64(number, 1))) || lower(hex(cityHash64(number, 2))), lower(hex(cityHash64(number, 3))),
    'support', ['r1', 'r2'][cityHash64(number, 4) % 2 + 1], 'prod', 'openai', 'chat',
    ['gpt-4o', 'gpt-4o-mini', 'gpt-4.1'][cityHash64(number, 5) % 3 + 1] AS m, m, m,
    100 + cityHash64(number, 6) % 2000, 50 + cityHash64(number, 7) % 300, 0.001, 'priced',
    200000000 + cityHash64(number, 8) % 800000000, 'stop', 'Ok', ['faq', 'extract'][cityHash64(number, 9) % 2 + 1],
    concat('t', toString(cityHash64(number, 10) % 8)),
    map('llmrel.prompt.version', concat('v', toString(4 + cityHash64(number, 11) % 4)),
        'region', ['eu', 'us', 'ap'][cityHash64(number, 12) % 3 + 1])
FROM numbers({n:UInt64})
"""
_BAD = """
SELECT toUnixTimestamp64Nano(Timestamp), TraceId, SpanId, Model, Tenant FROM llm_calls
WHERE (Tenant = 't3' AND Attributes['llmrel.prompt.version'] = 'v7' AND cityHash64(TraceId, 13) % 4 = 0)
   OR cityHash64(TraceId, 14) % 500 = 0
"""


def _finding(row: tuple) -> Finding:
    ts, trace_id, span_id, model, tenant = row
    call = empty_call(timestamp_ns=int(ts), trace_id=trace_id, span_id=span_id, service_name="support", model=model,
                      operation="chat", tenant=tenant)
    return Finding.for_call(kind="invariant", rule_id="invalid-json", severity="error", call=call, metric="json_valid",
                            observed=None, expected=None, message="output is not valid JSON", impact_usd=0.0,
                            detected_at_ns=int(ts) + 1_000_000)


def bench_explain(client, n: int) -> dict[str, object]:
    client.command("TRUNCATE TABLE llm_calls")
    client.command("TRUNCATE TABLE llm_findings")
    started = time.perf_counter()
    client.query(_GENERATE, parameters={"start": START_NS, "span": HOUR_NS, "n": n})
    generate_s = time.perf_counter() - started
    bad = client.query(_BAD).result_rows
    findings = [_finding(r) for r in bad]
    write_findings(client, findings)
    planted = next(f for f in findings if f.tenant == "t3")
    times, result = [], None
    for _ in range(3):
        t = time.perf_counter()
        result = explain(client, planted.finding_id)
        times.append(time.perf_counter() - t)
    assert result is not None
    scan = []
    for _ in range(3):
        t = time.perf_counter()
        client.query("SELECT count(), countIf((TraceId, SpanId) IN (SELECT TraceId, SpanId FROM llm_findings)) "
                     "FROM llm_calls WHERE ServiceName = 'support'")
        scan.append(time.perf_counter() - t)
    top = result.contrast.causes[0].cause if result.contrast.causes else ""
    explain_s, scan_s = statistics.median(times), statistics.median(scan)
    return {"calls": n, "affected": result.contrast.target_calls, "baseline": result.contrast.baseline_calls,
            "generate_s": round(generate_s, 2), "explain_s": round(explain_s, 3), "scan_s": round(scan_s, 3),
            "explain_vs_scan": round(explain_s / scan_s, 2), "top_cause": top,
            "top_is_planted": set(top.split(" & ")) == PLANTED, "verdict": result.contrast.verdict}


def _stream(n: int, switch_at: int | None, seed: int):
    rng = random.Random(seed)
    for i in range(n):
        topic = "shipping" if switch_at is not None and i >= switch_at else "refund"
        yield empty_call(timestamp_ns=START_NS + i * 500_000_000, trace_id=f"{seed:08x}{i:024x}", span_id=f"{i:016x}",
                         service_name="support", model="gpt-4o", request_model="gpt-4o", operation="chat",
                         output_tokens=40, status_code="Ok", output_text=answer(rng, topic))


def bench_content_drift(runs: int, fa_calls: int) -> dict[str, object]:
    delays, detected = [], 0
    for seed in range(runs):
        rng = random.Random(seed)
        switch = rng.randrange(1000, 3000)
        monitor = ContentDriftMonitor()
        calls = list(_stream(switch + 1500, switch, seed))
        for offset in range(0, len(calls), 100):
            found = [f for f in monitor.process(calls[offset:offset + 100], 0) if f.event_time_ns >= START_NS]
            hit = next((f for f in found if f.event_time_ns + monitor.config.window * 500_000_000
                        > calls[switch].timestamp_ns), None)
            if hit is not None:
                detected += 1
                delays.append(min(offset + 100, len(calls)) - switch)
                break
    monitor = ContentDriftMonitor()
    calls = list(_stream(fa_calls, None, 999))
    started = time.perf_counter()
    false_alarms = sum(len(monitor.process(calls[o:o + 100], 0)) for o in range(0, len(calls), 100))
    per_call_us = (time.perf_counter() - started) / len(calls) * 1e6
    return {"runs": runs, "detected": detected, "detection_rate": detected / runs,
            "delay_calls_median": statistics.median(delays) if delays else None,
            "delay_calls_max": max(delays) if delays else None, "window": monitor.config.window,
            "stationary_calls": fa_calls, "false_alarms": false_alarms,
            "false_alarms_per_100k": round(false_alarms * 100_000 / fa_calls, 2),
            "tests_run": monitor.tests, "detector_us_per_call": round(per_call_us, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="calls in scope, comma-separated")
    parser.add_argument("--drift-runs", type=int, default=5)
    parser.add_argument("--fa-calls", type=int, default=40_000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="llmrel-explain-bench-") as tmp:
        settings = load_settings(clickhouse_url=f"chdb://{tmp}?database=bench", calls_ttl_days=0,
                                 findings_ttl_days=0, traces_ttl_days=0)
        client = connect(settings)
        migrate(client, settings)
        explain_rows = []
        for n in sizes:
            row = bench_explain(client, n)
            explain_rows.append(row)
            print(f"explain  {n:>10,} calls: {row['explain_s']:.3f} s (scan {row['scan_s']:.3f} s, "
                  f"x{row['explain_vs_scan']}), affected {row['affected']:,}, top {row['top_cause']!r} "
                  f"planted={row['top_is_planted']}", flush=True)
        client.close()
    drift = bench_content_drift(args.drift_runs, args.fa_calls)
    print(f"content  detected {drift['detected']}/{drift['runs']}, delay median {drift['delay_calls_median']} calls "
          f"(max {drift['delay_calls_max']}, window {drift['window']}), false alarms {drift['false_alarms']} in "
          f"{drift['stationary_calls']:,} stationary calls ({drift['false_alarms_per_100k']}/100k), "
          f"{drift['detector_us_per_call']} µs/call")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)]},
        "explain": explain_rows, "content_drift": drift}, indent=2) + "\n")
    print(f"load average (1 min) {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at the end; wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
