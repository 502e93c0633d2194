"""The real openai client under `opentelemetry-instrument` (env vars only) against the simulator and a
running `llmrel serve`: rows arrive in `llm_calls` with context fields, redaction and sampling applied."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import run_app
from .serve import llmrel_serve, query_store


@pytest.fixture(scope="module")
def store_url(simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run three app processes into one `llmrel serve`, stop it, and hand over its store."""
    store = tmp_path_factory.mktemp("serve") / "store"
    with llmrel_serve(Path(store)) as serve:
        common = {"OTEL_PYTHON_DISTRO": "llmrel", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{serve.grpc_port}",
                  "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test"}
        redacted = {**common, "LLMREL_CAPTURE_CONTENT": "redacted"}
        run_app(simulator.base_url, "context", {**redacted, "OTEL_SERVICE_NAME": "refunds"})
        run_app(simulator.base_url, "streams", {**redacted, "OTEL_SERVICE_NAME": "streamer"})
        run_app(simulator.base_url, "sampling", {**common, "OTEL_SERVICE_NAME": "sampled",
                                                 "OTEL_TRACES_SAMPLER_ARG": "0"})
    yield serve.url


def test_context_fields_and_redaction_reach_llm_calls(store_url: str) -> None:
    rows = query_store(store_url, "SELECT Feature, Tenant, UserId, SessionId, InputText, Environment "
                                  "FROM llm_calls WHERE ServiceName = 'refunds' ORDER BY Timestamp")
    assert rows == [
        ["refund-bot", "acme", "u-42", "s-1", "user: My email is [REDACTED:EMAIL], card [REDACTED:CARD], key "
         "[REDACTED:API_KEY] and IBAN [REDACTED:IBAN]. Help me.", "test"],
        ["search", "globex", "", "", "user: Say hello.", "test"],
    ]
    counts = query_store(store_url, "SELECT SpanAttributes['llmrel.redactions'] FROM otel_traces "
                                    "WHERE ServiceName = 'refunds' ORDER BY Timestamp")
    assert counts == [["4"], ["0"]]


def test_every_stream_ends_up_as_a_row(store_url: str) -> None:
    rows = query_store(store_url, "SELECT Feature, IsStreaming, StatusCode, OutputTokens IS NOT NULL, "
                                  "t.SpanAttributes['llmrel.stream.completed'] FROM llm_calls AS c "
                                  "INNER JOIN otel_traces AS t ON c.SpanId = t.SpanId "
                                  "WHERE c.ServiceName = 'streamer' ORDER BY c.Timestamp")
    assert rows == [
        ["", True, "Ok", True, ""],
        ["early-break", True, "Ok", False, "false"],
        ["never-consumed", True, "Ok", False, "false"],
        ["stream-error", True, "Error", False, "false"],
    ]


def test_sampling_keeps_llm_traces_whole_and_drops_the_rest(store_url: str) -> None:
    rows = query_store(store_url, "SELECT replaceRegexpOne(SpanName, '-[0-9]+$', '') AS name, count() "
                                  "FROM otel_traces WHERE ServiceName = 'sampled' GROUP BY name ORDER BY name")
    assert rows == [["handle-llm-request", 40], ["openai.chat", 40], ["prepare", 40]]
    orphans = query_store(store_url, "SELECT count() FROM otel_traces AS c WHERE ServiceName = 'sampled' "
                                     "AND ParentSpanId != '' AND ParentSpanId NOT IN "
                                     "(SELECT SpanId FROM otel_traces WHERE ServiceName = 'sampled')")
    assert orphans == [[0]]
    calls = query_store(store_url, "SELECT count() FROM llm_calls WHERE ServiceName = 'sampled'")
    assert calls == [[40]]
