"""Per-call overhead of the app-side instrumentation, in one process, arms interleaved call by call.

Set-up: the LLM simulator (no latency) and a live `llmrel serve` (own embedded store) run as separate
processes; this process runs the real openai client, instrumented once by the Traceloop openai
instrumentation. Its tracer comes from a switchable provider so each call can go to a different arm:

* `none`        instrumentation suppressed (`_SUPPRESS_INSTRUMENTATION_KEY`): the baseline;
* `traceloop`   Traceloop + a stock SDK pipeline (default sampler, BatchSpanProcessor, OTLP/gRPC);
* `llmrel`      Traceloop + the llmrel pipeline (LlmSampler, enrichment inside `llm_context`,
                PromotingSpanProcessor, ContentPolicyExporter, BatchSpanProcessor, OTLP/gRPC + gzip);
* `traceloop+content` / `llmrel+redacted`: the same pair with prompt/response capture on
  (`TRACELOOP_TRACE_CONTENT=true`; llmrel redacts before export).

Latency is wall time per call on the app thread. CPU per call is process CPU over blocks of
calls of one arm, including a flush of that arm's exporter (so export-thread work is charged to
the arm that caused it). llmrel's own cost is the `llmrel` arm minus the `traceloop` arm, and, free
of network noise, per-op timings of an LLM span on an llmrel vs a stock provider (app thread), plus
the export-thread cost of the content policy per span.

Run: `python benchmarks/instrumentation_overhead.py [--calls 5000]`; writes
`benchmarks/results/instrumentation.json` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["TRACELOOP_METRICS_ENABLED"] = "false"  # llmrel's default; set before instrumenting

import openai
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.instrumentation.utils import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from llmrel_instrumentation import ContentPolicy, InstrumentationConfig, llm_context
from llmrel_instrumentation import content as content_module
from llmrel_instrumentation.distro import create_tracer_provider
from llmrel_instrumentation.enrichment import EnrichmentSpanProcessor, PendingContext
from llmrel_instrumentation.sampling import LlmSampler, PromotingSpanProcessor
from llmrel_instrumentation.streaming import install_stream_guards

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "instrumentation.json"
BIN = Path(sys.executable).parent
ARMS = ("none", "traceloop", "llmrel", "traceloop+content", "llmrel+redacted")
CONTENT_ARMS = frozenset({"traceloop+content", "llmrel+redacted"})
BLOCK = 50  # calls per arm block (CPU accounting); arm order shuffled per round
PROMPT = [{"role": "system", "content": "You are a support agent."},
          {"role": "user", "content": "My order 5521 arrived damaged; mail me at jane@example.com. What now?"}]


class SwitchableTracerProvider(trace.TracerProvider):
    """Hands out tracers that start spans on whichever provider is `current` (one dict lookup)."""

    def __init__(self, providers: dict[str, TracerProvider]) -> None:
        self.providers = providers
        self.current = next(iter(providers))

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _SwitchableTracer(self, {arm: p.get_tracer(*args, **kwargs) for arm, p in self.providers.items()})


class _SwitchableTracer(trace.Tracer):
    def __init__(self, owner: SwitchableTracerProvider, tracers: dict[str, trace.Tracer]) -> None:
        self._owner, self._tracers = owner, tracers

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._tracers[self._owner.current].start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracers[self._owner.current].start_as_current_span(*args, **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_simulator(port: int) -> subprocess.Popen[bytes]:
    code = ("from llmrel.demo import Simulator, SimulatorConfig\n"
            "Simulator(SimulatorConfig(seed=1, latency_median_s=0.0, ttft_median_s=0.0, output_tokens_median=24,"
            f" output_tokens_sigma=0.0, tool_call_rate=0.0)).serve('127.0.0.1', {port})\n")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_receiver(store: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMREL_", "TRACELOOP_"))}
    env["LLMREL_CLICKHOUSE_HTTP_ENDPOINT"] = "127.0.0.1:0"
    return subprocess.Popen([str(BIN / "llmrel"), "serve", "--clickhouse-url", f"chdb://{store}?database=bench",
                             "--grpc-endpoint", f"127.0.0.1:{port}", "--http-endpoint", f"127.0.0.1:{free_port()}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def build_providers(endpoint: str) -> dict[str, TracerProvider]:
    def stock() -> TracerProvider:
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
        return provider

    def ours(policy: ContentPolicy) -> TracerProvider:
        exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, compression=_gzip())
        return create_tracer_provider(exporter, InstrumentationConfig(content=policy))

    return {"none": stock(), "traceloop": stock(), "llmrel": ours(ContentPolicy.OFF),
            "traceloop+content": stock(), "llmrel+redacted": ours(ContentPolicy.REDACTED)}


def _gzip() -> Any:
    from grpc import Compression

    return Compression.Gzip


def time_export_policy() -> list[int]:
    """Wrap `prepare_span` to record export-thread ns per span (content policy incl. redaction)."""
    samples: list[int] = []
    original = content_module.prepare_span

    def timed(span: Any, policy: ContentPolicy, pending: Any = None) -> Any:
        start = time.perf_counter_ns()
        result = original(span, policy, pending)
        samples.append(time.perf_counter_ns() - start)
        return result

    content_module.prepare_span = timed
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(calls: int, stream: bool, client: openai.OpenAI, switch: SwitchableTracerProvider,
        seed: int) -> dict[str, Any]:
    latency: dict[str, list[float]] = {arm: [] for arm in ARMS}
    cpu: dict[str, float] = dict.fromkeys(ARMS, 0.0)
    rng = random.Random(seed)

    def call() -> None:
        if stream:
            for _ in client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, stream=True,
                                                    stream_options={"include_usage": True}):
                pass
        else:
            client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)

    for _ in range(30):  # warm-up: connections, imports, first exports
        for arm in ARMS:
            switch.current = arm
            call()
    rounds = calls // BLOCK
    for _ in range(rounds):
        order = list(ARMS)
        rng.shuffle(order)
        for arm in order:
            switch.current = arm
            os.environ["TRACELOOP_TRACE_CONTENT"] = "true" if arm in CONTENT_ARMS else "false"
            token = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True)) \
                if arm == "none" else None
            cpu_start = time.process_time()
            for _ in range(BLOCK):
                start = time.perf_counter_ns()
                if arm.startswith("llmrel"):
                    with llm_context(feature="refund-bot", tenant="acme", user_id="u-42"):
                        call()
                else:
                    call()
                latency[arm].append((time.perf_counter_ns() - start) / 1000)
            switch.providers[arm].force_flush()
            cpu[arm] += time.process_time() - cpu_start
            if token is not None:
                otel_context.detach(token)
    base = latency["none"]
    result: dict[str, Any] = {}
    for arm in ARMS:
        values = latency[arm]
        row = {"calls": len(values), "p50_us": percentile(values, 0.5), "p99_us": percentile(values, 0.99),
               "cpu_us_per_call": cpu[arm] / len(values) * 1e6}
        if arm != "none":
            row["added_p50_us"] = row["p50_us"] - percentile(base, 0.5)
            row["added_p99_us"] = row["p99_us"] - percentile(base, 0.99)
            row["added_cpu_us_per_call"] = row["cpu_us_per_call"] - cpu["none"] / len(base) * 1e6
        result[arm] = row
    for ours, theirs in (("llmrel", "traceloop"), ("llmrel+redacted", "traceloop+content")):
        result[ours]["vs_traceloop_p50_us"] = result[ours]["p50_us"] - result[theirs]["p50_us"]
        result[ours]["vs_traceloop_p99_us"] = result[ours]["p99_us"] - result[theirs]["p99_us"]
        result[ours]["vs_traceloop_cpu_us"] = result[ours]["cpu_us_per_call"] - result[theirs]["cpu_us_per_call"]
    return result


class _Discard(SpanProcessor):
    """Stands in for the exporting processor: both providers below pay the same (nothing)."""


def measure_hooks(ops: int = 50_000) -> dict[str, float]:
    """llmrel's app-thread cost per LLM span, without network or export thread, per-op timings.

    Stock: default sampler + one processor. llmrel: LlmSampler + EnrichmentSpanProcessor (deferred)
    + PromotingSpanProcessor, inside `llm_context(feature, tenant, user_id)`. Interleaved op by op.
    """
    stock = TracerProvider()
    stock.add_span_processor(_Discard())
    ours = TracerProvider(sampler=LlmSampler(1.0))
    ours.add_span_processor(EnrichmentSpanProcessor(_DrainedPending()))
    ours.add_span_processor(PromotingSpanProcessor(_Discard()))
    attributes = {"gen_ai.operation.name": "chat"}
    stock_tracer, our_tracer = stock.get_tracer("bench"), ours.get_tracer("bench")
    stock_ns: list[int] = []
    our_ns: list[int] = []
    for _ in range(ops):
        start = time.perf_counter_ns()
        stock_tracer.start_span("openai.chat", attributes=attributes).end()
        middle = time.perf_counter_ns()
        with llm_context(feature="refund-bot", tenant="acme", user_id="u-42"):
            our_tracer.start_span("openai.chat", attributes=attributes).end()
        stock_ns.append(middle - start)
        our_ns.append(time.perf_counter_ns() - middle)
    return {"ops": ops, "stock_span_p50_us": percentile(stock_ns, 0.5) / 1000,
            "stock_span_p99_us": percentile(stock_ns, 0.99) / 1000,
            "llmrel_span_p50_us": percentile(our_ns, 0.5) / 1000, "llmrel_span_p99_us": percentile(our_ns, 0.99) / 1000,
            "added_p50_us": (percentile(our_ns, 0.5) - percentile(stock_ns, 0.5)) / 1000,
            "added_p99_us": (percentile(our_ns, 0.99) - percentile(stock_ns, 0.99)) / 1000}


class _DrainedPending(PendingContext):
    """Pending context that is taken right away, as the exporter would (keeps the dict small)."""

    def record(self, span_id: int, values: Any) -> bool:
        super().record(span_id, values)
        self.take(span_id)
        return True


def print_table(results: dict[str, Any]) -> None:
    header = (f"{'mode':<7} {'arm':<18} {'p50 µs':>9} {'p99 µs':>9} {'+p50 µs':>9} {'+p99 µs':>9} "
              f"{'CPU µs':>8} {'+CPU µs':>8} {'vs TL p50':>9} {'vs TL CPU':>9}")
    print(header)
    print("-" * len(header))
    for mode in ("sync", "stream"):
        for arm in ARMS:
            row = results[mode][arm]
            fmt: Callable[[str], str] = lambda key, r=row: f"{r[key]:9.1f}" if key in r else f"{'':>9}"  # noqa: E731
            print(f"{mode:<7} {arm:<18} {fmt('p50_us')} {fmt('p99_us')} {fmt('added_p50_us')} {fmt('added_p99_us')} "
                  f"{row['cpu_us_per_call']:8.1f} {row.get('added_cpu_us_per_call', 0.0):8.1f} "
                  f"{fmt('vs_traceloop_p50_us')} {fmt('vs_traceloop_cpu_us')}")
    hooks = results["llmrel_app_thread_per_llm_span"]
    print(f"llmrel app-thread cost per LLM span (no network; sampler + enrichment + promotion + llm_context): "
          f"+{hooks['added_p50_us']:.1f} µs p50, +{hooks['added_p99_us']:.1f} µs p99 "
          f"(stock span {hooks['stock_span_p50_us']:.1f}/{hooks['stock_span_p99_us']:.1f} µs)")
    export = results["export_thread_policy_us_per_span"]
    print(f"export thread, content policy per span: p50 {export['p50']:.1f} µs, p99 {export['p99']:.1f} µs "
          f"({export['spans']} spans)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000, help="calls per arm and mode (>= 5000 for the report)")
    args = parser.parse_args()
    sim_port, grpc_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        simulator = start_simulator(sim_port)
        receiver = start_receiver(Path(tmp) / "store", grpc_port)
        try:
            wait_for(sim_port)
            wait_for(grpc_port)
            providers = build_providers(f"http://127.0.0.1:{grpc_port}")
            switch = SwitchableTracerProvider(providers)
            OpenAIInstrumentor().instrument(tracer_provider=switch)
            install_stream_guards()
            export_samples = time_export_policy()
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{sim_port}/v1", api_key="sk-bench", max_retries=0)
            results: dict[str, Any] = {
                "sync": run(args.calls, False, client, switch, seed=1),
                "stream": run(args.calls, True, client, switch, seed=2),
            }
            for provider in providers.values():
                provider.shutdown()
            results["llmrel_app_thread_per_llm_span"] = measure_hooks()
            results["export_thread_policy_us_per_span"] = {
                "spans": len(export_samples), "p50": percentile(export_samples, 0.5) / 1000,
                "p99": percentile(export_samples, 0.99) / 1000}
        finally:
            for process in (simulator, receiver):
                process.terminate()
                process.wait(30)
    results["setup"] = {
        "calls_per_arm_and_mode": args.calls, "block": BLOCK, "python": platform.python_version(),
        "cpus": os.cpu_count(), "openai": openai.__version__,
        "receiver": "llmrel serve (embedded chDB) over OTLP/gRPC on loopback",
        "note": "arms interleaved in shuffled blocks of 50 calls in one process; CPU includes a flush per block",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
