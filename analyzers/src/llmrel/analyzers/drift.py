"""Drift detection on River: one `DriftMonitor` per stream (service × model × operation) and metric.

A monitor wraps a River drift detector (ADWIN by default) and adds what an alerting product needs
on top of River's raw signal: a warm-up before any finding, a minimum effect size (a statistically
real but tiny shift is not worth a page), a cooldown and a hysteresis reference so one shift gives
one finding, and the numbers a finding reports: mean before and after, the event time the new
regime started, the spend since then, and a confidence.

Heavy-tailed metrics (latency, tokens, cost, output length) are fed as `log1p(x)`: a multiplicative
change becomes a shift of the mean, and one slow call no longer dominates the variance. Rates are
fed as 0/1, and only increases of a rate are reported for the `up` metrics (errors, truncations,
refusals, violations, model swaps).
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from math import log1p
from typing import Literal

from river import drift as river_drift
from river.base import DriftDetector

Direction = Literal["both", "up"]
MetricKind = Literal["continuous", "rate"]


@dataclass(frozen=True)
class MetricSpec:
    """How a metric is monitored: continuous (log scale) or a 0/1 rate, and which moves count."""

    name: str
    kind: MetricKind
    direction: Direction
    severity: str
    unit: str


METRICS: dict[str, MetricSpec] = {m.name: m for m in (
    MetricSpec("latency_ms", "continuous", "both", "warning", "ms"),
    MetricSpec("ttft_ms", "continuous", "both", "warning", "ms"),
    MetricSpec("input_tokens", "continuous", "both", "warning", "tokens"),
    MetricSpec("output_tokens", "continuous", "both", "warning", "tokens"),
    MetricSpec("cost_usd", "continuous", "both", "warning", "USD"),
    MetricSpec("output_chars", "continuous", "both", "warning", "chars"),
    MetricSpec("error_rate", "rate", "up", "error", ""),
    MetricSpec("length_finish_rate", "rate", "up", "warning", ""),
    MetricSpec("refusal_rate", "rate", "up", "warning", ""),
    MetricSpec("violation_rate", "rate", "up", "error", ""),
    MetricSpec("tool_call_rate", "rate", "both", "warning", ""),
    MetricSpec("model_swap_rate", "rate", "up", "error", ""),
)}

DETECTORS: tuple[str, ...] = ("adwin", "page_hinkley")


@dataclass(frozen=True)
class DriftConfig:
    """Drift settings (the `drift:` section of a rule file). Defaults are tuned by `benchmarks/analyzer_bench.py`.

    Attributes:
        warmup: samples a monitor sees before it may report (the detector learns meanwhile).
        cooldown: samples after a finding during which the same monitor stays quiet.
        delta: ADWIN confidence parameter for continuous metrics (smaller = fewer false alarms).
        rate_delta: ADWIN confidence parameter for 0/1 rates.
        clock: ADWIN checks for a cut every `clock` samples.
        min_effect: smallest relative change of a continuous metric worth a finding (0.2 = 20%).
        min_rate_change: smallest absolute change of a rate worth a finding (0.02 = 2 points).
        min_rate_ratio: and the rate must change by at least this factor.
        model_share: a response model is part of a stream's reference mix at this share of warm-up.
    """

    enabled: bool = True
    by_feature: bool = False
    metrics: tuple[str, ...] = tuple(METRICS)
    detector: str = "adwin"
    warmup: int = 300
    cooldown: int = 600
    delta: float = 1e-3
    rate_delta: float = 1e-2
    clock: int = 16
    min_effect: float = 0.2
    min_rate_change: float = 0.02
    min_rate_ratio: float = 2.0
    model_share: float = 0.02

    def validate(self) -> list[str]:
        problems = [f"drift.metrics: unknown metric {m!r}; known: {list(METRICS)}"
                    for m in self.metrics if m not in METRICS]
        if self.detector not in DETECTORS:
            problems.append(f"drift.detector: must be one of {list(DETECTORS)}")
        for name in ("warmup", "cooldown", "clock"):
            if getattr(self, name) < 1:
                problems.append(f"drift.{name}: must be >= 1")
        for name in ("delta", "rate_delta", "model_share"):
            if not 0 < getattr(self, name) < 1:
                problems.append(f"drift.{name}: must be between 0 and 1")
        if self.min_effect < 0 or self.min_rate_change < 0 or self.min_rate_ratio < 1:
            problems.append("drift: min_effect and min_rate_change must be >= 0, min_rate_ratio >= 1")
        return problems

    def make_detector(self, spec: MetricSpec) -> DriftDetector:
        """A fresh River detector for one metric."""
        delta = self.delta if spec.kind == "continuous" else self.rate_delta
        if self.detector == "page_hinkley":
            return river_drift.PageHinkley(min_instances=self.warmup, delta=0.005, threshold=50.0)
        return river_drift.ADWIN(delta=delta, clock=self.clock)


@dataclass(frozen=True)
class DriftEvent:
    """What a monitor concluded: the metric moved from `before` to `after` (in the metric's units)."""

    metric: str
    before: float
    after: float
    since_ns: int
    detected_ns: int
    samples: int
    cost_usd: float
    confidence: float
    truncated: bool


_RING = 256
_RING_MASK = _RING - 1
_MIN_POST = 5


class DriftMonitor:
    """River detector + warm-up, effect size, cooldown and hysteresis, for one stream metric.

    Follows River's contract: parameters are stored verbatim, `_reset()` builds the state,
    `update()` returns `self`, and the result is the read-only `drift` property (reset on the
    next `update`). Any `river.base.DriftDetector` works: when it signals, the samples since its
    last reset are split at the most likely change point among the last 255 samples, which gives
    the means before and after and the onset time.

    Examples:
        >>> import random
        >>> from river.drift import ADWIN
        >>> rng = random.Random(7)
        >>> monitor = DriftMonitor(METRICS["output_tokens"], ADWIN(delta=1e-4, clock=16), warmup=300)
        >>> for i in range(3000):
        ...     x = rng.lognormvariate(5.0 if i < 2000 else 5.7, 0.5)
        ...     if monitor.update(x, i, 0.0).drift:
        ...         d = monitor.drift
        ...         print(f"at {i}: since {d.since_ns}, {d.before:.0f} -> {d.after:.0f}")
        at 2047: since 2004, 146 -> 291
    """

    def __init__(self, spec: MetricSpec, detector: DriftDetector, *, warmup: int = 300, cooldown: int = 600,
                 min_effect: float = 0.2, min_rate_change: float = 0.02, min_rate_ratio: float = 2.0) -> None:
        self.spec = spec
        self.detector = detector
        self.warmup = warmup
        self.cooldown = cooldown
        self.min_effect = min_effect
        self.min_rate_change = min_rate_change
        self.min_rate_ratio = min_rate_ratio
        self._reset()

    def _reset(self) -> None:
        self._detector = self.detector.clone()
        self._log = self.spec.kind == "continuous"
        self._log_min_effect = math.log1p(self.min_effect)
        self.n = 0
        self._last_finding_n = -(10**12)
        self._reference: float | None = None
        self._sum = 0.0
        self._sum_n = 0
        self._ring_ts = array("q", bytes(8 * _RING))
        self._ring_cost = array("d", bytes(8 * _RING))
        self._ring_y = array("d", bytes(8 * _RING))
        self._drift: DriftEvent | None = None

    @property
    def drift(self) -> DriftEvent | None:
        """The drift concluded by the last `update`, else `None`."""
        return self._drift

    def update(self, x: float, ts_ns: int, cum_cost: float) -> DriftMonitor:
        """Feed one sample with its event time and the stream's cumulative spend including it."""
        # Hot path (about ten calls per analyzed LLM call): locals and no extra method calls.
        self._drift = None
        y = (log1p(x) if x > 0 else 0.0) if self._log else x
        n = self.n = self.n + 1
        slot = n & _RING_MASK
        self._ring_ts[slot] = ts_ns
        self._ring_cost[slot] = cum_cost
        self._ring_y[slot] = y
        det = self._detector
        det.update(y)  # River 0.26's ADWIN.update returns None, so the flag is read separately
        if not det.drift_detected:
            self._sum += y
            self._sum_n += 1
            return self
        # Before this sample the detector's window held the samples since its last cut: (_sum, _sum_n).
        total_n, total = self._sum_n + 1, self._sum + y
        after_n, before, after, variance = self._split(total, total_n)
        # River detectors reset themselves on the next update after a detection.
        self._sum, self._sum_n = 0.0, 0
        if n <= self.warmup or not self._is_effect(before, after):
            return self
        if self.spec.direction == "up" and after < before:
            # A recovery is not reported, but it is the new level the next rise is measured from.
            self._reference = after
            return self
        if n - self._last_finding_n < self.cooldown:
            return self
        if self._reference is not None and not self._is_effect(self._reference, after):
            return self
        self._last_finding_n = n
        self._reference = after
        self._drift = self._event(before, after, after_n, total_n - after_n, variance, ts_ns, cum_cost)
        return self

    def _split(self, total: float, total_n: int) -> tuple[int, float, float, float]:
        """Most likely change point among the recent samples (max two-sample t statistic).

        ADWIN cuts at bucket boundaries, so its remaining window still mixes old samples;
        this refines the split on the exact recent values kept in the ring.
        """
        n, ring = self.n, self._ring_y
        span = min(_RING - 1, total_n - 1, n)
        best_k, best_stat, post = 1, -1.0, 0.0
        sums = []
        for k in range(1, span + 1):
            post += ring[(n - k + 1) % _RING]
            sums.append(post)
            if k < _MIN_POST:
                continue
            rest = total_n - k
            stat = abs(post / k - (total - post) / rest) * math.sqrt(k * rest / total_n)
            if stat > best_stat:
                best_k, best_stat = k, stat
        post = sums[best_k - 1] if sums else ring[n % _RING]
        after = post / best_k
        before = (total - post) / max(total_n - best_k, 1)
        sq = 0.0
        for k in range(1, span + 1):
            v = ring[(n - k + 1) % _RING]
            sq += (v - (after if k <= best_k else before)) ** 2
        variance = sq / max(span - 1, 1)
        return best_k, before, after, variance

    def _is_effect(self, before: float, after: float) -> bool:
        if self._log:
            return abs(after - before) >= self._log_min_effect
        low, high = min(before, after), max(before, after)
        return high - low >= self.min_rate_change and high >= low * self.min_rate_ratio

    def _event(self, before: float, after: float, after_n: int, before_n: int, variance: float,
               ts_ns: int, cum_cost: float) -> DriftEvent:
        start = self.n - after_n + 1
        truncated = after_n >= _RING - 1
        since_ns = self._ring_ts[start % _RING]
        cost_before = self._ring_cost[(start - 1) % _RING] if start > 1 else 0.0
        stderr = math.sqrt(max(variance, 1e-12) * (1 / max(before_n, 1) + 1 / after_n))
        confidence = math.erf(abs(after - before) / stderr / math.sqrt(2))
        convert = math.expm1 if self._log else float
        return DriftEvent(metric=self.spec.name, before=convert(before), after=convert(after), since_ns=since_ns,
                          detected_ns=ts_ns, samples=after_n, cost_usd=max(cum_cost - cost_before, 0.0),
                          confidence=confidence, truncated=truncated)
