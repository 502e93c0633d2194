"""Node.js and Java apps send their LLM calls to llmrel through OpenTelemetry's own zero-code tooling.

Each app (`node/app.js`, `java/App.java`) is an ordinary program using the official OpenAI client of
its language, with no llmrel code, run as users run it: Node.js under
`--require @opentelemetry/auto-instrumentations-node/register` (which brings
`@opentelemetry/instrumentation-openai`), Java under the OpenTelemetry Java agent (its openai-java
instrumentation), both configured only by `OTEL_*` variables. They call the local OpenAI-compatible
simulator and export to a real `llmrel serve`; the stored `llm_calls` rows are checked exactly. The
npm and Maven packages are installed by `scripts/polyglot-deps.sh` (cached in ~/.cache/llmrel).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from genai_prices import Usage, calc_price

from llmrel.demo.config import SimulatorConfig
from llmrel.demo.simulator import Simulator
from tests.instrumentation.helpers import clean_env
from tests.instrumentation.serve import llmrel_serve, query_store

HERE = Path(__file__).parent
DEPS = HERE.parents[1] / "scripts" / "polyglot-deps.sh"
OTEL_ENV = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test"}
COLUMNS = ("Operation, Model, RequestModel, ResponseModel, InputTokens, OutputTokens, CostStatus, FinishReason, "
           "StatusCode, ErrorType, IsStreaming, Temperature, MaxTokens, ServiceName, Environment, Provider, "
           "Convention, CostUSD")


def install(kind: str) -> Path:
    done = subprocess.run([str(DEPS), kind], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"scripts/polyglot-deps.sh {kind} failed:\n{done.stderr[-5000:]}"
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def simulator():
    with Simulator(SimulatorConfig(seed=7, latency_median_s=0.0, ttft_median_s=0.0)).run() as sim:
        yield sim


def cost(model: str, input_tokens: int, output_tokens: int = 0) -> float:
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    return float(calc_price(usage, model, provider_id="openai").total_price)


def run_and_collect(tmp_path: Path, argv: list[str], env: dict[str, str], calls: int) -> tuple[str, list[list]]:
    """Run the app against a fresh `llmrel serve`, wait until its `calls` calls are stored, read them back."""
    with llmrel_serve(tmp_path / "store") as serve:
        endpoint = {"grpc": serve.grpc_port, "http/protobuf": serve.http_port}[env["OTEL_EXPORTER_OTLP_PROTOCOL"]]
        full_env = clean_env({**OTEL_ENV, **env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{endpoint}"})
        done = subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        deadline = time.monotonic() + 30
        while True:  # the exporters flush at exit; the receiver acknowledges after the commit
            report = httpx.get(f"http://127.0.0.1:{serve.http_port}/api/v1/report", params={"since": "1h"}).json()
            if report["totals"]["calls"] >= calls or time.monotonic() > deadline:
                break
            time.sleep(0.3)
    rows = query_store(serve.url, f"SELECT {COLUMNS} FROM llm_calls FINAL ORDER BY Timestamp")
    return done.stderr, rows


def expected_rows(service: str, convention: str, *, stream_flagged: bool) -> list[list]:
    """The four calls of either app; `stream_flagged`: the instrumentation records that a call streamed."""
    # Tokens follow the simulator's rule (llmrel.demo.tokens): 13 prompt tokens, output forced by header.
    return [
        ["chat", "gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 13, 7, "priced", "stop", "Unset", "",
         False, 0.2, 50, service, "test", "openai", convention, cost("gpt-4o-mini-2024-07-18", 13, 7)],
        ["chat", "gpt-4o", "gpt-4o", "gpt-4o-2024-08-06", 13, 5, "priced", "stop", "Unset", "", stream_flagged, None,
         None, service, "test", "openai", convention, cost("gpt-4o-2024-08-06", 13, 5)],
        ["embeddings", "text-embedding-3-small", "text-embedding-3-small", "text-embedding-3-small", 3, None,
         "priced", "", "Unset", "", False, None, None, service, "test", "openai", convention,
         cost("text-embedding-3-small", 3)],
        # Rejected: grouped with the model's successes, one error type whatever the language named it.
        ["chat", "gpt-4o-mini", "gpt-4o-mini", "", None, None, "no_usage", "", "Error", "RateLimitError", False,
         None, None, service, "test", "openai", convention, None],
    ]


def test_nodejs_app_with_auto_instrumentations_node(tmp_path, simulator):
    node_modules = install("node")
    env = {"OTEL_SERVICE_NAME": "node-support-bot", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
           "NODE_PATH": str(node_modules), "OTEL_NODE_RESOURCE_DETECTORS": "env,host,os,process"}
    argv = ["node", "--require", "@opentelemetry/auto-instrumentations-node/register", str(HERE / "node" / "app.js"),
            simulator.base_url]
    stderr, rows = run_and_collect(tmp_path, argv, env, calls=4)
    assert "rate_limit: 429" in stderr
    # @opentelemetry/instrumentation-openai 0.22 follows semconv 1.36 (`gen_ai.system`) for chat.
    assert rows == expected_rows("node-support-bot", "genai-semconv-legacy", stream_flagged=False)


def test_java_app_with_the_opentelemetry_java_agent(tmp_path, simulator):
    deps = install("java")
    (agent,) = (deps / "agent").glob("opentelemetry-javaagent-*.jar")
    env = {"OTEL_SERVICE_NAME": "java-support-bot", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    classpath = f"{deps / 'lib'}/*"
    # Compiled first, as an app is: the agent does not start inside the JDK's own tools (the source launcher).
    javac = subprocess.run(["javac", "-d", str(tmp_path / "classes"), "-cp", classpath,
                            str(HERE / "java" / "App.java")], capture_output=True, text=True, timeout=300)
    assert javac.returncode == 0, javac.stderr
    argv = ["java", f"-javaagent:{agent}", "-cp", f"{classpath}{os.pathsep}{tmp_path / 'classes'}", "App",
            simulator.base_url]
    stderr, rows = run_and_collect(tmp_path, argv, env, calls=4)
    assert "rate_limit: 429" in stderr
    # The agent's openai-java instrumentation follows semconv 1.37+ (`gen_ai.provider.name`); it names the
    # failure by exception (com.openai.errors.RateLimitException), stored as RateLimitError.
    assert rows == expected_rows("java-support-bot", "genai-semconv", stream_flagged=True)
