"""The demo app against the simulator, in process and as `llmrel demo` under `opentelemetry-instrument`."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import httpx
import openai
import pytest
from opentelemetry import baggage
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from llmrel.demo import Simulator, SimulatorConfig
from llmrel.demo.app import business_context, run_demo

FAST = SimulatorConfig(seed=2, latency_median_s=0.0, ttft_median_s=0.0)


def test_business_context_puts_feature_tenant_and_user_into_baggage() -> None:
    with business_context("support-bot", "acme", "acme-user-7"):
        assert baggage.get_all() == {"llmrel.feature": "support-bot", "llmrel.tenant": "acme",
                                     "user.id": "acme-user-7"}
    assert dict(baggage.get_all()) == {}


def test_demo_traffic_is_reproducible_and_reaches_every_endpoint() -> None:
    def run(seed: int) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        with Simulator(FAST).run() as sim:
            stats = run_demo(sim.base_url, calls=24, rate=1000.0, seed=seed, concurrency=4)
            served = sim.state()["requests"]
        return dict(stats.by_feature), dict(stats.outcomes), served

    features, outcomes, served = run(seed=4)
    assert run(seed=4) == (features, outcomes, served)
    assert set(features) == {"support-bot", "summarizer", "ticket-extractor", "kb-search"}
    assert outcomes == {"ok": 24}
    assert served["ok"] >= 24


class _CapturingTraceService(trace_service_pb2_grpc.TraceServiceServicer):
    """Collects exported spans over real OTLP/gRPC. It stands in for the llmrel receiver, which the ingest
    tests cover; here only the demo's telemetry wiring is under test."""

    def __init__(self) -> None:
        self.resource_spans: list[ResourceSpans] = []
        self._lock = threading.Lock()

    def Export(self, request: trace_service_pb2.ExportTraceServiceRequest,
               context: grpc.ServicerContext) -> trace_service_pb2.ExportTraceServiceResponse:
        with self._lock:
            self.resource_spans.extend(request.resource_spans)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def otlp_sink() -> Iterator[tuple[str, _CapturingTraceService]]:
    service = _CapturingTraceService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}", service
    server.stop(grace=None)


def test_llmrel_demo_sends_llm_spans_per_service(otlp_sink: tuple[str, _CapturingTraceService]) -> None:
    endpoint, service = otlp_sink
    llmrel = Path(sys.executable).with_name("llmrel")
    done = subprocess.run([str(llmrel), "demo", "--receiver", endpoint, "--calls", "12", "--rate", "100",
                           "--seed", "3"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    models_by_service: dict[str, set[str]] = {}
    traces_with_llm_call: set[bytes] = set()
    demo_request_traces: set[bytes] = set()
    for resource_spans in service.resource_spans:
        name = next(a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = {a.key: a.value.string_value for a in span.attributes}
                if "gen_ai.request.model" in attributes:
                    models_by_service.setdefault(name, set()).add(attributes["gen_ai.request.model"])
                    traces_with_llm_call.add(span.trace_id)
                if scope_spans.scope.name == "llmrel.demo":
                    demo_request_traces.add(span.trace_id)

    assert models_by_service["demo-support-desk"] >= {"gpt-4o-mini"}
    assert models_by_service["demo-doc-pipeline"] <= {"gpt-4o", "gpt-4.1-mini"}
    assert models_by_service["demo-doc-pipeline"]
    # Each LLM call runs inside the demo's request span, so they share one trace.
    assert traces_with_llm_call and traces_with_llm_call <= demo_request_traces


def test_llmrel_demo_simulator_serves_until_terminated() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    llmrel = Path(sys.executable).with_name("llmrel")
    server = subprocess.Popen([str(llmrel), "demo", "simulator", "--port", str(port), "--latency-median", "0",
                               "--ttft-median", "0", "--seed", "9"], stdout=subprocess.PIPE, text=True)
    try:
        assert f"http://127.0.0.1:{port}/v1" in (server.stdout.readline() if server.stdout else "")
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).raise_for_status()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "simulator did not come up"
                time.sleep(0.05)
        with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0) as client:
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                                   extra_headers={"x-llmrel-sim-output-tokens": "3"})
        assert reply.usage.prompt_tokens == 8 and reply.usage.completion_tokens == 3
    finally:
        server.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells why it stopped.
        assert server.wait(timeout=10) == -signal.SIGTERM
