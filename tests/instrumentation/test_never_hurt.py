"""The app's LLM calls behave exactly as without instrumentation when the receiver is down,
answers UNAVAILABLE or hangs: same return values, no exception, exit delayed by a bounded time."""

from __future__ import annotations

import pytest

from .helpers import run_app
from .otlp_sink import run_sink

SHUTDOWN_TIMEOUT_MS = 1000
# A user-chosen 30 s export timeout: without llmrel's shutdown bound, exit would wait >= 30 s.
ENV = {"OTEL_PYTHON_DISTRO": "llmrel", "OTEL_EXPORTER_OTLP_TIMEOUT": "30",
       "LLMREL_SHUTDOWN_TIMEOUT_MS": str(SHUTDOWN_TIMEOUT_MS), "LLMREL_CAPTURE_CONTENT": "redacted"}


@pytest.fixture(scope="module")
def baseline(simulator):
    return run_app(simulator.base_url, "all", {}, instrumented=False)


@pytest.mark.parametrize("mode", ["stopped", "unavailable", "hang"])
def test_receiver_failure_does_not_change_the_app(simulator, baseline, mode: str) -> None:
    with run_sink("ok" if mode == "stopped" else mode) as (sink, port):
        if mode == "stopped":
            sink_port = port
        else:
            run = run_app(simulator.base_url, "all", {**ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"})
    if mode == "stopped":  # the sink's port is closed now: connection refused
        run = run_app(simulator.base_url, "all", {**ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}"})
    assert run.stdout == baseline.stdout
    assert len(run.stdout.splitlines()) == 8
    assert "Traceback" not in run.stderr
    # Exit waits at most the shutdown bound (plus process start-up noise on a shared machine).
    assert run.seconds < baseline.seconds + SHUTDOWN_TIMEOUT_MS / 1000 + 10
    if mode != "stopped":
        assert sink.calls >= 1 and sink.spans == []


def test_healthy_receiver_gets_the_spans_and_the_app_is_unchanged(simulator, baseline) -> None:
    with run_sink() as (sink, port):
        run = run_app(simulator.base_url, "all", {**ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"})
    assert run.stdout == baseline.stdout
    assert sorted(s.name for s in sink.spans) == ["openai.chat"] * 9
