"""Warm start from stored `llm_calls` (real embedded ClickHouse): drift streams start from their history."""

from __future__ import annotations

import dataclasses
import math
import time

import polars as pl
import pytest

from llmrel.analyzers.checks import CallFacts
from llmrel.analyzers.drift import DriftConfig
from llmrel.analyzers.engine import Engine
from llmrel.analyzers.history import load_history, stream_histories
from llmrel.analyzers.ruleset import load_ruleset
from llmrel.analyzers.runtime import Analyzer
from llmrel.analyzers.streams import StreamState
from llmrel.analyzers.testing import Shift, Traffic, generate, history_frame
from llmrel.model import LLM_CALL_COLUMNS

TRAFFIC = Traffic(service="support", model="gpt-4o", calls_per_second=2.0)
KEY = ("support", "gpt-4o", "chat")
T0_HISTORY = 1_764_000_000_000_000_000


def _store_calls(store, calls) -> None:
    store.insert("llm_calls", calls, column_names=list(LLM_CALL_COLUMNS))


def test_history_gives_the_same_baselines_as_feeding_the_calls_live(store):
    now = time.time_ns()
    calls = list(generate(TRAFFIC, 600, seed=3, start_ns=now - 3600 * 10**9))
    _store_calls(store, calls)
    histories = {h.key: h for h in stream_histories(load_history(store, DriftConfig(), now))}
    assert set(histories) == {KEY, ("support", "*", "*"), ("*", "*", "*")}
    answered = sum(1 for c in calls if c.response_model)  # failed calls name no response model
    assert histories[KEY].calls == 600 and histories[KEY].models == {"gpt-4o-2024-08-06": answered}
    live = StreamState(KEY, DriftConfig())
    for call in calls:
        for monitor, x in live._samples(call, CallFacts(call), False):
            monitor.learn(x)
    seeded = StreamState(KEY, DriftConfig())
    seeded.seed(histories[KEY])
    compared = 0
    for name, monitor in live.monitors.items():
        if name in histories[KEY].metrics:
            other = seeded.monitors[name]
            assert other.base_n == monitor.base_n, name
            assert other.base_mean == pytest.approx(monitor.base_mean, rel=1e-9, abs=1e-12), name
            assert other.base_m2 == pytest.approx(monitor.base_m2, rel=1e-6, abs=1e-9), name
            compared += 1
    assert compared >= 8  # error, cost, latency, ttft, tokens in/out, length, tools, chars
    assert seeded.model_counts == live.model_counts


def test_history_is_bounded_per_stream_and_in_time(store):
    now = time.time_ns()
    _store_calls(store, list(generate(TRAFFIC, 300, seed=4, start_ns=now - 3600 * 10**9)))
    _store_calls(store, list(generate(dataclasses.replace(TRAFFIC, service="old"), 50, seed=5,
                                      start_ns=now - 30 * 3600 * 10**9)))
    frame = load_history(store, DriftConfig(history_hours=24, history_calls=100), now)
    assert frame.height == 100 and frame["service"].unique().to_list() == ["support"]
    assert load_history(store, DriftConfig(history_hours=0), now).is_empty()


def test_serve_analyzer_starts_from_history_and_finds_a_shift_without_warm_up(store, settings):
    """Through `Analyzer.from_settings` (what `llmrel serve` and `llmrel analyze` build): no checkpoint,
    4 hours of stored calls; a x1.5 output-token shift in the first live calls is found near the floor."""
    now = time.time_ns()
    history = list(generate(TRAFFIC, 4000, seed=6, start_ns=now - 4 * 3600 * 10**9))
    _store_calls(store, history)
    analyzer = Analyzer.from_settings(settings, store)
    stream = analyzer.engine.streams[KEY]
    monitor = stream.monitors["output_tokens"]
    stored = pl.Series([math.log1p(c.output_tokens) for c in history[-2000:] if c.output_tokens])
    assert monitor.base_n == 2000 and monitor.base_mean == pytest.approx(stored.mean(), abs=0.02)
    assert stream.model_reference == frozenset({"gpt-4o-2024-08-06"})
    shift = Shift("x1.5", 0, {"output_tokens_median": TRAFFIC.output_tokens_median * 1.5}, "output_tokens")
    live = list(generate(TRAFFIC, 400, seed=7, shift=shift, start_ns=now))
    found = None
    for i in range(0, len(live), 10):
        for f in analyzer.on_commit(live[i:i + 10]):
            if f.kind == "drift" and f.metric == "output_tokens" and f.model == "gpt-4o" and found is None:
                found = (i, f)
    # the oracle floor for x1.5 at sigma 0.6 is about 20 calls; a cold stream would still be learning
    assert found is not None and found[0] <= 80
    assert 1.25 <= (found[1].observed + 1) / (found[1].expected + 1) <= 1.8
    assert [f.metric for f in analyzer.on_commit([]) if f.kind == "drift"] == []


def test_a_stream_restored_from_its_checkpoint_keeps_its_state(store, settings):
    now = time.time_ns()
    calls = list(generate(TRAFFIC, 500, seed=8, start_ns=now - 3600 * 10**9))
    first = Analyzer.from_settings(settings, store)
    first.on_commit(calls[:300])
    first.close()
    _store_calls(store, calls)
    second = Analyzer.from_settings(settings, store)
    # (onset times in ns stay exact through the JSON checkpoint)
    assert second.engine.streams[KEY].state() == first.engine.streams[KEY].state()


def test_seeded_streams_are_kept_until_they_have_been_silent_for_days():
    engine = Engine(load_ruleset())
    now = T0_HISTORY
    engine.warm_start(stream_histories(history_frame(TRAFFIC, 3000, seed=9)), now)
    other = list(generate(dataclasses.replace(TRAFFIC, service="other"), 200, seed=10, start_ns=now + 60 * 10**9))
    engine.process(other, now_ns=other[-1].timestamp_ns)  # past an eviction sweep of idle streams
    assert KEY in engine.streams and engine.streams[KEY].monitors["latency_ms"].base_n == 2000


def test_each_shard_warm_starts_only_its_own_streams(store, settings):
    """`llmrel analyze --shard i/N` (built as the CLI builds it): the warm start seeds exactly the streams the
    tailer will route to that shard, and their service's baseline learns only from those streams' calls."""
    from llmrel.analyzers.callfields import shard_of
    from llmrel.analyzers.tail import Shard
    from llmrel.cli.compose import build_tailer

    now = time.time_ns()
    traffics = [dataclasses.replace(TRAFFIC, model=f"m-{i}", response_model=f"m-{i}-v1") for i in range(8)]
    calls = [c for i, t in enumerate(traffics)
             for c in generate(t, 120, seed=20 + i, start_ns=now - 3600 * 10**9 + i)]
    _store_calls(store, calls)
    everything = Analyzer.from_settings(settings, store, analyzer_id="all")
    assert {k[1] for k in everything.engine.streams} == {t.model for t in traffics}
    owned: list[set] = []
    for index in range(2):
        tailer = build_tailer(settings, store, Shard(index, 2))
        engine = tailer.analyzer.engine
        ours = [c for c in calls if shard_of(engine.stream_key(c), 2) == index]  # the tailer's routing rule
        mine = {engine.stream_key(c) for c in ours}
        assert mine and set(engine.streams) == mine  # seeded: this shard's streams only
        service = engine.pooled[("support", "*", "*")].monitors["output_tokens"]
        assert service.base_n == sum(1 for c in ours if c.status_code != "Error")
        owned.append(mine)
    assert owned[0].isdisjoint(owned[1]) and owned[0] | owned[1] == set(everything.engine.streams)
