"""`DriftMonitor` (sequential likelihood-ratio tests) on seeded streams with known change points."""

from __future__ import annotations

import json
import math
import random

import pytest

from llmrel.analyzers.checkpoint import MonitorState
from llmrel.analyzers.drift import METRICS, DriftConfig, DriftMonitor, Prior


def _monitor(metric: str, **kwargs: float) -> DriftMonitor:
    return DriftMonitor(METRICS[metric], **{**DriftConfig().monitor_params(), **kwargs})


def _run(monitor: DriftMonitor, values: list[float]) -> list[tuple[int, object]]:
    found = []
    for i, x in enumerate(values):
        if monitor.update(x, i, float(i)).drift:
            found.append((i, monitor.drift))
    return found


def _lognormal(seed: int, n: int, change_at: int | None = None, factor: float = 1.0, sigma: float = 0.6) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(math.log(250 * (factor if change_at is not None and i >= change_at else 1)), sigma)
            for i in range(n)]


def _bernoulli(seed: int, n: int, p0: float, p1: float, change_at: int) -> list[float]:
    rng = random.Random(seed)
    return [1.0 if rng.random() < (p1 if i >= change_at else p0) else 0.0 for i in range(n)]


@pytest.mark.parametrize("seed", range(5))
def test_doubling_of_output_tokens_is_found_once_within_a_window(seed):
    found = _run(_monitor("output_tokens"), _lognormal(seed, 6000, change_at=3000, factor=2.0))
    assert len(found) == 1
    index, event = found[0]
    assert 3000 < index <= 3160  # within ~80 s at 2 calls/s
    assert 2900 <= event.since_ns <= index  # onset placed near the true change point
    assert event.after / event.before == pytest.approx(2.0, rel=0.3)
    assert event.confidence > 0.99


@pytest.mark.parametrize("seed", range(5))
def test_rate_increase_is_found_and_reports_both_rates(seed):
    found = _run(_monitor("length_finish_rate"), _bernoulli(seed, 6000, 0.02, 0.15, change_at=3000))
    assert len(found) == 1
    index, event = found[0]
    assert 3000 < index <= 3250
    assert event.before < 0.05 < 0.08 < event.after


@pytest.mark.parametrize("seed", range(4))
def test_stationary_heavy_tailed_stream_gives_no_finding(seed):
    assert _run(_monitor("latency_ms"), _lognormal(100 + seed, 20_000, sigma=0.9)) == []


@pytest.mark.parametrize("seed", range(4))
def test_stationary_rare_event_rate_gives_no_finding(seed):
    assert _run(_monitor("error_rate"), _bernoulli(200 + seed, 20_000, 0.01, 0.01, change_at=0)) == []


def test_up_only_metric_ignores_a_recovery_then_catches_the_next_rise():
    values = (_bernoulli(1, 3000, 0.01, 0.10, change_at=1500) + _bernoulli(2, 2000, 0.01, 0.01, change_at=0)
              + _bernoulli(3, 2000, 0.10, 0.10, change_at=0))
    found = _run(_monitor("error_rate"), values)
    assert len(found) == 2
    assert 1500 < found[0][0] <= 1800 and 5000 < found[1][0] <= 5300
    assert all(e.after > e.before for _, e in found)


def test_no_blind_warm_up_a_stream_with_a_prior_tests_from_its_first_call():
    monitor = _monitor("output_tokens")
    monitor.set_prior(Prior(mean=math.log1p(250), var=0.6**2))
    found = _run(monitor, _lognormal(3, 600, change_at=40, factor=3.0))
    assert len(found) == 1 and 40 < found[0][0] <= 75


def test_small_effect_below_the_design_is_not_reported():
    assert _run(_monitor("output_tokens"), _lognormal(4, 20_000, change_at=5000, factor=1.03)) == []


def test_update_returns_self_and_a_json_round_trip_mid_stream_detects_identically():
    values = _lognormal(5, 5000, change_at=3000, factor=2.0)
    monitor = _monitor("output_tokens")
    assert monitor.update(values[0], 0, 0.0) is monitor
    for i, x in enumerate(values[1:2900], start=1):
        monitor.update(x, i, 0.0)
    stored = MonitorState.model_validate_json(json.dumps(monitor.state())).model_dump()
    restored = DriftMonitor.from_state(METRICS["output_tokens"], stored, **DriftConfig().monitor_params())
    found_original = [(i, monitor.drift) for i, x in enumerate(values[2900:], start=2900)
                      if monitor.update(x, i, 0.0).drift]
    found_restored = [(i, restored.drift) for i, x in enumerate(values[2900:], start=2900)
                      if restored.update(x, i, 0.0).drift]
    assert found_original == found_restored and len(found_original) == 1


def test_spend_since_onset_comes_from_the_cumulative_cost():
    values = _lognormal(6, 5000, change_at=3000, factor=2.0)
    monitor = _monitor("output_tokens")
    cum = 0.0
    for i, x in enumerate(values):
        cum += 0.01
        if monitor.update(x, i, cum).drift:
            event = monitor.drift
            break
    assert event.cost_usd == pytest.approx(0.01 * (i - event.since_ns + 1))
    assert event.samples == i - event.since_ns + 1


def test_reported_size_of_change_is_close_to_the_true_shift():
    ratios = []
    for seed in range(10):
        found = _run(_monitor("output_tokens"), _lognormal(300 + seed, 4000, change_at=2500, factor=1.5, sigma=0.8))
        assert len(found) == 1
        event = found[0][1]
        assert event.low <= event.after <= event.high
        ratios.append((event.after + 1) / (event.before + 1))
    assert sorted(ratios)[5] == pytest.approx(1.5, rel=0.15)
