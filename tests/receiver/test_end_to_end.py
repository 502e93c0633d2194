"""The real openai client under real auto-instrumentation, exporting over real OTLP/gRPC and
OTLP/HTTP into the receiver and the embedded ClickHouse engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from genai_prices import Usage, calc_price

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
        "OTEL_PYTHON_DISTRO": "llmrel",
        "OTEL_PYTHON_CONFIGURATOR": "llmrel",
        "LLMREL_CAPTURE_CONTENT": "full",
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


# Tokens follow the simulator's rule (llmrel.demo.tokens): the question is 23 characters, so a chat
# prompt is 3 + 4 + 6 = 13 tokens; output tokens are forced per call by header.
EXPECTED: list[tuple] = [
    ("chat", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 13, 7, "priced", 1, "stop", "Unset", "", False, 0, 0.2, 50,
     1, "support-bot", "test", "openai"),
    ("chat", "gpt-4o", "gpt-4o-2024-08-06", 13, 5, "priced", 1, "stop", "Ok", "", True, 0, None, None,
     1, "support-bot", "test", "openai"),
    ("embeddings", "text-embedding-3-small", "text-embedding-3-small", 3, None, "priced", 1, "", "Unset", "", False,
     0, None, None, 1, "support-bot", "test", "openai"),
    ("chat", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 45, 9, "priced", 1, "tool_calls", "Unset", "", False, 1,
     None, None, 1, "support-bot", "test", "openai"),
    ("chat", "gpt-4o-mini", "", None, None, "no_usage", None, "", "Error", "RateLimitError", False, 0, None, None,
     1, "support-bot", "test", "openai"),
    ("chat", "gpt-4o-mini", "", None, None, "no_usage", None, "", "Error", "InternalServerError", False, 0, None,
     None, 1, "support-bot", "test", "openai"),
]


def assert_costs_and_content(query) -> None:
    rows = query("SELECT ResponseModel, InputTokens, ifNull(OutputTokens, 0), CostUSD, InputText, OutputText, "
                 "TimeToFirstToken IS NOT NULL, toUnixTimestamp64Nano(Timestamp) FROM llm_calls FINAL "
                 "WHERE CostStatus = 'priced' ORDER BY Timestamp")
    for model, tokens_in, tokens_out, cost, *_ in rows:
        base = model.rsplit("-20", 1)[0]
        expected = calc_price(Usage(input_tokens=tokens_in, output_tokens=tokens_out), base, provider_id="openai")
        assert cost == pytest.approx(float(expected.total_price), rel=1e-9)
    assert [r[4] for r in rows] == ["user: Where is my order 1234?"] * 2 + ["user: hello world"] + \
        ["user: Where is my order 1234?"]
    assert rows[0][5] == "review confirm ticket days issue today team"  # 7 words = 7 output tokens
    assert len(rows[1][5].split()) == 5
    assert [r[6] for r in rows] == [False, True, False, False]  # time to first token only on the stream


def test_grpc_end_to_end(receiver, query, simulator):
    done = run_app(simulator.base_url, "grpc", f"http://127.0.0.1:{receiver.grpc_port}")
    assert "rate_limit: 429" in done.stderr and "server_error: 500" in done.stderr
    assert_calls(query)
    assert_costs_and_content(query)


def test_http_protobuf_end_to_end(receiver, query, simulator):
    run_app(simulator.base_url, "http/protobuf", f"http://127.0.0.1:{receiver.http_port}")
    assert_calls(query)
    assert_costs_and_content(query)


def test_grpc_end_to_end_with_worker_processes(make_receiver, query, simulator):
    receiver = make_receiver(ingest_workers=2)
    run_app(simulator.base_url, "grpc", f"http://127.0.0.1:{receiver.grpc_port}")
    assert_calls(query)
    assert_costs_and_content(query)
