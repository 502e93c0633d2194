"""Ingest benchmark: acked spans/s, export latency, process-tree RSS and CPU, and ack-to-queryable delay
of `llmrel serve` on the embedded store, against two baselines measured in the same run: a parse-only
Python OTLP receiver that decodes every span into Python values (the ceiling; `parse_only_server.py`)
and the embedded store absorbing the same rows, prepared beforehand (the storage ceiling). Also:
many small senders (1-span exports from `--small-clients` clients), idle CPU, and where a span's
time goes stage by stage (`ingest_stages.py`). Figures are printed and written to
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
from ingest_stages import measure_stages
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


def _tree(pid: int) -> list[int]:
    """`pid` and all its descendants (ingest workers, the resource tracker)."""
    pids, i = [pid], 0
    while i < len(pids):
        for task in Path(f"/proc/{pids[i]}/task").glob("*/children"):
            pids += [int(c) for c in task.read_text().split()]
        i += 1
    return pids


def tree_field_mib(pid: int, proc_file: str, field: str) -> float:
    """Sum of one kB field of `/proc/<pid>/<proc_file>` over the process tree, in MiB."""
    total = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/{proc_file}").read_text().splitlines():
                if line.startswith(field):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def tree_rss_mib(pid: int) -> float:
    return tree_field_mib(pid, "status", "VmRSS:")


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` and its living descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / ticks


class RssSampler:
    """Peak RSS of a process tree, sampled every 100 ms while running."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, tree_rss_mib(self.pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


