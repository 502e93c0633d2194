"""The engine end to end on synthetic streams: drift findings carry keys, before/after, onset and spend."""

from __future__ import annotations

import dataclasses
import json

import pytest

from llmrel.analyzers.engine import Engine
from llmrel.analyzers.ruleset import load_ruleset
from llmrel.analyzers.testing import SCENARIOS, Traffic, generate

from .helpers import T0

STEP_NS = 500_000_000  # 2 calls/s


def _drifts(engine: Engine, calls) -> list:
    return [f for i in range(0, len(calls), 100) for f in engine.process(calls[i:i + 100], now_ns=T0)
            if f.kind == "drift"]


def test_model_swap_finding_names_both_models_and_keys_the_requested_model():
    swap = next(s for s in SCENARIOS if s.metric == "model_swap_rate")
    calls = list(generate(Traffic(), 4000, seed=3, shift=swap, start_ns=T0))
    findings = [f for f in _drifts(Engine(load_ruleset()), calls) if f.metric == "model_swap_rate"]
    assert len(findings) == 1
    f = findings[0]
    assert (f.service_name, f.model, f.operation, f.severity) == ("support-bot", "gpt-4o", "chat", "error")
    assert f.attributes["from_models"] == "gpt-4o-2024-08-06" and f.attributes["to_model"] == "gpt-4o-mini-2024-07-18"
    assert "changed from gpt-4o-2024-08-06 to gpt-4o-mini-2024-07-18" in f.message
    assert 3000 <= (f.event_time_ns - T0) // STEP_NS <= 3005
    assert f.cost_usd > 0 and f.calls >= 3 and f.confidence > 0.99


@pytest.mark.parametrize("shift", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_every_labelled_shift_is_found_once_on_its_metric(shift):
    calls = list(generate(Traffic(), 5000, seed=21, shift=shift, start_ns=T0))
    drifts = _drifts(Engine(load_ruleset()), calls)
    on_metric = [f for f in drifts if f.metric == shift.metric]
    assert len(on_metric) == 1
    assert all((f.event_time_ns - T0) // STEP_NS >= 2900 for f in drifts)  # nothing before the shift
    f = on_metric[0]
    assert f.observed > f.expected or shift.metric == "tool_call_rate"
    json.dumps(dataclasses.asdict(f))


def test_streams_split_by_feature_when_asked():
    ruleset = load_ruleset()
    by_feature = dataclasses.replace(ruleset, drift=dataclasses.replace(ruleset.drift, by_feature=True))
    calls = [*generate(Traffic(feature="a"), 10, seed=1, start_ns=T0),
             *generate(Traffic(feature="b"), 10, seed=2, start_ns=T0, trace_prefix="b")]
    engine = Engine(by_feature)
    engine.process(calls)
    assert set(engine.streams) == {("support-bot", "gpt-4o", "chat", "a"), ("support-bot", "gpt-4o", "chat", "b")}
    plain = Engine(ruleset)
    plain.process(calls)
    assert set(plain.streams) == {("support-bot", "gpt-4o", "chat")}


def test_a_swap_on_a_sparse_stream_is_found_and_a_mixed_stream_is_not_a_swap():
    import random

    from llmrel.analyzers.engine import Engine
    from llmrel.analyzers.ruleset import load_ruleset

    from .helpers import make_call

    engine = Engine(load_ruleset())
    calls = [make_call(i, response_model="a-model" if i < 24 else "b-model") for i in range(60)]
    swaps = [f for f in engine.process(calls) if f.metric == "model_swap_rate"]
    assert len(swaps) == 1 and 24 < swaps[0].calls + 24 <= 40
    rng = random.Random(3)
    mixed = Engine(load_ruleset())
    calls = [make_call(i, response_model="b-model" if rng.random() < 0.3 else "a-model") for i in range(1500)]
    assert [f for f in mixed.process(calls) if f.metric == "model_swap_rate"] == []


def test_a_service_with_one_stream_is_not_tested_twice_and_pools_again_with_a_second():
    engine = Engine(load_ruleset())
    alone = list(generate(Traffic(service="solo"), 500, seed=21, start_ns=T0))
    engine.process(alone, now_ns=T0)
    service = engine.pooled[("solo", "*", "*")]
    leaf = engine.streams[("solo", "gpt-4o", "chat")]
    assert leaf.calls == 500 and service.calls < 40  # it learned only while its stream needed a prior
    second = list(generate(Traffic(service="solo", model="gpt-4o-mini"), 100, seed=22, start_ns=T0 + 10**12))
    before = service.calls
    engine.process(second, now_ns=T0)
    assert service.calls == before + 100  # two streams: the service pools them
    alarms = [f for f in engine.process(list(generate(Traffic(service="solo"), 200, seed=23,
                                                      start_ns=T0 + 2 * 10**12)), now_ns=T0) if f.kind == "drift"]
    assert service.calls == before + 300 and alarms == []
