"""Which instrumentations run under the llmrel distro, proven with real `opentelemetry-instrument` runs:
the OpenInference openai instrumentation works unchanged, duplicates are resolved, and an LLM
instrumentation that fails to import is reported loudly instead of silently sending nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import clean_env, run_app
from .otlp_sink import run_sink

DOCTOR = Path(sys.executable).with_name("llmrel-instrument")


def test_openinference_openai_instrumentation_works_unchanged(simulator) -> None:
    env = {"OTEL_PYTHON_DISTRO": "llmrel", "LLMREL_CAPTURE_CONTENT": "redacted",
           "LLMREL_PREFER_INSTRUMENTATION": "openinference-instrumentation-openai"}
    with run_sink() as (sink, port):
        run = run_app(simulator.base_url, "context", {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"})
    assert "skipped" not in run.stderr  # chosen explicitly: not a warning
    first, second = sorted(sink.spans, key=lambda s: s.start_ns)
    assert first.name == "ChatCompletion" and first.attributes["openinference.span.kind"] == "LLM"
    assert (first.attributes["llmrel.feature"], first.attributes["llmrel.tenant"], first.attributes["user.id"],
            first.attributes["session.id"]) == ("refund-bot", "acme", "u-42", "s-1")
    assert first.attributes["llm.input_messages.0.message.content"] == (
        "My email is [REDACTED:EMAIL], card [REDACTED:CARD], key [REDACTED:API_KEY] and IBAN [REDACTED:IBAN]. "
        "Help me.")
    assert first.attributes["llmrel.redactions"] >= 4
    assert "jane.doe@example.com" not in json.dumps([s.attributes for s in sink.spans])
    assert second.attributes["llmrel.feature"] == "search"
    assert isinstance(first.attributes["llm.token_count.completion"], int)


def test_openinference_content_is_off_by_default(simulator) -> None:
    env = {"OTEL_PYTHON_DISTRO": "llmrel", "LLMREL_PREFER_INSTRUMENTATION": "openinference-instrumentation-openai"}
    with run_sink() as (sink, port):
        run_app(simulator.base_url, "context", {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"})
    keys = {key for span in sink.spans for key in span.attributes}
    assert not {k for k in keys if k.startswith(("llm.input_messages", "llm.output_messages", "input.", "output."))}
    assert len(sink.spans) == 2


@pytest.mark.parametrize(("distro", "spans_per_call"), [("distro", 2), ("llmrel", 1)])
def test_two_openai_instrumentations_trace_twice_unless_the_llmrel_distro_resolves_it(
        simulator, distro: str, spans_per_call: int) -> None:
    """Traceloop and OpenInference both register entry point `openai` (both installed here)."""
    with run_sink() as (sink, port):
        run = run_app(simulator.base_url, "plain", {"OTEL_PYTHON_DISTRO": distro, "OTEL_TRACES_EXPORTER": "otlp",
                                                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"})
    assert len(sink.spans) == 3 * spans_per_call
    if distro == "llmrel":  # resolved by the default preference, which is worth saying
        assert "'openai' from openinference-instrumentation-openai skipped" in run.stderr
    if distro == "distro":
        assert "llmrel-instrumentation is installed but the 'distro' distro is in use" in run.stderr


def _broken_instrumentation(root: Path) -> Path:
    """An installed-looking distribution whose instrumentor module is missing (like openai-v2 + util-genai 1.3b0)."""
    info = root / "broken_llm_instrumentation-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-llm-instrumentation\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[opentelemetry_instrumentor]\nanthropic = broken_llm_instrumentation_missing.module:Instrumentor\n")
    return root


def test_an_llm_instrumentation_that_fails_to_import_is_a_warning_and_a_doctor_problem(simulator, tmp_path) -> None:
    site = _broken_instrumentation(tmp_path / "site")
    with run_sink() as (sink, port):
        run = run_app(simulator.base_url, "plain", {"OTEL_PYTHON_DISTRO": "llmrel", "PYTHONPATH": str(site),
                                                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"})
    assert ("llmrel: LLM instrumentation 'anthropic' from broken-llm-instrumentation failed to load, so its calls "
            "send no spans: ModuleNotFoundError") in run.stderr
    assert len(sink.spans) == 3  # openai itself is still traced
    doctor = subprocess.run([str(DOCTOR), "doctor", "--json"], capture_output=True, text=True, timeout=60,
                            env=clean_env({"OTEL_PYTHON_DISTRO": "llmrel", "PYTHONPATH": str(site)}))
    assert doctor.returncode == 1
    report = json.loads(doctor.stdout)
    [broken] = [s for s in report["instrumentations"] if s["distribution"] == "broken-llm-instrumentation"]
    assert broken["state"] == "skipped" and "fails to import (ModuleNotFoundError" in broken["reason"]