def measure_parse_only(requests: list[bytes], args: argparse.Namespace) -> dict:
    proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "parse_only_server.py"), "127.0.0.1:0",
                             str(args.grpc_threads)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        cpu = tree_cpu_s(proc.pid)
        result = run_load(port, requests, args.spans_per_request, processes=args.processes,
                          threads=args.threads, seconds=args.seconds)
        cpu = tree_cpu_s(proc.pid) - cpu
        rss = peak_rss_mib(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    return {"acked_spans_per_s": result.acked_spans / result.seconds, "failed_requests": result.failed_requests,
            "export_p50_ms": pct(result.latencies_s, 0.5), "export_p99_ms": pct(result.latencies_s, 0.99),
            "peak_rss_mib": rss, "cpu_s_per_1k_spans": round(cpu / max(1, result.acked_spans) * 1000, 3)}


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
        rows = [prepared[(i + k) % len(prepared)].blocks[0] for k in range(batch)]
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


def commit_counters(http_port: int) -> tuple[float, float, float]:
    """(group commits, spans committed, seconds spent inserting) so far, from serve's /metrics."""
    wanted = {"llmrel_batch_spans_count": 0.0, "llmrel_batch_spans_sum": 0.0,
              "llmrel_insert_duration_seconds_sum": 0.0}
    for line in httpx.get(f"http://127.0.0.1:{http_port}/metrics", timeout=10).text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            wanted[name] = float(value)
    return tuple(wanted.values())  # type: ignore[return-value]


def wait_until_quiet(http_port: int, timeout_s: float = 90) -> float:
    """Seconds until serve has no export queued and no committed batch waiting for the analyzers
    (so the next arm measures ingest, not the previous arm's analysis catching up)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        gauges = {}
        for line in httpx.get(f"http://127.0.0.1:{http_port}/metrics", timeout=10).text.splitlines():
            name, _, value = line.partition(" ")
            if name in ("llmrel_queue_depth", "llmrel_analyzer_queue_depth"):
                gauges[name] = float(value)
        if gauges and not any(gauges.values()):
            break
        time.sleep(0.2)
    return round(time.monotonic() - started, 1)


def commit_stats(before: tuple[float, float, float], after: tuple[float, float, float]) -> dict:
    commits, spans, seconds = (a - b for a, b in zip(after, before, strict=True))
    return {"commits": int(commits), "spans_per_commit": round(spans / commits, 1) if commits else 0,
            "commit_ms_mean": round(seconds / commits * 1000, 1) if commits else 0}


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
        time.sleep(2)  # start-up work settles
        idle_rss = tree_rss_mib(proc.pid)
        cpu = tree_cpu_s(proc.pid)
        time.sleep(args.idle_seconds)
        idle_cpu = (tree_cpu_s(proc.pid) - cpu) / args.idle_seconds
        delays: list[float] = []
        stop = threading.Event()
        sampler = threading.Thread(target=sample_ack_to_queryable, args=(grpc_port, http_port, stop, delays))
        sampler.start()
        with RssSampler(proc.pid) as rss_sampler:
            cpu = tree_cpu_s(proc.pid)
            counters = commit_counters(http_port)
            result = run_load(grpc_port, requests, args.spans_per_request, processes=args.processes,
                              threads=args.threads, seconds=args.seconds)
            cpu = tree_cpu_s(proc.pid) - cpu
            stop.set()
            sampler.join()
            drained_s = wait_until_quiet(http_port)
            after_load = commit_counters(http_port)
            load_commits = commit_stats(counters, after_load)
            small_cpu = tree_cpu_s(proc.pid)
            small = run_load(grpc_port, [build_request(random.Random(i), 1) for i in range(64)], 1,
                             processes=2, threads=args.small_clients // 2, seconds=args.small_seconds,
                             channel_per_thread=True)
            small_cpu = tree_cpu_s(proc.pid) - small_cpu
            small_commits = commit_stats(after_load, commit_counters(http_port))
        after_rss = tree_rss_mib(proc.pid)
        report = httpx.get(f"http://127.0.0.1:{http_port}/api/v1/report", params={"since": "3650d"},
                           timeout=120).json()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        shutil.rmtree(data, ignore_errors=True)
    delays.sort()
    return {"acked_spans_per_s": result.acked_spans / result.seconds, "failed_requests": result.failed_requests,
            "acked_spans": result.acked_spans,
            "stored_llm_calls": report["totals"]["calls"] - len(delays) - small.acked_spans,
            "export_p50_ms": pct(result.latencies_s, 0.5), "export_p99_ms": pct(result.latencies_s, 0.99),
            "cpu_s_per_1k_spans": round(cpu / max(1, result.acked_spans) * 1000, 3),
            "peak_rss_mib": rss_sampler.peak, "idle_rss_mib": idle_rss, "rss_after_load_mib": after_rss,
            "idle_cpu_share_of_core": round(idle_cpu, 4), "idle_seconds": args.idle_seconds,
            "ack_to_queryable_p50_ms": pct(delays, 0.5),
            "ack_to_queryable_p99_ms": pct(delays, 0.99), "ack_to_queryable_samples": len(delays),
            "group_commits": load_commits,
            "small_senders": {"clients": args.small_clients,
                              "one_span_exports_per_s": small.acked_spans / small.seconds,
                              "failed_requests": small.failed_requests, "export_p50_ms": pct(small.latencies_s, 0.5),
                              "export_p99_ms": pct(small.latencies_s, 0.99),
                              "cpu_ms_per_export": round(small_cpu / max(1, small.acked_spans) * 1000, 2),
                              "started_after_analyzers_drained_s": drained_s,
                              "group_commits": small_commits}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--spans-per-request", type=int, default=100)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--grpc-threads", type=int, default=16, help="thread pool of the parse-only server")
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument("--small-clients", type=int, default=200)
    parser.add_argument("--small-seconds", type=float, default=8)
    parser.add_argument("--stages-only", action="store_true", help="only the per-stage breakdown")
    args = parser.parse_args()
    rng = random.Random(42)
    requests = [build_request(rng, args.spans_per_request) for _ in range(32)]
    stages = measure_stages(requests, batch=args.threads * args.processes)
    if args.stages_only:
        print(json.dumps(stages, indent=2))
        return
    ceiling = measure_parse_only(requests, args)
    llmrel = measure_llmrel(requests, args)
    store = measure_store_ceiling(requests, args)
    ratio = llmrel["acked_spans_per_s"] / ceiling["acked_spans_per_s"]
    store_ratio = llmrel["acked_spans_per_s"] / store["stored_spans_per_s"]
    results = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} cpu",
               "params": vars(args), "stages": stages, "parse_only_ceiling": ceiling,
               "store_ceiling": store, "llmrel_serve": llmrel,
               "throughput_ratio_vs_parse_only": round(ratio, 3),
               "throughput_ratio_vs_store_ceiling": round(store_ratio, 3)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print("us per span by stage:", json.dumps(stages["us_per_span"]))
    print(f"{'':28}{'parse-only':>14}{'llmrel serve':>14}")
    for key, label in (("acked_spans_per_s", "acked spans/s"), ("export_p50_ms", "export p50 ms"),
                       ("export_p99_ms", "export p99 ms"), ("peak_rss_mib", "peak RSS MiB (tree)"),
                       ("cpu_s_per_1k_spans", "CPU s per 1k spans")):
        print(f"{label:28}{ceiling[key]:>14.1f}{llmrel[key]:>14.1f}")
    print(f"{'ratio vs parse-only':28}{'':>14}{ratio:>14.2f}")
    print(f"{'embedded store alone, spans/s':28}{store['stored_spans_per_s']:>14.1f}")
    print(f"{'ratio vs store alone':28}{'':>14}{store_ratio:>14.2f}")
    print(f"{'ack-to-queryable p50/p99 ms':28}{'':>14}"
          f"{llmrel['ack_to_queryable_p50_ms']:>7.1f}/{llmrel['ack_to_queryable_p99_ms']:.1f}")
    small = llmrel["small_senders"]
    print(f"{'1-span exports/s, p99 ms':28}{'':>14}{small['one_span_exports_per_s']:>7.0f}/{small['export_p99_ms']:.0f}"
          f"  ({small['clients']} clients, {small['failed_requests']} failed)")
    print(f"{'idle RSS MiB / idle CPU':28}{'':>14}{llmrel['idle_rss_mib']:>7.0f}/"
          f"{llmrel['idle_cpu_share_of_core']:.3%} of a core")
    print(f"{'spans per commit (load / small senders)':28}{'':>14}{llmrel['group_commits']['spans_per_commit']:>7}/"
          f"{small['group_commits']['spans_per_commit']}")
    print(f"acked {llmrel['acked_spans']} spans, stored {llmrel['stored_llm_calls']} llm_calls; "
          f"failed requests {llmrel['failed_requests']}; written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
