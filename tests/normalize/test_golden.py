"""Golden OTLP/JSON requests, one per convention, decoded and normalized to exact `llm_calls` rows.

Each `tests/fixtures/otlp/<convention>.json` is an `ExportTraceServiceRequest` as OTLP/JSON
(hex ids, int64 as strings, typed `intValue`/`doubleValue`/`arrayValue` values) shaped like what
the instrumentation of that convention emits, including non-LLM spans that must yield no row.
`<convention>.expected.json` holds the rows: ids, nanosecond times and token counts bit-exact.
Two more fixtures (written by `make_agent_fixtures.py`) hold known defects' shapes: agent traces of
every convention (steps are no rows) and OpenInference values found only in JSON bodies.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrel.model import LlmCall
from llmrel.normalize import normalize_span
from llmrel.pricing import Pricer
from llmrel.receiver.decode import decode_request, parse_json_request

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "otlp"
CONVENTIONS = ("genai-semconv", "genai-semconv-legacy", "openllmetry", "openinference")
FIXTURES_CONVENTIONS = {
    **{c: {c} for c in CONVENTIONS},
    "agent-traces": {"genai-semconv", "openinference", "openllmetry"},
    "openinference-json-only": {"openinference"},
}


def normalized_rows(convention: str) -> list[LlmCall]:
    decoded = decode_request(parse_json_request((FIXTURES / f"{convention}.json").read_bytes()))
    assert decoded.rejected == 0, decoded.errors
    return [call for span in decoded.spans if (call := normalize_span(span)) is not None]


@pytest.mark.parametrize("fixture", FIXTURES_CONVENTIONS)
def test_fixture_normalizes_to_the_expected_rows(fixture):
    expected = json.loads((FIXTURES / f"{fixture}.expected.json").read_text())
    rows = normalized_rows(fixture)
    assert [row._asdict() for row in rows] == expected
    assert {row.convention for row in rows} == FIXTURES_CONVENTIONS[fixture]


@pytest.mark.parametrize("convention", FIXTURES_CONVENTIONS)
def test_fixture_rows_with_real_models_are_priced(convention):
    pricer = Pricer()
    for row in rows_with_usage(normalized_rows(convention)):
        priced = pricer.price(row)
        known = not row.model.startswith(("err-", "gpt-chat"))
        assert priced.cost_status == ("priced" if known else "unpriced"), row.model
        assert (priced.cost_usd is not None and priced.cost_usd > 0) == known


def rows_with_usage(rows: list[LlmCall]) -> list[LlmCall]:
    return [r for r in rows if r.input_tokens is not None or r.output_tokens is not None]
