"""Canary verdicts: is the canary version of a service worse than its baseline? (pure statistics)

Four metrics, each a one-sided test of "canary worse", at `alpha / 4` (Bonferroni over the four),
and a minimum effect so a statistically real but negligible difference never fails a rollout:

* error_rate: Fisher's exact test on errors / calls; fails when also the canary's rate is at least
  the baseline's x `min_rate_ratio` and `min_rate_increase` above it;
* violation_rate: the same on calls with an invariant finding;
* latency_p95: binomial test of the share of canary calls slower than the baseline's p95 against
  5%; fails when also the canary's p95 >= the baseline's x `min_latency_ratio`;
* cost_per_success: Mann-Whitney U on the cost of successful priced calls; fails when also the
  spend per successful call >= the baseline's x `min_cost_ratio`.

Verdict: `inconclusive` while either version has fewer than `min_calls` calls; else `fail` if any
metric fails, else `pass`. A metric without data on one side (e.g. no priced calls) is `skipped`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Verdict = Literal["pass", "fail", "inconclusive"]
METRICS: tuple[str, ...] = ("error_rate", "violation_rate", "latency_p95", "cost_per_success")
_TAIL = 0.05  # the p95's tail


@dataclass(frozen=True)
class GateConfig:
    min_calls: int = 50
    alpha: float = 0.05
    min_rate_ratio: float = 1.5
    min_rate_increase: float = 0.01
    min_latency_ratio: float = 1.2
    min_cost_ratio: float = 1.2


@dataclass(frozen=True)
class VersionSample:
    """One version's calls in the window."""

    version: str
    calls: int
    errors: int
    violations: int
    latencies_ms: np.ndarray = field(default_factory=lambda: np.empty(0))
    success_costs: np.ndarray = field(default_factory=lambda: np.empty(0))  # cost of successful priced calls
    cost_usd: float = 0.0  # spend of all calls
    successes: int = 0


@dataclass(frozen=True)
class MetricResult:
    name: str
    verdict: Literal["pass", "fail", "skipped"]
    canary: float | None
    baseline: float | None
    p_value: float | None
    test: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "canary": _finite(self.canary), "baseline": _finite(self.baseline),
                "p_value": _finite(self.p_value), "test": self.test, "detail": self.detail}


@dataclass(frozen=True)
class GateResult:
    verdict: Verdict
    reason: str
    canary: VersionSample
    baseline: VersionSample
    metrics: list[MetricResult]
    config: GateConfig

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict, "reason": self.reason,
            "canary_version": self.canary.version, "baseline_version": self.baseline.version,
            "calls": {"canary": self.canary.calls, "baseline": self.baseline.calls},
            "min_calls": self.config.min_calls, "alpha": self.config.alpha,
            "metrics": {m.name: m.to_json() for m in self.metrics},
        }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def judge(canary: VersionSample, baseline: VersionSample, config: GateConfig | None = None) -> GateResult:
    """Compare a canary with its baseline."""
    config = config or GateConfig()
    if canary.calls < config.min_calls or baseline.calls < config.min_calls:
        reason = (f"too few calls to judge: canary {canary.calls}, baseline {baseline.calls} "
                  f"(at least {config.min_calls} each)")
        return GateResult("inconclusive", reason, canary, baseline, [], config)
    alpha = config.alpha / len(METRICS)
    metrics = [
        _rate("error_rate", canary.errors, canary.calls, baseline.errors, baseline.calls, alpha, config),
        _rate("violation_rate", canary.violations, canary.calls, baseline.violations, baseline.calls, alpha, config),
        _latency(canary, baseline, alpha, config),
        _cost(canary, baseline, alpha, config),
    ]
    failed = [m for m in metrics if m.verdict == "fail"]
    if failed:
        return GateResult("fail", "; ".join(f"{m.name}: {m.detail}" for m in failed), canary, baseline, metrics,
                          config)
    return GateResult("pass", "no metric is significantly worse on the canary", canary, baseline, metrics, config)


def _rate(name: str, k_c: int, n_c: int, k_b: int, n_b: int, alpha: float, config: GateConfig) -> MetricResult:
    from scipy import stats  # ~75 MiB: loaded when a gate is first judged, not by every receiver

    p_c, p_b = k_c / n_c, k_b / n_b
    p_value = float(stats.fisher_exact([[k_c, n_c - k_c], [k_b, n_b - k_b]], alternative="greater").pvalue)
    material = p_c >= p_b * config.min_rate_ratio and p_c - p_b >= config.min_rate_increase
    worse = p_value < alpha and material
    detail = f"canary {p_c:.2%} ({k_c}/{n_c}) vs baseline {p_b:.2%} ({k_b}/{n_b}), p={p_value:.3g}"
    return MetricResult(name, "fail" if worse else "pass", p_c, p_b, p_value, "fisher_exact one-sided", detail)


def _latency(canary: VersionSample, baseline: VersionSample, alpha: float, config: GateConfig) -> MetricResult:
    from scipy import stats  # ~75 MiB: loaded when a gate is first judged, not by every receiver

    test = "binomial: canary share above baseline p95 vs 5%"
    if canary.latencies_ms.size == 0 or baseline.latencies_ms.size == 0:
        return MetricResult("latency_p95", "skipped", None, None, None, test, "no latencies")
    p95_c = float(np.quantile(canary.latencies_ms, 1 - _TAIL))
    p95_b = float(np.quantile(baseline.latencies_ms, 1 - _TAIL))
    slower = int(np.count_nonzero(canary.latencies_ms > p95_b))
    p_value = float(stats.binomtest(slower, canary.latencies_ms.size, _TAIL, alternative="greater").pvalue)
    worse = p_value < alpha and p95_c >= p95_b * config.min_latency_ratio
    detail = (f"canary p95 {p95_c:.0f} ms vs baseline {p95_b:.0f} ms; {slower}/{canary.latencies_ms.size} canary "
              f"calls above the baseline p95, p={p_value:.3g}")
    return MetricResult("latency_p95", "fail" if worse else "pass", p95_c, p95_b, p_value, test, detail)


def _cost(canary: VersionSample, baseline: VersionSample, alpha: float, config: GateConfig) -> MetricResult:
    from scipy import stats  # ~75 MiB: loaded when a gate is first judged, not by every receiver

    test = "mann_whitney_u one-sided on successful call cost"
    if (canary.success_costs.size == 0 or baseline.success_costs.size == 0 or not canary.successes
            or not baseline.successes):
        return MetricResult("cost_per_success", "skipped", None, None, None, test, "no priced successful calls")
    per_c, per_b = canary.cost_usd / canary.successes, baseline.cost_usd / baseline.successes
    p_value = float(stats.mannwhitneyu(canary.success_costs, baseline.success_costs, alternative="greater").pvalue)
    worse = p_value < alpha and per_c >= per_b * config.min_cost_ratio
    detail = f"canary ${per_c:.6f} vs baseline ${per_b:.6f} per successful call, p={p_value:.3g}"
    return MetricResult("cost_per_success", "fail" if worse else "pass", per_c, per_b, p_value, test, detail)
