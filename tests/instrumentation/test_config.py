"""Settings from the environment, defaults that never override the user, doctor report."""

from __future__ import annotations

import json

import pytest

from llmrel_instrumentation.config import ContentPolicy, InstrumentationConfig, apply_env_defaults, env_defaults
from llmrel_instrumentation.doctor import build_report, main


@pytest.mark.parametrize(("env", "content", "timeout", "problems"), [
    pytest.param({}, ContentPolicy.OFF, 2000, 0, id="defaults"),
    pytest.param({"LLMREL_CAPTURE_CONTENT": "Redacted"}, ContentPolicy.REDACTED, 2000, 0, id="redacted"),
    pytest.param({"LLMREL_CAPTURE_CONTENT": "all"}, ContentPolicy.OFF, 2000, 1, id="invalid-policy"),
    pytest.param({"LLMREL_SHUTDOWN_TIMEOUT_MS": "500"}, ContentPolicy.OFF, 500, 0, id="timeout"),
    pytest.param({"LLMREL_SHUTDOWN_TIMEOUT_MS": "soon"}, ContentPolicy.OFF, 2000, 1, id="invalid-timeout"),
])
def test_from_env(env: dict[str, str], content: ContentPolicy, timeout: int, problems: int) -> None:
    config, found = InstrumentationConfig.from_env(env)
    assert (config.content, config.shutdown_timeout_ms, len(found)) == (content, timeout, problems)


def test_user_settings_win_over_defaults() -> None:
    environ = {"OTEL_EXPORTER_OTLP_COMPRESSION": "none", "OTEL_TRACES_SAMPLER": "always_on",
               "TRACELOOP_METRICS_ENABLED": "true"}
    apply_env_defaults(InstrumentationConfig(), environ)
    assert environ["OTEL_EXPORTER_OTLP_COMPRESSION"] == "none"
    assert environ["OTEL_TRACES_SAMPLER"] == "always_on"
    assert environ["TRACELOOP_METRICS_ENABLED"] == "true"
    assert environ["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert environ["OTEL_BSP_MAX_QUEUE_SIZE"] == "2048"
    assert environ["TRACELOOP_TRACE_CONTENT"] == "false"


def test_content_switches_follow_the_policy() -> None:
    assert env_defaults(InstrumentationConfig(content=ContentPolicy.REDACTED))["TRACELOOP_TRACE_CONTENT"] == "true"
    off = env_defaults(InstrumentationConfig())
    assert off["TRACELOOP_TRACE_CONTENT"] == "false"
    assert off["OPENINFERENCE_HIDE_INPUTS"] == off["OPENINFERENCE_HIDE_OUTPUTS"] == "true"


def test_conflicting_content_settings_are_reported() -> None:
    environ = {"TRACELOOP_TRACE_CONTENT": "true"}
    warnings = apply_env_defaults(InstrumentationConfig(), environ)
    assert len(warnings) == 1 and "TRACELOOP_TRACE_CONTENT" in warnings[0]


def test_doctor_reports_duplicates_and_content_capture() -> None:
    """Both the Traceloop and the OpenInference openai instrumentations are installed in the test env."""
    report = build_report({"OTEL_PYTHON_DISTRO": "llmrel", "LLMREL_CAPTURE_CONTENT": "redacted"})
    states = {(s["distribution"], s["state"]) for s in report["instrumentations"]}
    assert ("opentelemetry-instrumentation-openai", "active") in states
    assert ("openinference-instrumentation-openai", "duplicate") in states
    assert report["content"]["policy"] == "redacted"
    assert report["content"]["captured_by_openai_instrumentation"] is True
    assert report["sampler"] == "llmrel"
    assert report["problems"] == []


def test_doctor_flags_a_missing_distro_and_double_instrumentation(capsys: pytest.CaptureFixture[str]) -> None:
    report = build_report({"OTEL_PYTHON_DISTRO": "distro"})
    assert any("llmrel distro is not selected" in p for p in report["problems"])
    assert any("traced twice" in p for p in report["problems"])
    assert report["content"]["captured_by_openai_instrumentation"] is True


def test_doctor_cli_json(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_DISTRO", "llmrel")
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "openai")
    assert main(["doctor", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert {s["state"] for s in report["instrumentations"]} == {"disabled"}
    assert "no LLM instrumentation is active: the app sends no LLM spans" in report["problems"]
