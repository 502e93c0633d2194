"""Realistic LLM spans and a concurrent OTLP/gRPC load generator (used by the ingest benchmark)."""

from __future__ import annotations

import json
import multiprocessing as mp
import random
import threading
import time
from dataclasses import dataclass

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet-20241022", "text-embedding-3-small")
WORDS = "the order refund account is ready we can help with your request please confirm".split()  # noqa: SIM905


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        v = AnyValue(bool_value=value)
    elif isinstance(value, int):
        v = AnyValue(int_value=value)
    elif isinstance(value, float):
        v = AnyValue(double_value=value)
    elif isinstance(value, list):
        v = AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=x) for x in value]))
    else:
        v = AnyValue(string_value=str(value))
    return KeyValue(key=key, value=v)


def llm_span(rng: random.Random, now_ns: int) -> Span:
    """A chat span as the Traceloop openai instrumentation emits it (about 25 attributes, content on)."""
    model = rng.choice(MODELS[:3])
    prompt = " ".join(rng.choices(WORDS, k=rng.randint(20, 80)))
    answer = " ".join(rng.choices(WORDS, k=rng.randint(10, 60)))
    duration = int(rng.lognormvariate(-0.5, 0.6) * 1e9)
    attrs = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": model,
        "gen_ai.response.model": model + "-2024-08-06", "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 512, "gen_ai.is_streaming": False,
        "gen_ai.openai.api_base": "https://api.openai.com/v1/",
        "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(64):x}",
        "gen_ai.response.finish_reasons": ["stop"], "gen_ai.usage.input_tokens": rng.randint(50, 2000),
        "gen_ai.usage.output_tokens": rng.randint(5, 600), "gen_ai.usage.total_tokens": 0,
        "gen_ai.usage.cache_read.input_tokens": 0, "gen_ai.usage.reasoning_tokens": 0,
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": prompt}]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": answer}],
                                               "finish_reason": "stop"}]),
        "llmrel.feature": rng.choice(("refund-bot", "summarizer", "extractor")),
        "llmrel.tenant": f"tenant-{rng.randint(1, 50)}", "user.id": f"user-{rng.randint(1, 5000)}",
    }
    start = now_ns - duration
    return Span(trace_id=rng.getrandbits(128).to_bytes(16, "big"), span_id=rng.getrandbits(64).to_bytes(8, "big"),
                name="openai.chat", kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start,
                end_time_unix_nano=start + duration, attributes=[_kv(k, v) for k, v in attrs.items()],
                status=Status(code=Status.STATUS_CODE_OK))


def build_request(rng: random.Random, spans: int, service: str = "support-bot") -> bytes:
    now = time.time_ns()
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=[_kv("service.name", service), _kv("deployment.environment.name", "bench"),
                                      _kv("telemetry.sdk.language", "python")]),
        scope_spans=[ScopeSpans(scope=InstrumentationScope(name="opentelemetry.instrumentation.openai.v1",
                                                           version="0.62.4"),
                                spans=[llm_span(rng, now) for _ in range(spans)])])]).SerializeToString()


@dataclass
class LoadResult:
    acked_spans: int
    failed_requests: int
    seconds: float
    latencies_s: list[float]


def _worker(port: int, requests: list[bytes], spans_per_request: int, threads: int, seconds: float,
            out: mp.Queue) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)])
    export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
    lock = threading.Lock()
    totals = {"acked": 0, "failed": 0}
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    def loop(offset: int) -> None:
        i = offset
        while time.monotonic() < deadline:
            body = requests[i % len(requests)]
            i += 1
            started = time.perf_counter()
            try:
                export(body, timeout=30)
            except grpc.RpcError:
                with lock:
                    totals["failed"] += 1
                time.sleep(0.05)
                continue
            elapsed = time.perf_counter() - started
            with lock:
                totals["acked"] += spans_per_request
                latencies.append(elapsed)

    pool = [threading.Thread(target=loop, args=(t * 7,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    channel.close()
    out.put((totals["acked"], totals["failed"], latencies))


def run_load(port: int, requests: list[bytes], spans_per_request: int, *, processes: int, threads: int,
             seconds: float) -> LoadResult:
    """Send `requests` round-robin from `processes` x `threads` concurrent exporters for `seconds`."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    started = time.monotonic()
    procs = [ctx.Process(target=_worker, args=(port, requests, spans_per_request, threads, seconds, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - started
    return LoadResult(sum(r[0] for r in results), sum(r[1] for r in results), elapsed,
                      sorted(x for r in results for x in r[2]))
