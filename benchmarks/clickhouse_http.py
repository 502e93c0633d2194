"""ClickHouse HTTP interface of `llmrel serve`: dashboard queries through it vs directly on the store, and
OTLP ingest throughput with and without dashboard users querying through it, all in one run.

    .venv/bin/python benchmarks/clickhouse_http.py [--calls 1000000] [--users 4] [--seconds 8]

Prints p50/p95 per dashboard query for both paths and their ratio, then ingest spans/s and export p99
without and with the query load; writes benchmarks/results/clickhouse_http.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import clickhouse_connect

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
RESULTS = ROOT / "benchmarks" / "results" / "clickhouse_http.json"

from otlp_load import build_request, run_load  # noqa: E402

from llmrel.cli.compose import build_receiver  # noqa: E402
from llmrel.config import load_settings  # noqa: E402
from llmrel.grafana.provisioning import build_bundle  # noqa: E402
from llmrel.store import connect  # noqa: E402
from tests.grafana.macros import ALL, expand_macros  # noqa: E402

READER_PASSWORD = "bench-reader"
VARIABLES = {"environment": ALL, "service": ALL, "model": ALL, "feature": ALL, "tenant": ALL,
             "daily_budget_usd": "100", "drift_metric": "latency_ms", "trace_id": "0" * 32}


def seed(client, calls: int) -> None:
    """`calls` llm_calls over the last hour: 4 services, 4 models, 2% errors, some unpriced."""
    client.command(
        "INSERT INTO llm_calls (Timestamp, TraceId, SpanId, ServiceName, Environment, Provider, Operation, Model, "
        "RequestModel, ResponseModel, InputTokens, OutputTokens, CostUSD, CostStatus, Duration, StatusCode, "
        "ErrorType, Feature, Tenant, Convention) "
        "SELECT now64(9) - toIntervalMillisecond(number % 3600000), lower(hex(number * 7919)), lower(hex(number)), "
        "['checkout','support-bot','search','agent'][number % 4 + 1], ['prod','staging'][number % 2 + 1], 'openai', "
        "'chat', ['gpt-4o-mini','gpt-4o','o3-mini','custom-llm'][intDiv(number, 4) % 4 + 1], "
        "['gpt-4o-mini','gpt-4o','o3-mini','custom-llm'][intDiv(number, 4) % 4 + 1], '', 100 + number % 900, "
        "20 + number % 400, if(intDiv(number, 4) % 4 = 3, NULL, (100 + number % 900) * 1.5e-7), "
        "if(intDiv(number, 4) % 4 = 3, 'unpriced', 'priced'), (200 + number % 1800) * 1000000, "
        "if(number % 50 = 0, 'Error', 'Unset'), if(number % 50 = 0, 'RateLimitError', ''), "
        "['cart','search-box','faq'][number % 3 + 1], ['acme','globex'][number % 2 + 1], 'genai' "
        f"FROM numbers({calls})", settings={"max_partitions_per_insert_block": 1000})


def dashboard_queries() -> list[tuple[str, str]]:
    now_ms = int(time.time() * 1000)
    queries = []
    for uid, board in build_bundle().dashboards.items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                sql = expand_macros(target["rawSql"], now_ms - 3_600_000, now_ms, 60, VARIABLES)
                queries.append((f"{uid}:{panel['title']}", sql))
    return queries


def timed(run, sql: str, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        started = time.perf_counter()
        run(sql)
        out.append((time.perf_counter() - started) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--users", type=int, default=10, help="dashboard users querying during the ingest run")
    parser.add_argument("--refresh-s", type=float, default=5.0,
                        help="each user reloads a whole dashboard (its panels one after another) this often; 0 = "
                             "back to back")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--spans-per-request", type=int, default=100)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="llmrel-chhttp-bench-"))
    settings = load_settings(clickhouse_url=f"chdb://{data}?database=bench", grpc_endpoint="127.0.0.1:0",
                             http_endpoint="127.0.0.1:0", clickhouse_http_endpoint="127.0.0.1:0",
                             reader_password=READER_PASSWORD, log_level="warning", analyzers_enabled=False,
                             breakers_enabled=False, calls_ttl_days=0, traces_ttl_days=0)
    receiver = build_receiver(settings).start()
    try:
        direct = connect(settings)
        started = time.perf_counter()
        seed(direct, args.calls)
        print(f"seeded {args.calls} llm_calls in {time.perf_counter() - started:.1f} s")
        http = clickhouse_connect.get_client(host="127.0.0.1", port=receiver.clickhouse_http_port,
                                             username="llmrel_reader", password=READER_PASSWORD)
        panels = []
        for name, sql in dashboard_queries():
            http.query(sql)  # warm both paths once
            direct.query(sql)
            via_http, via_store = timed(http.query, sql, args.reps), timed(direct.query, sql, args.reps)
            panels.append({"query": name, "direct_p50_ms": round(pct(via_store, 0.5), 2),
                           "direct_p95_ms": round(pct(via_store, 0.95), 2),
                           "http_p50_ms": round(pct(via_http, 0.5), 2), "http_p95_ms": round(pct(via_http, 0.95), 2),
                           "ratio_p50": round(pct(via_http, 0.5) / max(pct(via_store, 0.5), 1e-6), 2)})
        print(f"{'dashboard query':60}{'direct p50/p95':>18}{'http p50/p95':>18}{'ratio':>7}")
        for p in panels:
            print(f"{p['query'][:60]:60}{p['direct_p50_ms']:>9.1f}/{p['direct_p95_ms']:<8.1f}"
                  f"{p['http_p50_ms']:>9.1f}/{p['http_p95_ms']:<8.1f}{p['ratio_p50']:>7.2f}")
        ratio = statistics.geometric_mean([p["ratio_p50"] for p in panels])
        total_direct = sum(p["direct_p50_ms"] for p in panels)
        total_http = sum(p["http_p50_ms"] for p in panels)
        print(f"geometric mean ratio (http / direct, p50): {ratio:.2f}; all panels p50 sum "
              f"{total_direct:.0f} ms direct, {total_http:.0f} ms over HTTP")

        rng = random.Random(7)
        requests = [build_request(rng, args.spans_per_request) for _ in range(16)]
        quiet = run_load(receiver.grpc_port, requests, args.spans_per_request, processes=1, threads=8,
                         seconds=args.seconds)
        stop = threading.Event()
        query_counts = [0] * args.users
        query_errors = [0] * args.users
        boards: dict[str, list[str]] = {}
        for name, sql in dashboard_queries():
            boards.setdefault(name.split(":")[0], []).append(sql)
        board_list = list(boards.values())

        def user(index: int) -> None:
            client = clickhouse_connect.get_client(host="127.0.0.1", port=receiver.clickhouse_http_port,
                                                   username="llmrel_reader", password=READER_PASSWORD)
            i = index
            while not stop.is_set():
                started = time.monotonic()
                for sql in board_list[i % len(board_list)]:
                    try:
                        client.query(sql)
                        query_counts[index] += 1
                    except Exception:
                        query_errors[index] += 1
                i += 1
                stop.wait(max(0.0, args.refresh_s - (time.monotonic() - started)))
            client.close()

        users = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(args.users)]
        for t in users:
            t.start()
        busy = run_load(receiver.grpc_port, requests, args.spans_per_request, processes=1, threads=8,
                        seconds=args.seconds)
        stop.set()
        for t in users:
            t.join(30)
        quiet_rate, busy_rate = quiet.acked_spans / quiet.seconds, busy.acked_spans / busy.seconds
        ingest = {
            "quiet_spans_per_s": round(quiet_rate), "busy_spans_per_s": round(busy_rate),
            "drop_pct": round(100 * (1 - busy_rate / quiet_rate), 1),
            "quiet_export_p99_ms": round(pct(quiet.latencies_s, 0.99) * 1000, 1),
            "busy_export_p99_ms": round(pct(busy.latencies_s, 0.99) * 1000, 1),
            "quiet_failed_requests": quiet.failed_requests, "busy_failed_requests": busy.failed_requests,
            "dashboard_queries_during_load": sum(query_counts), "dashboard_query_errors": sum(query_errors),
        }
        print(f"ingest alone: {ingest['quiet_spans_per_s']} spans/s (export p99 {ingest['quiet_export_p99_ms']} ms); "
              f"with {args.users} dashboard users (refresh {args.refresh_s} s): "
              f"{ingest['busy_spans_per_s']} spans/s (p99 "
              f"{ingest['busy_export_p99_ms']} ms, {ingest['dashboard_queries_during_load']} queries, "
              f"{ingest['dashboard_query_errors']} errors); drop {ingest['drop_pct']} %; failed exports "
              f"{ingest['quiet_failed_requests']}/{ingest['busy_failed_requests']}")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({
            "date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} cpu", "params": vars(args),
            "panels": panels, "geomean_ratio_http_vs_direct": round(ratio, 3), "ingest": ingest}, indent=2) + "\n")
        print(f"written to {RESULTS.relative_to(ROOT)}")
        http.close()
        direct.close()
    finally:
        receiver.stop()


if __name__ == "__main__":
    main()
