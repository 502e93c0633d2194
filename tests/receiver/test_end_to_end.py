"""The real openai client under real auto-instrumentation, exporting over real OTLP/gRPC and
OTLP/HTTP into the receiver and the embedded ClickHouse engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmrel.demo.config import SimulatorConfig
from llmrel.demo.simulator import Simulator

APP = Path(__file__).with_name("llm_app.py")
INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")


@pytest.fixture(scope="module")
def simulator():
    with Simulator(SimulatorConfig(seed=7, latency_median_s=0.0, ttft_median_s=0.0)).run() as sim:
        yield sim


def run_app(base_url: str, protocol: str, endpoint: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_", "LLMREL_"))},
        "OTEL_SERVICE_NAME": "support-bot",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "httpx,requests,urllib3,asyncio,threading,logging",
    }
    done = subprocess.run([str(INSTRUMENT), sys.executable, str(APP), base_url], env=env, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


COLUMNS = ("Operation, RequestModel, ResponseModel, InputTokens, OutputTokens, CostStatus, CostUSD > 0, "
           "FinishReason, StatusCode, ErrorType, IsStreaming, ToolCalls, Temperature, MaxTokens, Duration > 0, "
           "ServiceName, Environment, Provider")


def assert_calls(query) -> None:
    rows = query(f"SELECT {COLUMNS} FROM llm_calls FINAL ORDER BY Timestamp")
    assert rows == EXPECTED
    spans = query("SELECT count(), countIf(SpanKind = 'Client'), uniqExact(TraceId) FROM otel_traces")
    assert spans == [(6, 6, 6)]
    same_ids = query("SELECT count() FROM llm_calls AS c INNER JOIN otel_traces AS t "
                     "ON c.TraceId = t.TraceId AND c.SpanId = t.SpanId AND c.Timestamp = t.Timestamp")
    assert same_ids == [(6,)]


EXPECTED: list[tuple] = []


def test_grpc_end_to_end(receiver, query, simulator):
    run_app(simulator.base_url, "grpc", f"http://127.0.0.1:{receiver.grpc_port}")
    assert_calls(query)


def test_http_protobuf_end_to_end(receiver, query, simulator):
    run_app(simulator.base_url, "http/protobuf", f"http://127.0.0.1:{receiver.http_port}")
    assert_calls(query)
