"""Cheaper-model recommendations over planted calls in the real embedded store."""

from __future__ import annotations

import random

from llmrel.intel.recommend import RecommendConfig, non_inferior, recommend
from tests.intel.helpers import T0, insert_calls, make_call

DAY_NS = 86_400 * 1_000_000_000


def _group(rng: random.Random, start: int, n: int, *, feature: str, model: str, cost: float, error_rate: float,
           latency_ms: int = 800):
    return [make_call(start + i, feature=feature, model=model, request_model=model, response_model=model,
                      cost_usd=cost, duration_ns=latency_ms * 1_000_000,
                      status_code="Error" if rng.random() < error_rate else "Ok",
                      trace_id=f"{feature}{model}{i}".ljust(32, "0")[:32])
            for i in range(n)]


def test_recommends_cheaper_model_of_equal_quality_only(store) -> None:
    rng = random.Random(1)
    calls = (_group(rng, 0, 3000, feature="faq", model="gpt-4o", cost=0.01, error_rate=0.02)
             + _group(rng, 0, 1500, feature="faq", model="gpt-4o-mini", cost=0.001, error_rate=0.02)
             + _group(rng, 0, 3000, feature="extract", model="gpt-4o", cost=0.01, error_rate=0.01)
             + _group(rng, 0, 1500, feature="extract", model="cheap-model", cost=0.001, error_rate=0.08)
             + _group(rng, 0, 3000, feature="extract", model="same-price", cost=0.01, error_rate=0.01)
             + _group(rng, 0, 3000, feature="summarize", model="gpt-4o", cost=0.01, error_rate=0.01)
             + _group(rng, 0, 40, feature="summarize", model="gpt-4o-mini", cost=0.001, error_rate=0.0))
    insert_calls(store, calls)
    advice = {a.feature: a for a in recommend(store, T0 - DAY_NS, T0 + DAY_NS)}

    faq = advice["faq"]
    assert faq.incumbent == "gpt-4o"
    rec = faq.recommendation
    assert rec is not None and rec["to_model"] == "gpt-4o-mini"
    # 3000 calls over 3000 s -> 30 days at that rate, about 98% successful, $0.009 cheaper each.
    incumbent = faq.models[0]
    expected = (0.01 / (1 - incumbent.failure_rate) - 0.001 / (1 - faq.models[1].failure_rate)) \
        * incumbent.monthly_calls * (1 - incumbent.failure_rate)
    assert abs(rec["monthly_saving_usd"] - expected) < 0.01 and rec["monthly_saving_usd"] > 5000

    extract = advice["extract"]
    assert extract.recommendation is None
    assert any("cheap-model: cheaper but quality may be worse" in n for n in extract.notes)

    summarize = advice["summarize"]
    assert summarize.recommendation is None
    assert any("too little data" in n for n in summarize.notes)


def test_non_inferiority_test() -> None:
    assert non_inferior(20, 1000, 20, 1000, 0.02, 0.95)[0]
    assert not non_inferior(60, 1000, 20, 1000, 0.02, 0.95)[0]
    assert not non_inferior(1, 20, 0, 20, 0.02, 0.95)[0]  # too few calls to show anything
    assert RecommendConfig().margin == 0.02


def test_prompt_growth_and_the_cost_of_failed_calls_are_noted(store) -> None:
    calls = [make_call(i, feature="bloat", input_tokens=100 if i < 1000 else 180, cost_usd=0.002,
                       status_code="Error" if i % 100 == 0 else "Ok") for i in range(2000)]
    insert_calls(store, calls)
    [advice] = recommend(store, T0, T0 + 2000 * 1_000_000_000)
    assert any(n.startswith("prompt growth: gpt-4o-2024-08-06 input tokens 100 -> 180 (+80%)") for n in advice.notes)
    assert any("failed calls cost $0.0400" in n for n in advice.notes)
    assert advice.recommendation is None and any("only one model" in n for n in advice.notes)
