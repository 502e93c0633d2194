"""Realistic LLM spans and a concurrent OTLP/gRPC load generator (used by the ingest benchmark).

Run alone, it sends agent traces once and prints what it sent, e.g. the agent-trace check:

    .venv/bin/python benchmarks/otlp_load.py --port 4317 --convention genai --spans-per-trace 4
    .venv/bin/llmrel report --json    # totals.calls == llm_spans, totals.errors == llm_errors
"""

from __future__ import annotations

import argparse
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


CONVENTIONS = ("openllmetry", "genai", "openinference")


def _id(rng: random.Random, bits: int) -> bytes:
    return rng.getrandbits(bits).to_bytes(bits // 8, "big")


def _as_convention(span: Span, convention: str) -> Span:
    """The Traceloop-shaped chat `span` re-labelled as current GenAI semconv or OpenInference emits it."""
    if convention == "openllmetry":
        return span
    attrs = {kv.key: kv.value for kv in span.attributes}
    text = {k: v.string_value for k, v in attrs.items()}
    if convention == "genai":
        keep = {k: v for k, v in attrs.items() if k not in ("gen_ai.is_streaming", "gen_ai.openai.api_base",
                                                           "gen_ai.usage.total_tokens")}
        keep["server.address"] = AnyValue(string_value="api.openai.com")
        attributes = [KeyValue(key=k, value=v) for k, v in keep.items()]
    else:
        oi = {"openinference.span.kind": "LLM", "llm.provider": "openai", "llm.system": "openai",
              "llm.model_name": text["gen_ai.response.model"],
              "llm.invocation_parameters": json.dumps({"model": text["gen_ai.request.model"], "temperature": 0.2}),
              "llm.token_count.prompt": attrs["gen_ai.usage.input_tokens"].int_value,
              "llm.token_count.completion": attrs["gen_ai.usage.output_tokens"].int_value,
              "llm.finish_reason": "stop", "input.value": text["gen_ai.input.messages"],
              "output.value": text["gen_ai.output.messages"], "user.id": text["user.id"],
              "llmrel.feature": text["llmrel.feature"], "llmrel.tenant": text["llmrel.tenant"]}
        attributes = [_kv(k, v) for k, v in oi.items()]
    out = Span()
    out.CopyFrom(span)
    del out.attributes[:]
    out.attributes.extend(attributes)
    out.name = "ChatCompletion" if convention == "openinference" else f"chat {text['gen_ai.request.model']}"
    return out


def _failed(span: Span, convention: str) -> None:
    """Turn a chat span into a rate-limited one: no response, no usage, status Error."""
    drop = ("gen_ai.response.", "gen_ai.usage.", "gen_ai.output.", "llm.token_count.", "llm.model_name",
            "llm.finish_reason", "output.value")
    kept = [kv for kv in span.attributes if not kv.key.startswith(drop)]
    del span.attributes[:]
    span.attributes.extend(kept)
    if convention != "openinference":
        span.attributes.append(_kv("error.type", "RateLimitError"))
    span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="Error code: 429"))
    span.events.add(time_unix_nano=span.end_time_unix_nano, name="exception", attributes=[
        _kv("exception.type", "openai.RateLimitError"), _kv("exception.message", "Error code: 429")])


def _root(convention: str) -> tuple[str, dict[str, object]]:
    """Name and attributes of the agent/workflow span over a trace's LLM calls."""
    if convention == "genai":
        return "invoke_agent support", {"gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "openai",
                                        "gen_ai.agent.name": "support", "gen_ai.request.model": "gpt-4o-mini"}
    if convention == "openinference":
        return "AgentExecutor", {"openinference.span.kind": "AGENT", "input.value": "help me"}
    return "support.workflow", {"traceloop.span.kind": "workflow", "traceloop.entity.name": "support",
                                "traceloop.workflow.name": "support"}


def trace_spans(rng: random.Random, now_ns: int, convention: str = "openllmetry", spans_per_trace: int = 1,
                error_rate: float = 0.0) -> list[Span]:
    """One trace: with `spans_per_trace` > 1, an agent/workflow root over `spans_per_trace - 1` LLM calls.

    A call fails (rate limited) with probability `error_rate`; the root is then marked Error too, as
    agent frameworks do. Only the calls are LLM calls: `llm_calls` must hold exactly those.
    """
    calls = [_as_convention(llm_span(rng, now_ns), convention) for _ in range(max(1, spans_per_trace - 1))]
    failed = False
    for span in calls:
        if error_rate and rng.random() < error_rate:
            _failed(span, convention)
            failed = True
    if spans_per_trace <= 1:
        return calls[:1]
    trace_id, root_id = _id(rng, 128), _id(rng, 64)
    start = min(s.start_time_unix_nano for s in calls) - 1_000_000
    end = max(s.end_time_unix_nano for s in calls) + 1_000_000
    for span in calls:
        span.trace_id, span.parent_span_id = trace_id, root_id
    name, attrs = _root(convention)
    status = Status(code=Status.STATUS_CODE_ERROR if failed else Status.STATUS_CODE_OK)
    root = Span(trace_id=trace_id, span_id=root_id, name=name, kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=start, end_time_unix_nano=end, status=status,
                attributes=[_kv(k, v) for k, v in attrs.items()])
    return [*calls, root]  # a root ends last, so it is exported after its children


