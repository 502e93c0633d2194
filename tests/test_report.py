"""`llmrel report` on the embedded engine: one row per requested model, and every call whose cost is
unknown counted and shown (unpriced models, successful calls without usage), never as a silent $0."""

from __future__ import annotations

import time

import pytest
from rich.console import Console

from llmrel.analyzers.callfields import empty_call
from llmrel.cli import ingest
from llmrel.model import LLM_CALL_COLUMNS, LlmCall
from llmrel.pricing import Pricer
from llmrel.report import build_report

NOW_NS = time.time_ns() - 60 * 10**9


def call(i: int, **fields) -> LlmCall:
    values = {"timestamp_ns": NOW_NS + i * 10**6, "trace_id": f"{i:032x}", "span_id": f"{i:016x}",
              "service_name": "support-bot", "provider": "openai", "operation": "chat", "model": "gpt-4o-mini",
              "request_model": "gpt-4o-mini", "duration_ns": 10**9, "status_code": "Ok",
              "convention": "genai-semconv", **fields}
    return Pricer().price(empty_call(**values))


@pytest.fixture
def calls(store) -> list[LlmCall]:
    served = {"response_model": "gpt-4o-mini-2024-07-18", "input_tokens": 1000, "output_tokens": 100}
    rows = [
        call(1, **served),
        call(2, **served),
        call(3, model="gpt-4o-mini", response_model="", status_code="Error", error_type="RateLimitError"),
        call(4, is_streaming=True, response_model="gpt-4o-mini-2024-07-18"),  # a stream without include_usage
        call(5, model="our-finetune", request_model="our-finetune", input_tokens=10, output_tokens=5),
        call(6, model="our-finetune", request_model="our-finetune", input_tokens=20, output_tokens=5),
        call(7, **{**served, "response_model": "gpt-4o-2024-08-06"}),  # a silent swap
    ]
    store.insert("llm_calls", rows, column_names=list(LLM_CALL_COLUMNS))
    return rows


def test_errors_and_successes_of_a_model_are_one_row(store, calls):
    report = build_report(store, NOW_NS - 10**9)
    rows = {r["model"]: r for r in report["by_service_model"]}
    assert set(rows) == {"gpt-4o-mini", "our-finetune"}
    mini = rows["gpt-4o-mini"]
    assert (mini["calls"], mini["errors"], mini["error_rate"]) == (5, 1, 0.2)
    assert mini["response_models"] == ["gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18"]


def test_calls_of_unknown_cost_are_counted(store, calls):
    report = build_report(store, NOW_NS - 10**9)
    rows = {r["model"]: r for r in report["by_service_model"]}
    mini, finetune = rows["gpt-4o-mini"], rows["our-finetune"]
    # The stream without usage is unknown; the rejected call (429) cost nothing and is known.
    assert (mini["unpriced_calls"], mini["no_usage_calls"], mini["no_usage_streams"],
            mini["cost_unknown_calls"]) == (0, 1, 1, 1)
    assert mini["cost_usd"] == pytest.approx(sum(c.cost_usd for c in calls if c.cost_usd))
    assert (finetune["unpriced_calls"], finetune["cost_unknown_calls"], finetune["cost_usd"]) == (2, 2, None)
    totals = report["totals"]
    assert (totals["calls"], totals["errors"], totals["unpriced_calls"], totals["no_usage_calls"],
            totals["cost_unknown_calls"]) == (7, 1, 2, 1, 3)


def test_rendered_report_shows_unknown_costs_and_is_not_cut_off_the_terminal(store, calls, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    wide = ingest._stdout_console()  # pytest's stdout is not a terminal
    assert not wide.is_terminal and wide.width >= 200
    out = Console(width=wide.width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    monkeypatch.setattr(ingest, "console", out)
    ingest.render_report(build_report(store, NOW_NS - 10**9))
    text = out.export_text()
    assert "cost unknown for 3 calls (2 unpriced, 1 without usage)" in text
    finetune = next(line for line in text.splitlines() if "our-finetune" in line)
    assert finetune.split("│")[-3].strip() == "-"  # no call priced: no $0.0000
    assert "* support-bot asked for gpt-4o-mini, answered by gpt-4o-2024-08-06, gpt-4o-mini-2024-07-18" in text
    assert 'stream_options={"include_usage": true}' in text
    assert "…" not in text
