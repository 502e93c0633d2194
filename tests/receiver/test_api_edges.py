"""The read API: one row per span even when a span was stored twice, and a clear 400 for times out of range."""

from __future__ import annotations

import httpx
import pytest

from llmrel.report import parse_since
from tests.otlp_builders import chat_span, request
from tests.receiver.conftest import export_raw


def test_a_span_stored_twice_is_listed_once(receiver, query):
    export_raw(receiver.grpc_port, request([chat_span(1, trace=7), chat_span(3, trace=7)]).SerializeToString())
    export_raw(receiver.grpc_port, request([chat_span(1, trace=7)]).SerializeToString())  # retried after a lost ack
    assert query("SELECT count() FROM otel_traces") == [(3,)]
    trace = httpx.get(f"http://127.0.0.1:{receiver.http_port}/api/v1/traces/{7:032x}", timeout=10).json()
    assert [s["span_id"] for s in trace["spans"]] == [f"{2:016x}", f"{4:016x}"]


@pytest.mark.parametrize("since", ["99999999999999999w", "9" * 30 + "s", "2262-04-12", "9999-12-31T00:00:00",
                                   "1969-12-31T23:59:59+00:00", "20000000d"])
def test_times_out_of_range_are_a_clear_400(receiver, since):
    for path in ("/api/v1/report", "/api/v1/findings"):
        response = httpx.get(f"http://127.0.0.1:{receiver.http_port}{path}", params={"since": since}, timeout=10)
        assert response.status_code == 400, (path, response.text)
        assert "out of range" in response.json()["detail"]


def test_parse_since_stays_exact_and_in_range():
    assert parse_since("1h", now_s=7200.0) == 3600 * 10**9
    assert parse_since("1970-01-01T00:00:00Z") == 0
    with pytest.raises(ValueError, match="out of range"):
        parse_since("2h", now_s=3600.0)
