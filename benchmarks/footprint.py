"""Footprint of `llmrel serve` with default settings: process-tree CPU at rest (no traffic) and at a
trickle of 10 spans/s, RSS at rest, peak RSS under full load and RSS after it. Targets (issue 12):
idle ≤ 1% of a core, 10 spans/s ≤ 3% of a core, ≤ 512 MiB RSS at rest and under load.

10 spans/s is sent in two shapes: as an OpenTelemetry SDK's batch span processor sends it with its
default schedule (one 50-span export every 5 s), and as small frequent exports (5 spans twice a
second, e.g. a collector or an SDK with a short schedule), since a commit's fixed cost dominates.

With `--baseline REF` the same phases run in the same run against the code of git revision REF
(extracted with `git archive`, run from its source folders): idle and trickle phases of both side
by side, full-load phases one after the other. Figures are printed and written to
benchmarks/results/footprint.json.

    .venv/bin/python benchmarks/footprint.py [--baseline main] [--idle-seconds 60] [--trickle-seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).parent))
from ingest_bench import RssSampler, _tree, tree_cpu_s, tree_field_mib, tree_rss_mib
from otlp_load import EXPORT, build_request, run_load

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "footprint.json"
_SOURCE_DIRS = ("core/src", "src", "otlp-receiver/src", "analyzers/src", "actions/src", "intel/src", "grafana/src")
_LISTENING = re.compile(r"OTLP/gRPC :(\d+), OTLP/HTTP \+ API :(\d+)")


def tree_pss_mib(pid: int) -> float:
    """Proportional set size of the tree (shared pages counted once across its processes)."""
    return tree_field_mib(pid, "smaps_rollup", "Pss:")


class Serve:
    """One `llmrel serve` with default settings (own store, ports chosen by the OS)."""

    def __init__(self, label: str, source: Path | None) -> None:
        self.label = label
        self.data = Path(tempfile.mkdtemp(prefix=f"llmrel-footprint-{label}-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMREL_")}
        env.update(LLMREL_CLICKHOUSE_URL=f"chdb://{self.data}", LLMREL_GRPC_ENDPOINT="127.0.0.1:0",
                   LLMREL_HTTP_ENDPOINT="127.0.0.1:0", LLMREL_CLICKHOUSE_HTTP_ENDPOINT="127.0.0.1:0",
                   LLMREL_LOG_LEVEL="warning")
        if source is not None:  # that revision's source folders ahead of the installed ones
            env["PYTHONPATH"] = os.pathsep.join(str(source / d) for d in _SOURCE_DIRS)
        self.proc = subprocess.Popen([sys.executable, "-c", "from llmrel.cli import main; main()", "serve"],
                                     env=env, stderr=subprocess.PIPE, text=True)
        self.grpc_port = self.http_port = 0
        for line in self.proc.stderr:
            if match := _LISTENING.search(line):
                self.grpc_port, self.http_port = int(match.group(1)), int(match.group(2))
                break
        if not self.grpc_port:
            raise RuntimeError(f"{label}: serve did not start (exit {self.proc.wait()})")
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # drain the rest

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.data, ignore_errors=True)


def cpu_share(serves: list[Serve], seconds: float) -> dict[str, float]:
    """Share of one core each tree used over `seconds` (measured side by side)."""
    before = {s.label: tree_cpu_s(s.pid) for s in serves}
    time.sleep(seconds)
    return {s.label: round((tree_cpu_s(s.pid) - before[s.label]) / seconds, 4) for s in serves}


def trickle(serve: Serve, spans_per_s: float, spans_per_request: int, stop: threading.Event, sent: list[int]) -> None:
    """`spans_per_s` in requests of `spans_per_request` spans, evenly spaced, until `stop`."""
    rng = random.Random(7)
    channel = grpc.insecure_channel(f"127.0.0.1:{serve.grpc_port}")
    export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
    interval, start, i = spans_per_request / spans_per_s, time.monotonic(), 0
    while not stop.wait(max(0.0, start + i * interval - time.monotonic())):
        export(build_request(rng, spans_per_request), timeout=30)
        sent[0] += spans_per_request
        i += 1
    channel.close()


def export_once(serve: Serve, spans: int = 5) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{serve.grpc_port}") as channel:
        channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)(
            build_request(random.Random(3), spans), timeout=30)


def measure(serves: list[Serve], args: argparse.Namespace) -> dict[str, dict]:
    out: dict[str, dict] = {s.label: {} for s in serves}
    time.sleep(args.settle_seconds)  # start-up work (migrations, first merges) settles
    for s in serves:
        out[s.label].update(rest_rss_mib=round(tree_rss_mib(s.pid), 1), rest_pss_mib=round(tree_pss_mib(s.pid), 1),
                            processes=len(_tree(s.pid)),
                            threads=sum(len(list(Path(f"/proc/{p}/task").iterdir())) for p in _tree(s.pid)))
    for label, share in cpu_share(serves, args.idle_seconds).items():
        out[label]["idle_cpu_share_of_core"] = share
    before = {s.label: tree_cpu_s(s.pid) for s in serves}
    for s in serves:  # one export, then its one-off work (libraries loaded on first use) settles
        export_once(s)
    time.sleep(args.settle_seconds)
    for s in serves:
        out[s.label]["first_export_one_off_cpu_s"] = round(tree_cpu_s(s.pid) - before[s.label], 2)
    for key, spans_per_request in (("cpu_share_of_core_at_10_spans_per_s", 50),
                                   ("cpu_share_of_core_at_10_spans_per_s_small_exports", 5)):
        stop, sent = threading.Event(), {s.label: [0] for s in serves}
        senders = [threading.Thread(target=trickle, args=(s, 10.0, spans_per_request, stop, sent[s.label]))
                   for s in serves]
        for t in senders:
            t.start()
        time.sleep(2)  # the first requests' one-off work (first parts of each table)
        for label, share in cpu_share(serves, args.trickle_seconds).items():
            out[label][key] = share
            out[label][key.replace("cpu_share_of_core", "spans_sent")] = sent[label][0]
        stop.set()
        for t in senders:
            t.join()
    rng = random.Random(42)
    requests = [build_request(rng, args.spans_per_request) for _ in range(32)]
    for s in serves:  # one at a time, each stopped after its load (its merges would slow the next)
        with RssSampler(s.pid) as sampler:
            load = run_load(s.grpc_port, requests, args.spans_per_request, processes=1, threads=args.threads,
                            seconds=args.load_seconds)
        time.sleep(args.settle_seconds)
        out[s.label].update(load_acked_spans_per_s=round(
            load.acked_spans / load.seconds, 1), load_failed_requests=load.failed_requests,
            peak_rss_mib=round(sampler.peak, 1), rss_after_load_mib=round(tree_rss_mib(s.pid), 1),
            pss_after_load_mib=round(tree_pss_mib(s.pid), 1))
        s.stop()
    return out


def extract(ref: str) -> Path:
    target = Path(tempfile.mkdtemp(prefix="llmrel-footprint-src-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="git revision measured alongside, in the same run")
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--trickle-seconds", type=float, default=30, help="per trickle shape")
    parser.add_argument("--load-seconds", type=float, default=15)
    parser.add_argument("--spans-per-request", type=int, default=100)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--settle-seconds", type=float, default=8)
    args = parser.parse_args()
    source = extract(args.baseline) if args.baseline else None
    serves: list[Serve] = []
    try:
        if source is not None:
            serves.append(Serve("baseline", source))
        serves.append(Serve("current", None))
        results = measure(serves, args)
    finally:
        for s in serves:
            s.stop()
        if source is not None:
            shutil.rmtree(source, ignore_errors=True)
    record = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} cpu",
              "load_average_1m": round(os.getloadavg()[0], 2), "params": vars(args),
              "targets": {"idle_cpu_share_of_core": 0.01, "cpu_share_of_core_at_10_spans_per_s": 0.03,
                          "rss_mib": 512}, **results}
    if source is not None:
        base, cur = results["baseline"], results["current"]
        record["ratios_current_to_baseline"] = {k: round(cur[k] / base[k], 3) for k in (
            "idle_cpu_share_of_core", "cpu_share_of_core_at_10_spans_per_s",
            "cpu_share_of_core_at_10_spans_per_s_small_exports", "rest_rss_mib", "peak_rss_mib",
            "rss_after_load_mib") if base[k]}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    labels = list(results)
    print(f"{'':34}" + "".join(f"{label:>12}" for label in labels))
    for key, label in (("idle_cpu_share_of_core", "idle CPU, share of a core"),
                       ("cpu_share_of_core_at_10_spans_per_s", "CPU, 10 spans/s as 50 every 5 s"),
                       ("cpu_share_of_core_at_10_spans_per_s_small_exports", "CPU, 10 spans/s as 5 twice a s"),
                       ("rest_rss_mib", "RSS at rest MiB (tree)"), ("rest_pss_mib", "PSS at rest MiB (tree)"),
                       ("peak_rss_mib", "peak RSS under load MiB"), ("rss_after_load_mib", "RSS after load MiB"),
                       ("load_acked_spans_per_s", "full load, acked spans/s"), ("threads", "threads at rest")):
        print(f"{label:34}" + "".join(f"{results[lb][key]:>12}" for lb in labels))
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
