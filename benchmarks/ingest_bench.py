"""Ingest benchmark: acked spans/s, export latency, receiver RSS and ack-to-queryable delay of
`llmrel serve` on the embedded store, against two baselines measured in the same run: a parse-only
Python OTLP receiver (the protocol ceiling) and the embedded store absorbing the same rows,
prepared beforehand (the storage ceiling). Figures are printed and written to
benchmarks/results/ingest.json.

    .venv/bin/python benchmarks/ingest_bench.py [--seconds 15] [--spans-per-request 100] [--threads 8]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import httpx

sys.path.insert(0, str(Path(__file__).parent))
from otlp_load import EXPORT, build_request, run_load

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "ingest.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


def measure_parse_only(requests: list[bytes], args: argparse.Namespace) -> dict:
    proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "parse_only_server.py")],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        result = run_load(port, requests, args.spans_per_request, processes=args.processes,
                          threads=args.threads, seconds=args.seconds)
        rss = peak_rss_mib(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    return {"acked_spans_per_s": result.acked_spans / result.seconds, "failed_requests": result.failed_requests,
            "export_p50_ms": pct(result.latencies_s, 0.5), "export_p99_ms": pct(result.latencies_s, 0.99),
            "peak_rss_mib": rss}


def measure_store_ceiling(requests: list[bytes], args: argparse.Namespace) -> dict:
    """The embedded engine alone: the same rows, prepared beforehand, inserted in commits of
    `threads` requests (as group commit forms them under this load), background merges included."""
    from llmrel.config import load_settings
    from llmrel.model import LLM_CALL_COLUMNS, SPAN_COLUMNS
    from llmrel.receiver.prepare import PrepareConfig, Preparer
    from llmrel.receiver.server import _column_types
    from llmrel.store import connect, migrate

    data = Path(tempfile.mkdtemp(prefix="llmrel-bench-store-"))
    settings = load_settings(clickhouse_url=f"chdb://{data}", analyzers_enabled=False)
    client = connect(settings)
    migrate(client, settings)
    preparer = Preparer(PrepareConfig("full", None, _column_types(client, "otel_traces", SPAN_COLUMNS),
                                      _column_types(client, "llm_calls", LLM_CALL_COLUMNS)))
    prepared = [preparer.prepare(body, False) for body in requests]
    batch = args.threads * args.processes
    stored, i = 0, 0
    started = time.monotonic()
    while time.monotonic() - started < args.seconds:
        rows = [prepared[(i + k) % len(prepared)] for k in range(batch)]
        i += batch
        client.raw_insert("llm_calls", list(LLM_CALL_COLUMNS), insert_block=b"".join(r.calls_native for r in rows),
                          fmt="Native")
        client.raw_insert("otel_traces", list(SPAN_COLUMNS), insert_block=b"".join(r.spans_native for r in rows),
                          fmt="Native")
        stored += sum(r.span_count for r in rows)
    elapsed = time.monotonic() - started
    client.close()
    shutil.rmtree(data, ignore_errors=True)
    return {"stored_spans_per_s": stored / elapsed, "spans_per_commit": batch * args.spans_per_request}


def sample_ack_to_queryable(grpc_port: int, http_port: int, stop: threading.Event, out: list[float]) -> None:
    """Every 0.5 s: export one marked span, then poll the trace API until it is visible."""
    rng = random.Random(99)
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=30) as api:
        while not stop.wait(0.5):
            body = build_request(rng, 1, service="probe")
            trace_id = ExportTraceServiceRequest.FromString(body).resource_spans[0].scope_spans[0].spans[0] \
                .trace_id.hex()
            try:
                export(body, timeout=30)
            except grpc.RpcError:
                continue
            acked = time.perf_counter()
            while not api.get(f"/api/v1/traces/{trace_id}").json()["spans"]:
                time.sleep(0.01)
            out.append(time.perf_counter() - acked)
    channel.close()


def measure_llmrel(requests: list[bytes], args: argparse.Namespace) -> dict:
    data = Path(tempfile.mkdtemp(prefix="llmrel-bench-"))
    grpc_port, http_port = free_port(), free_port()
    env = {**os.environ, "LLMREL_CLICKHOUSE_URL": f"chdb://{data}", "LLMREL_GRPC_ENDPOINT": f"127.0.0.1:{grpc_port}",
           "LLMREL_HTTP_ENDPOINT": f"127.0.0.1:{http_port}", "LLMREL_LOG_LEVEL": "warning",
           "LLMREL_CLICKHOUSE_HTTP_ENDPOINT": "127.0.0.1:0"}
    proc = subprocess.Popen([str(Path(sys.executable).with_name("llmrel")), "serve"], env=env)
    try:
        for _ in range(240):
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        delays: list[float] = []
        stop = threading.Event()
        sampler = threading.Thread(target=sample_ack_to_queryable, args=(grpc_port, http_port, stop, delays))
        sampler.start()
        result = run_load(grpc_port, requests, args.spans_per_request, processes=args.processes,
                          threads=args.threads, seconds=args.seconds)
        stop.set()
        sampler.join()
        rss = peak_rss_mib(proc.pid)
        report = httpx.get(f"http://127.0.0.1:{http_port}/api/v1/report", params={"since": "3650d"},
                           timeout=120).json()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        shutil.rmtree(data, ignore_errors=True)
    delays.sort()
    return {"acked_spans_per_s": result.acked_spans / result.seconds, "failed_requests": result.failed_requests,
            "acked_spans": result.acked_spans, "stored_llm_calls": report["totals"]["calls"] - len(delays),
            "export_p50_ms": pct(result.latencies_s, 0.5), "export_p99_ms": pct(result.latencies_s, 0.99),
            "peak_rss_mib": rss, "ack_to_queryable_p50_ms": pct(delays, 0.5),
            "ack_to_queryable_p99_ms": pct(delays, 0.99), "ack_to_queryable_samples": len(delays)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--spans-per-request", type=int, default=100)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(42)
    requests = [build_request(rng, args.spans_per_request) for _ in range(32)]
    ceiling = measure_parse_only(requests, args)
    llmrel = measure_llmrel(requests, args)
    store = measure_store_ceiling(requests, args)
    ratio = llmrel["acked_spans_per_s"] / ceiling["acked_spans_per_s"]
    store_ratio = llmrel["acked_spans_per_s"] / store["stored_spans_per_s"]
    results = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} cpu",
               "params": vars(args), "parse_only_ceiling": ceiling, "store_ceiling": store, "llmrel_serve": llmrel,
               "throughput_ratio_vs_parse_only": round(ratio, 3),
               "throughput_ratio_vs_store_ceiling": round(store_ratio, 3)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'':28}{'parse-only':>14}{'llmrel serve':>14}")
    for key, label in (("acked_spans_per_s", "acked spans/s"), ("export_p50_ms", "export p50 ms"),
                       ("export_p99_ms", "export p99 ms"), ("peak_rss_mib", "peak RSS MiB")):
        print(f"{label:28}{ceiling[key]:>14.1f}{llmrel[key]:>14.1f}")
    print(f"{'ratio vs parse-only':28}{'':>14}{ratio:>14.2f}")
    print(f"{'embedded store alone, spans/s':28}{store['stored_spans_per_s']:>14.1f}")
    print(f"{'ratio vs store alone':28}{'':>14}{store_ratio:>14.2f}")
    print(f"{'ack-to-queryable p50/p99 ms':28}{'':>14}"
          f"{llmrel['ack_to_queryable_p50_ms']:>7.1f}/{llmrel['ack_to_queryable_p99_ms']:.1f}")
    print(f"acked {llmrel['acked_spans']} spans, stored {llmrel['stored_llm_calls']} llm_calls; "
          f"failed requests {llmrel['failed_requests']}; written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
