"""Drift detection: sequential likelihood-ratio tests (CUSUM) per stream and metric, data-only state.

Each `DriftMonitor` keeps a baseline of its metric and runs Page's CUSUM of the log-likelihood
ratio between the baseline and a few designed alternatives (a mixture of designs with a Bonferroni
threshold, so small and large shifts are both found close to the delay of a test built for them):

- heavy-tailed metrics (latency, tokens, cost, output length) are taken as `log1p(x)`, a Gaussian
  mean shift on that scale (designs `log1p(min_effect)` × 1, 2.5, 6, both directions);
- rates are 0/1 and use a Bernoulli CUSUM (designs `p1 = max(p0·r, p0 + min_rate_change)` with
  `r` = `min_rate_ratio` ^ 1, 2, 3), increases only for the `up` metrics.

The threshold comes from the target false-alarm rate, not by hand: a CUSUM of likelihood ratios
stopped at `h` has an in-control run length of at least `e^h` (Lorden), so `h = ln(false_alarm_calls
× designs)` keeps each stream-metric under one false alarm per `false_alarm_calls` calls, whatever
the number of streams. There is no blind warm-up: a stream borrows its parent's baseline as a prior
(a pseudo-count of `prior_calls`) and tests from its first call; its own samples refine the baseline
with a memory of `warmup` samples (a sample joins it only if no statistic was rising when it came,
and only 20 samples later, so the start of a shift does not leak into the reference).

Why not `river.drift`: River's detectors (ADWIN, Page-Hinkley, KSWIN) are tests against the
detector's own recent past, with no likelihood-ratio form for rates, no threshold from a target
false-alarm rate and no data-only state (their state is only reachable by pickling private
attributes). This module is the statistic written out: every field is a number, so a checkpoint
is JSON validated on load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from math import log, log1p
from typing import Any, Literal

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

_CONTINUOUS_DESIGNS = (1.0, 2.5, 6.0)
_RATE_DESIGN_POWERS = (1, 2, 3)
_Z_CLIP = 5.0  # a single sample moves a statistic by at most this many standard deviations
_MIN_SIGMA = 0.02
_MIN_WEIGHT = 30  # a stream without a parent's prior (the root) tests from its 30th sample
_ABSORB_FRACTION = 0.5  # a sample arriving while every statistic is below this share of h joins the baseline
_ABSORB_DELAY = 20  # ... this many samples later (so the start of a shift stays out of it)


@dataclass(frozen=True)
class DriftConfig:
    """Drift settings (the `drift:` section of a rule file). See `benchmarks/detection.py` for their effect.

    Attributes:
        false_alarm_calls: calls per false alarm tolerated on one stream-metric (sets the threshold).
        warmup: memory of a stream's baseline in samples (it tests from its first call nonetheless).
        prior_calls: weight, in calls, of the parent's baseline in a stream's own baseline.
        cooldown: samples after a finding during which the same monitor stays quiet.
        min_effect: smallest relative change of a continuous metric a test is designed for (0.2 = 20%).
        min_rate_change: smallest absolute rise of a rate a test is designed for.
        min_rate_ratio: smallest factor of a rate a test is designed for.
        model_share: a response model is part of a stream's reference mix from this share of its calls.
        max_streams: streams kept in memory; the least recently used beyond it are forgotten.
    """

    enabled: bool = True
    by_feature: bool = False
    metrics: tuple[str, ...] = tuple(METRICS)
    false_alarm_calls: float = 1e5
    warmup: int = 2000
    prior_calls: int = 30
    cooldown: int = 600
    min_effect: float = 0.2
    min_rate_change: float = 0.02
    min_rate_ratio: float = 2.0
    model_share: float = 0.02
    max_streams: int = 10_000

    def validate(self) -> list[str]:
        problems = [f"drift.metrics: unknown metric {m!r}; known: {list(METRICS)}"
                    for m in self.metrics if m not in METRICS]
        for name in ("warmup", "cooldown", "max_streams"):
            if getattr(self, name) < 1:
                problems.append(f"drift.{name}: must be >= 1")
        if self.prior_calls < 0:
            problems.append("drift.prior_calls: must be >= 0")
        if not 10 <= self.false_alarm_calls <= 1e12:
            problems.append("drift.false_alarm_calls: must be between 10 and 1e12")
        if not 0 < self.model_share < 1:
            problems.append("drift.model_share: must be between 0 and 1")
        if self.min_effect <= 0 or self.min_rate_change <= 0 or self.min_rate_ratio <= 1:
            problems.append("drift: min_effect and min_rate_change must be > 0, min_rate_ratio > 1")
        return problems

    def monitor_params(self) -> dict[str, Any]:
        return {"false_alarm_calls": self.false_alarm_calls, "warmup": self.warmup, "prior_calls": self.prior_calls,
                "cooldown": self.cooldown, "min_effect": self.min_effect, "min_rate_change": self.min_rate_change,
                "min_rate_ratio": self.min_rate_ratio}

    def monitor(self, spec: MetricSpec) -> DriftMonitor:
        """A fresh monitor of one metric with these settings."""
        return DriftMonitor(spec, **self.monitor_params())


@dataclass(frozen=True)
class DriftEvent:
    """What a monitor concluded: the metric moved from `before` to `after` (in the metric's units).

    `low`/`high` bound `after` (about 95%); `since_ns` is the onset the test estimated.
    """

    metric: str
    before: float
    after: float
    low: float
    high: float
    since_ns: int
    detected_ns: int
    samples: int
    cost_usd: float
    confidence: float
    truncated: bool = False


@dataclass(frozen=True)
class Prior:
    """A baseline borrowed from a parent stream: mean and variance (of the monitored scale), weight."""

    mean: float
    var: float


# One CUSUM statistic: [value, onset sample number, onset time ns, cost before onset, sum of y since onset]
_S, _N0, _TS0, _COST0, _SUM = range(5)


class DriftMonitor:
    """Baseline + a mixture of one-sided CUSUMs for one stream metric. River-style: `update` returns self.

    Examples:
        >>> import random
        >>> rng = random.Random(7)
        >>> monitor = DriftMonitor(METRICS["output_tokens"])
        >>> for i in range(3000):
        ...     x = rng.lognormvariate(5.0 if i < 2000 else 5.4, 0.8)
        ...     if monitor.update(x, i, 0.0).drift:
        ...         d = monitor.drift
        ...         print(f"found {i - 2000} calls after onset, x{(d.after + 1) / (d.before + 1):.1f}")
        found 114 calls after onset, x1.6
        >>> DriftMonitor.from_state(METRICS["output_tokens"], monitor.state()).state() == monitor.state()
        True
    """

    def __init__(self, spec: MetricSpec, *, false_alarm_calls: float = 1e5, warmup: int = 300,
                 prior_calls: int = 30, cooldown: int = 600, min_effect: float = 0.2,
                 min_rate_change: float = 0.02, min_rate_ratio: float = 2.0) -> None:
        self.spec = spec
        self.false_alarm_calls = false_alarm_calls
        self.warmup = warmup
        self.prior_calls = prior_calls
        self.cooldown = cooldown
        self.min_effect = min_effect
        self.min_rate_change = min_rate_change
        self.min_rate_ratio = min_rate_ratio
        self._reset()

    def _reset(self) -> None:
        self._log = self.spec.kind == "continuous"
        if self._log:
            self._designs = tuple(s * d for d in _CONTINUOUS_DESIGNS
                                  for s in ((1.0, -1.0) if self.spec.direction == "both" else (1.0,)))
        else:
            self._designs = tuple(self.min_rate_ratio ** p for p in _RATE_DESIGN_POWERS)
            # `up` metrics still watch for a fall (unreported): a recovery is the level the next rise starts from
            falls = self._designs if self.spec.direction == "both" else self._designs[:1]
            self._designs += tuple(-r for r in falls)
        self.h = log(self.false_alarm_calls * len(self._designs))
        self._shape = tuple((abs(d), 1.0 if d > 0 else -1.0) for d in self._designs)
        self._top = 0.0
        self.n = 0
        self.base_n = 0  # own samples in the baseline
        self.base_mean = 0.0
        self.base_m2 = 0.0
        self.prior_mean: float | None = None
        self.prior_var = 0.0
        self.last_finding_n = -(10**12)
        self.last_cost = 0.0
        self.stats = [[0.0, 0, 0, 0.0, 0.0] for _ in self._designs]
        self.pending: list[float] = []
        self._drift: DriftEvent | None = None

    @property
    def drift(self) -> DriftEvent | None:
        """The drift concluded by the last `update`, else `None`."""
        return self._drift

    def needs_prior(self) -> bool:
        return self.prior_mean is None and self.base_n < _MIN_WEIGHT

    def set_prior(self, prior: Prior | None) -> None:
        """Use a parent's baseline until this stream's own baseline outweighs it."""
        if prior is not None:
            self.prior_mean, self.prior_var = prior.mean, prior.var

    def baseline(self) -> Prior | None:
        """This monitor's baseline (mean, variance) for use as a child's prior, or `None` before any sample."""
        mean, var, weight = self._baseline()
        return Prior(mean, var) if weight >= _MIN_WEIGHT else None

    def _baseline(self) -> tuple[float, float, float]:
        """(mean, variance, weight in calls) of own samples blended with the prior."""
        n = self.base_n
        own_var = self.base_m2 / (n - 1) if n > 1 else 0.0
        if self.prior_mean is None or self.prior_calls == 0:
            return self.base_mean, own_var, float(n)
        w = float(self.prior_calls)
        mean = (n * self.base_mean + w * self.prior_mean) / (n + w)
        var = ((max(n - 1, 0) * own_var + w * self.prior_var) / (max(n - 1, 0) + w)
               + n * w / (n + w) ** 2 * (self.base_mean - self.prior_mean) ** 2 * (n > 0))
        return mean, var, n + w

    def update(self, x: float, ts_ns: int, cum_cost: float) -> DriftMonitor:
        """Feed one sample with its event time and the stream's cumulative spend including it."""
        self._drift = None
        y = (log1p(x) if x > 0 else 0.0) if self._log else x
        self.n += 1
        mean, var, weight = self._baseline()
        # decided before this sample moves the statistics, so the choice does not depend on the sample
        admissible = self.quiet()
        if weight >= _MIN_WEIGHT:
            if self._log:
                fired = self._cusum_normal(y, mean, var, weight, ts_ns, cum_cost)
            else:
                fired = self._cusum_bernoulli(y, mean, weight, ts_ns, cum_cost)
        else:
            fired = None
        if fired is not None:
            self._conclude(fired, mean, weight, ts_ns, cum_cost)
        elif admissible:
            if weight < _MIN_WEIGHT:
                self._absorb(y)
            else:  # joins after a delay: a finding before then discards it as part of the shift
                self.pending.append(y)
                if len(self.pending) > _ABSORB_DELAY:
                    self._absorb(self.pending.pop(0))
        self.last_cost = cum_cost
        return self

    def quiet(self) -> bool:
        """Whether no statistic is rising noticeably (then a sample may join the baseline)."""
        return self._top < _ABSORB_FRACTION * self.h

    def _absorb(self, y: float) -> None:
        delta = y - self.base_mean
        if self.base_n < self.warmup:
            self.base_n += 1
            self.base_mean += delta / self.base_n
            self.base_m2 += delta * (y - self.base_mean)
            return
        # past `warmup` samples the baseline keeps learning with that memory (exponential forgetting),
        # so an unlucky early estimate does not stay wrong forever
        alpha = 1 / self.warmup
        self.base_mean += alpha * delta
        var = self.base_m2 / (self.base_n - 1)
        self.base_m2 = (1 - alpha) * (var + alpha * delta * delta) * (self.base_n - 1)

    def _cusum_normal(self, y: float, mean: float, var: float, weight: float, ts_ns: int,
                      cum_cost: float) -> int | None:
        # predictive (Student-t) variance: mean and variance are themselves estimated from `weight` samples
        sigma = max(math.sqrt(var * (1 + 1 / weight) * (weight - 1) / (weight - 3)), _MIN_SIGMA)
        step = self.min_effect_log
        z = max(-_Z_CLIP, min(_Z_CLIP, (y - mean) / sigma))
        # one standard error of the baseline mean, plus up to one sigma while it leans on a parent's prior
        # (a sibling's level may differ from the parent's by about that much), in sigmas
        allowance = 1 / math.sqrt(weight) + (weight - self.base_n) / weight
        scale = step / sigma
        increments = [a * scale * ((z if sign > 0 else -z) - allowance - a * scale / 2)
                      for a, sign in self._shape]
        return self._step(increments, y, ts_ns)

    def _cusum_bernoulli(self, y: float, p: float, weight: float, ts_ns: int, cum_cost: float) -> int | None:
        # Jeffreys estimate, then its upper one-sigma bound: a short baseline errs towards silence
        p = (p * weight + 0.5) / (weight + 1)
        p0 = min(p + math.sqrt(p * (1 - p) / (weight + 1)), 0.98)
        rise = self.min_rate_change
        increments = []
        for ratio in self._designs:
            p1 = min(max(p0 * ratio, p0 + rise), 0.995) if ratio > 0 else p0 / -ratio
            increments.append(log(p1 / p0) if y > 0.5 else log((1 - p1) / (1 - p0)))
        return self._step(increments, y, ts_ns)

    def _step(self, increments: list[float], y: float, ts_ns: int) -> int | None:
        """Advance every statistic by its log-likelihood ratio; the index of the first at `h`, if any."""
        fired, top, h = None, 0.0, self.h
        for i, stat in enumerate(self.stats):
            value = stat[_S] + increments[i]
            if value <= 0.0:
                stat[_S], stat[_N0], stat[_SUM] = 0.0, 0, 0.0
                continue
            if stat[_N0] == 0:  # rising from zero: this sample is the estimated onset
                stat[_N0], stat[_TS0], stat[_COST0] = self.n, ts_ns, self.last_cost
            stat[_S] = value
            stat[_SUM] += y
            if value > top:
                top = value
                if value >= h and fired is None:
                    fired = i
        self._top = top
        return fired

    @property
    def min_effect_log(self) -> float:
        return log1p(self.min_effect)

    def _conclude(self, index: int, mean: float, weight: float, ts_ns: int, cum_cost: float) -> None:
        stat = list(self.stats[index])
        post_n = self.n - stat[_N0] + 1
        after = stat[_SUM] / post_n
        var = self._baseline()[1]
        for s in self.stats:
            s[:] = [0.0, 0, 0, 0.0, 0.0]
        self._top = 0.0
        self.pending = []
        reported = self.spec.direction == "both" or self._designs[index] > 0
        if reported and self.n - self.last_finding_n < self.cooldown:
            return
        if reported:
            self.last_finding_n = self.n
        if self._log:
            se = math.sqrt(max(var, _MIN_SIGMA**2) / post_n)
            stderr = math.sqrt(max(var, _MIN_SIGMA**2) * (1 / post_n + 1 / weight))
            low, high = math.expm1(after - 1.96 * se), math.expm1(after + 1.96 * se)
            before_value, after_value = math.expm1(mean), math.expm1(after)
            confidence = math.erf(abs(after - mean) / stderr / math.sqrt(2))
        else:
            se = math.sqrt(max(after * (1 - after), 1e-6) / post_n)
            low, high = max(after - 1.96 * se, 0.0), min(after + 1.96 * se, 1.0)
            before_value, after_value = mean, after
            pooled = max(mean * (1 - mean), 1e-6) * (1 / post_n + 1 / weight)
            confidence = math.erf(abs(after - mean) / math.sqrt(pooled) / math.sqrt(2))
        # the shifted level is the new reference: rebuild the baseline from the samples to come
        self.prior_mean, self.prior_var = after, var
        self.base_n, self.base_mean, self.base_m2 = 0, 0.0, 0.0
        if not reported:
            return
        self._drift = DriftEvent(metric=self.spec.name, before=before_value, after=after_value, low=low, high=high,
                                 since_ns=stat[_TS0], detected_ns=ts_ns, samples=post_n,
                                 cost_usd=max(cum_cost - stat[_COST0], 0.0), confidence=confidence)

    # --- data-only state

    def state(self) -> dict[str, Any]:
        """Every number the monitor needs to resume (JSON-ready)."""
        return {"n": self.n, "base_n": self.base_n, "base_mean": self.base_mean, "base_m2": self.base_m2,
                "prior_mean": self.prior_mean, "prior_var": self.prior_var, "last_finding_n": self.last_finding_n,
                "last_cost": self.last_cost, "pending": list(self.pending), "stats": [list(s) for s in self.stats]}

    @classmethod
    def from_state(cls, spec: MetricSpec, state: dict[str, Any], **params: Any) -> DriftMonitor:
        """A monitor resumed from `state()` (validated by the caller: `llmrel.analyzers.checkpoint`).

        Raises:
            ValueError: when the statistics do not fit this monitor's designs.
        """
        monitor = cls(spec, **params)
        if len(state["stats"]) != len(monitor.stats):
            raise ValueError(f"{spec.name}: {len(state['stats'])} statistics, expected {len(monitor.stats)}")
        for name in ("n", "base_n", "base_mean", "base_m2", "prior_mean", "prior_var", "last_finding_n", "last_cost",
                     "pending"):
            setattr(monitor, name, state[name])
        monitor.stats = [[float(s[0]), int(s[1]), int(s[2]), float(s[3]), float(s[4])] for s in state["stats"]]
        monitor._top = max((s[_S] for s in monitor.stats), default=0.0)
        return monitor
