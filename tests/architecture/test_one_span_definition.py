"""One definition of "LLM span": the app-side sampler/enrichment, the normalizer and the stored-span
pre-filter of the analyzers' tailer all decide from `llmrel_core.spans`, so they cannot disagree."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrel.analyzers.tail import _LLM_SPAN_FILTER
from llmrel.model import SPAN_COLUMNS
from llmrel.normalize import normalize_span
from llmrel.receiver.decode import decode_request, parse_json_request
from llmrel_core.spans import classify_span
from llmrel_instrumentation.attributes import is_llm_span

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "otlp"


def fixture_spans():
    for path in sorted(FIXTURES.glob("*.json")):
        if not path.name.endswith(".expected.json"):
            yield from decode_request(parse_json_request(path.read_bytes())).spans


SPANS = list(fixture_spans())


def test_the_corpus_has_calls_steps_and_other_spans():
    kinds = {None if (c := classify_span(s.span_attributes, s.span_name)) is None else c.is_llm_call for s in SPANS}
    assert kinds == {None, True, False}


@pytest.mark.parametrize("span", SPANS, ids=lambda s: f"{s.span_name}-{s.span_id}")
def test_app_side_and_server_side_agree(span):
    found = classify_span(span.span_attributes, span.span_name)
    assert is_llm_span(span.span_attributes, span.span_name) == (found is not None)
    assert (normalize_span(span) is not None) == (found is not None and found.is_llm_call)


def test_the_tailer_prefilter_keeps_every_classified_stored_span(store):
    store.insert("otel_traces", SPANS, column_names=list(SPAN_COLUMNS))
    kept = {row[0] for row in store.query(f"SELECT SpanId FROM otel_traces WHERE {_LLM_SPAN_FILTER}").result_rows}
    classified = {s.span_id for s in SPANS if classify_span(s.span_attributes, s.span_name) is not None}
    assert classified and classified <= kept
