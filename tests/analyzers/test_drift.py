"""Real River detectors inside `DriftMonitor` on seeded streams with known change points."""

from __future__ import annotations

import math
import pickle
import random

import pytest
from river.drift import ADWIN, PageHinkley

from llmrel.analyzers.drift import METRICS, DriftConfig, DriftMonitor


def _monitor(metric: str, **kwargs: float) -> DriftMonitor:
    config = DriftConfig()
    return DriftMonitor(METRICS[metric], config.make_detector(METRICS[metric]), warmup=config.warmup,
                        cooldown=config.cooldown, min_effect=config.min_effect,
                        min_rate_change=config.min_rate_change, min_rate_ratio=config.min_rate_ratio, **kwargs)


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


def test_no_finding_during_warm_up():
    monitor = _monitor("output_tokens")
    assert _run(monitor, _lognormal(3, 600, change_at=150, factor=3.0)) == []
    assert monitor.n == 600


def test_small_effect_is_not_reported():
    # A real but 8% shift: River may signal it, but it is below the 20% minimum effect.
    assert _run(_monitor("output_tokens"), _lognormal(4, 20_000, change_at=5000, factor=1.08)) == []


def test_river_contract_update_returns_self_and_state_pickles_mid_stream():
    values = _lognormal(5, 5000, change_at=3000, factor=2.0)
    monitor = _monitor("output_tokens")
    assert monitor.update(values[0], 0, 0.0) is monitor
    for i, x in enumerate(values[1:2900], start=1):
        monitor.update(x, i, 0.0)
    restored = pickle.loads(pickle.dumps(monitor))
    found_original = [i for i, x in enumerate(values[2900:], start=2900) if monitor.update(x, i, 0.0).drift]
    found_restored = [i for i, x in enumerate(values[2900:], start=2900) if restored.update(x, i, 0.0).drift]
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


@pytest.mark.parametrize("detector", [ADWIN(delta=1e-4), PageHinkley(min_instances=300, threshold=50.0)],
                         ids=["adwin", "page_hinkley"])
def test_any_river_detector_slots_in(detector):
    monitor = DriftMonitor(METRICS["latency_ms"], detector, warmup=300, cooldown=600)
    found = _run(monitor, _lognormal(7, 6000, change_at=3000, factor=2.5))
    assert len(found) >= 1
    index, event = found[0]
    assert 3000 < index < 3600
    assert event.after > event.before * 1.5