def build_request(rng: random.Random, spans: int, service: str = "support-bot", *, convention: str = "openllmetry",
                  spans_per_trace: int = 1, error_rate: float = 0.0) -> bytes:
    """An export request of `spans` spans (whole traces of `spans_per_trace` spans each)."""
    now = time.time_ns()
    batch: list[Span] = []
    while len(batch) < spans:
        batch += trace_spans(rng, now, convention, spans_per_trace, error_rate)
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=[_kv("service.name", service), _kv("deployment.environment.name", "bench"),
                                      _kv("telemetry.sdk.language", "python")]),
        scope_spans=[ScopeSpans(scope=InstrumentationScope(name="opentelemetry.instrumentation.openai.v1",
                                                           version="0.62.4"),
                                spans=batch)])]).SerializeToString()


def count_llm_spans(body: bytes) -> tuple[int, int, int]:
    """(spans, LLM call spans, failed LLM call spans) of a request built above."""
    request = ExportTraceServiceRequest.FromString(body)
    spans = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    roots = {s.span_id for s in spans if not s.parent_span_id and any(
        s.span_id == c.parent_span_id for c in spans)}
    calls = [s for s in spans if s.span_id not in roots]
    return len(spans), len(calls), sum(s.status.code == Status.STATUS_CODE_ERROR for s in calls)


@dataclass
class LoadResult:
    acked_spans: int
    failed_requests: int
    seconds: float
    latencies_s: list[float]


def _channel(port: int) -> grpc.Channel:
    # A local subchannel pool: each channel is a connection of its own, as separate senders' are.
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20),
                                                               ("grpc.use_local_subchannel_pool", 1)])


def _worker(port: int, requests: list[bytes], spans_per_request: int, threads: int, seconds: float,
            out: mp.Queue, channel_per_thread: bool = False) -> None:
    channel = _channel(port)
    shared = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
    lock = threading.Lock()
    totals = {"acked": 0, "failed": 0}
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    def loop(offset: int) -> None:
        own = _channel(port) if channel_per_thread else None
        export = own.unary_unary(EXPORT, request_serializer=None, response_deserializer=None) if own else shared
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
        if own is not None:
            own.close()

    pool = [threading.Thread(target=loop, args=(t * 7,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    channel.close()
    out.put((totals["acked"], totals["failed"], latencies))


def run_load(port: int, requests: list[bytes], spans_per_request: int, *, processes: int, threads: int,
             seconds: float, channel_per_thread: bool = False) -> LoadResult:
    """Send `requests` round-robin from `processes` x `threads` concurrent exporters for `seconds`
    (each thread on a connection of its own with `channel_per_thread`, else one per process)."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    started = time.monotonic()
    procs = [ctx.Process(target=_worker, args=(port, requests, spans_per_request, threads, seconds, out,
                                                  channel_per_thread))
             for _ in range(processes)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - started
    return LoadResult(sum(r[0] for r in results), sum(r[1] for r in results), elapsed,
                      sorted(x for r in results for x in r[2]))


def main(argv: list[str] | None = None) -> int:
    """Send `--traces` traces once to an OTLP/gRPC receiver and print what was sent as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=4317, help="OTLP/gRPC port on 127.0.0.1")
    parser.add_argument("--convention", choices=CONVENTIONS, default="openllmetry")
    parser.add_argument("--spans-per-trace", type=int, default=1,
                        help="1: lone LLM calls; N > 1: an agent/workflow root over N-1 LLM calls")
    parser.add_argument("--traces", type=int, default=256)
    parser.add_argument("--traces-per-request", type=int, default=16)
    parser.add_argument("--error-rate", type=float, default=0.043, help="share of LLM calls rate-limited")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--service", default="support-bot")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    sent = {"spans": 0, "llm_spans": 0, "llm_errors": 0}
    with grpc.insecure_channel(f"127.0.0.1:{args.port}") as channel:
        export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        for first in range(0, args.traces, args.traces_per_request):
            traces = min(args.traces_per_request, args.traces - first)
            body = build_request(rng, traces * args.spans_per_trace, args.service, convention=args.convention,
                                 spans_per_trace=args.spans_per_trace, error_rate=args.error_rate)
            export(body, timeout=30)
            for key, n in zip(sent, count_llm_spans(body), strict=True):
                sent[key] += n
    print(json.dumps(sent))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
