"""Drift detection: an adaptive (GLR-type) CUSUM per stream, metric and direction, data-only state.

Each `DriftMonitor` keeps a baseline of its metric and runs Page's CUSUM of log-likelihood ratios
in which the post-change parameter is not designed in advance but estimated, by maximum likelihood
shrunk towards the smallest change of interest, from the samples since the statistic last left zero
(the adaptive CUSUM of Lorden & Pollak, a recursive form of the GLR test). The estimate used for a
sample is taken before that sample is seen, so every increment is a true likelihood ratio and
Lorden's bound holds: a statistic stopped at `h` runs at least `e^h` calls between false alarms,
and `h = ln(false_alarm_calls × reported directions)` is the whole threshold choice.

- heavy-tailed metrics (latency, tokens, cost, output length) are taken as `log1p(x)`, a Gaussian
  mean shift on that scale, at least `log1p(min_effect)`;
- rates are 0/1 and use a Bernoulli likelihood, a rise of at least `max(p0·min_rate_ratio, p0 +
  min_rate_change)`, increases only for the `up` metrics.

One statistic per direction replaces a bank of designed shift sizes: small shifts are found near
the delay of a test built for them, large ones too, and the size reported is the estimate after the
change point with an interval (for rates the change point is re-estimated by maximum likelihood
over the events of the run, so a stray early event does not dilute the new rate).

There is no blind warm-up: a stream starts from its stored history (`llmrel.analyzers.history`)
or borrows its parent's baseline as a prior (a pseudo-count of `prior_calls`) and tests from its
first call; its own samples refine the baseline with a memory of `warmup` samples (at least 100
expected events for a rate). A sample joins the baseline only if no statistic was rising when it
came, and only 20 samples later, so the start of a shift does not leak into the reference.

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
    scale: float = 1.0  # monitored as log1p(x × scale): the log of a few cents needs cents in micro-dollars


METRICS: dict[str, MetricSpec] = {m.name: m for m in (
    MetricSpec("latency_ms", "continuous", "both", "warning", "ms"),
    MetricSpec("ttft_ms", "continuous", "both", "warning", "ms"),
    MetricSpec("input_tokens", "continuous", "both", "warning", "tokens"),
    MetricSpec("output_tokens", "continuous", "both", "warning", "tokens"),
    MetricSpec("cost_usd", "continuous", "both", "warning", "USD", 1e6),
    MetricSpec("output_chars", "continuous", "both", "warning", "chars"),
    MetricSpec("error_rate", "rate", "up", "error", ""),
    MetricSpec("length_finish_rate", "rate", "up", "warning", ""),
    MetricSpec("refusal_rate", "rate", "up", "warning", ""),
    MetricSpec("violation_rate", "rate", "up", "error", ""),
    MetricSpec("tool_call_rate", "rate", "both", "warning", ""),
    MetricSpec("model_swap_rate", "rate", "up", "error", ""),
)}

_Z_CLIP = 5.0  # a single sample moves a statistic by at most this many standard deviations
_MAX_SHIFT = 4.0  # largest estimated mean shift, in standard deviations (outliers cannot run away with it)
_SHRINK_SAMPLES = 0.5  # weight, in samples, of the smallest change of interest in a continuous estimate
_SHRINK_EVENTS = 2.0  # ... and, in events, in a rate estimate
_RATE_MARGIN = 1.0  # a rate baseline is tested at its estimate plus this many standard errors
_RATE_MEMORY_EVENTS = 100  # a rate baseline remembers at least this many expected events ...
_RATE_MEMORY_MAX = 50_000  # ... within this many samples
_MIN_SIGMA = 0.02
_ALLOWANCE_CALLS = 20.0  # a continuous baseline of w samples is tested at its mean plus min(1/√w, this/w) sigmas
_MIN_WEIGHT = 30  # a stream without a parent's prior (the root) tests from its 30th sample
_ABSORB_FRACTION = 0.5  # a sample arriving while every statistic is below this share of h joins the baseline
_ABSORB_DELAY = 20  # ... this many samples later (so the start of a shift stays out of it)
_EVENT_TRIM = 1  # the first event of a re-estimated rate segment is where it starts, not evidence
_MAX_EVENTS = 64  # events of a rising rate statistic kept to place its change point


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
        history_hours: how far back a stream without a checkpoint reads its stored calls on start.
        history_calls: at most this many stored calls per stream are read on start.
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
    history_hours: float = 24.0
    history_calls: int = 20_000

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
        if not 0 <= self.history_hours <= 24 * 30:
            problems.append("drift.history_hours: must be between 0 and 720")
        if not 0 <= self.history_calls <= 1_000_000:
            problems.append("drift.history_calls: must be between 0 and 1000000")
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
    """A baseline borrowed from a parent stream: mean and variance (of the monitored scale)."""

    mean: float
    var: float


# One CUSUM statistic: [value, onset sample number, onset time ns, cost before onset, sum of y since onset, count]
_S, _N0, _TS0, _COST0, _SUM, _CNT = range(6)


_DIRECTIONS = ((0, 1.0), (1, -1.0))


def _fresh() -> list[float]:
    return [0.0, 0, 0, 0.0, 0.0, 0]


class DriftMonitor:
    """Baseline + one adaptive CUSUM per direction for one stream metric. River-style: `update` returns self.

    Examples:
        >>> import random
        >>> rng = random.Random(7)
        >>> monitor = DriftMonitor(METRICS["output_tokens"])
        >>> monitor.seed(2000, mean=5.0, var=0.8**2)  # stored history: log1p mean and variance
        >>> for i in range(1000):
        ...     x = rng.lognormvariate(5.0 if i < 500 else 5.4, 0.8)
        ...     if monitor.update(x, i, 0.0).drift:
        ...         d = monitor.drift
        ...         r = [(v + 1) / (d.before + 1) for v in (d.after, d.low, d.high)]
        ...         print(f"{i - 500} calls after onset: x{r[0]:.2f} ({r[1]:.2f}-{r[2]:.2f})")
        74 calls after onset: x1.76 (1.45-2.15)
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
        self._log = spec.kind == "continuous"
        self._both = spec.direction == "both"
        # `up` rates still watch for a fall (unreported): a recovery is the level the next rise starts from
        self.h = log(false_alarm_calls * (2 if self._both else 1))
        self._min_log = log1p(min_effect)
        self.n = 0
        self.base_n = 0  # own samples in the baseline
        self.base_mean = 0.0
        self.base_m2 = 0.0
        self.prior_mean: float | None = None
        self.prior_var = 0.0
        self.last_finding_n = -(10**12)
        self.last_cost = 0.0
        self.stats = [_fresh(), _fresh()]  # rise, fall
        self.events: list[list[int]] = []  # [sample number, time ns] of the 1s since the rise left zero (rates)
        self.pending: list[float] = []
        self._drift: DriftEvent | None = None
        self._refresh()

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
            self._refresh()

    def baseline(self) -> Prior | None:
        """This monitor's baseline (mean, variance) for use as a child's prior, or `None` before any sample."""
        mean, var, weight = self._baseline()
        return Prior(mean, var) if weight >= _MIN_WEIGHT else None

    def seed(self, count: int, mean: float, var: float) -> None:
        """Start the baseline from stored history: `count` samples of this mean and variance (monitored scale)."""
        n = min(count, self._memory(mean))
        if n < 1:
            return
        self.base_n, self.base_mean, self.base_m2 = n, mean, max(var, 0.0) * max(n - 1, 0)
        self._refresh()

    def _memory(self, mean: float) -> int:
        if self._log:
            return self.warmup
        return int(max(self.warmup, min(_RATE_MEMORY_MAX, _RATE_MEMORY_EVENTS / max(mean, 1e-9))))

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

    def _refresh(self) -> None:
        """Recompute the test's constants from the baseline (after it changed)."""
        mean, var, weight = self._baseline()
        self._ready = weight >= _MIN_WEIGHT
        self._quiet_below = _ABSORB_FRACTION * self.h
        self._memory_now = self._memory(self.base_mean) if self.base_n else self.warmup
        self._mean, self._var, self._weight = mean, var, weight
        if not self._ready:
            return
        if self._log:
            # predictive (Student-t) variance: mean and variance are themselves estimated from `weight` samples
            sigma = max(math.sqrt(var * (1 + 1 / weight) * (weight - 1) / max(weight - 3, 1)), _MIN_SIGMA)
            # one standard error of a short baseline's mean, fading as 1/w once the predictive variance covers
            # it (a full allowance on a long baseline costs a small shift ~10% of its delay), plus up to one
            # sigma while it leans on a parent's prior (a sibling's level may differ by about that much)
            allowance = min(1 / math.sqrt(weight), _ALLOWANCE_CALLS / weight) + (weight - self.base_n) / weight
            self._consts = (mean, sigma, allowance, self._min_log / sigma)
        else:
            # Jeffreys estimate, then a margin of standard errors: a short baseline errs towards silence
            p = (mean * weight + 0.5) / (weight + 1)
            p0 = min(p + _RATE_MARGIN * math.sqrt(p * (1 - p) / (weight + 1)), 0.98)
            rise = min(max(p0 * self.min_rate_ratio, p0 + self.min_rate_change), 0.995)
            fall = p0 / self.min_rate_ratio
            self._consts = (p0, rise, log(rise / p0), log((1 - rise) / (1 - p0)),
                            log(fall / p0), log((1 - fall) / (1 - p0)), _SHRINK_EVENTS / rise)

    def update(self, x: float, ts_ns: int, cum_cost: float) -> DriftMonitor:
        """Feed one sample with its event time and the stream's cumulative spend including it."""
        self._drift = None
        y = (log1p(x * self.spec.scale) if x > 0 else 0.0) if self._log else x
        self.n += 1
        rise, fall = self.stats
        # decided before this sample moves the statistics, so the choice does not depend on the sample
        admissible = rise[_S] < self._quiet_below and fall[_S] < self._quiet_below
        fired = None
        if self._ready:
            fired = self._step_normal(y, ts_ns) if self._log else self._step_bernoulli(y, ts_ns)
        if fired is not None:
            self._conclude(fired, ts_ns, cum_cost)
        elif admissible:
            if not self._ready:
                self._absorb(y)
            else:  # joins after a delay: a finding before then discards it as part of the shift
                pending = self.pending
                pending.append(y)
                if len(pending) > _ABSORB_DELAY:
                    self._absorb(pending.pop(0))
        self.last_cost = cum_cost
        return self

    def learn(self, x: float) -> DriftMonitor:
        """Feed one sample to the baseline only (a stream that lends priors but is not tested)."""
        self.n += 1
        self._absorb((log1p(x * self.spec.scale) if x > 0 else 0.0) if self._log else x)
        return self

    def quiet(self) -> bool:
        """Whether no statistic is rising noticeably (then a sample may join the baseline)."""
        return self.stats[0][_S] < self._quiet_below and self.stats[1][_S] < self._quiet_below

    def _absorb(self, y: float) -> None:
        delta = y - self.base_mean
        memory = self._memory_now
        if self.base_n < memory:
            self.base_n += 1
            self.base_mean += delta / self.base_n
            self.base_m2 += delta * (y - self.base_mean)
        else:
            # past its memory the baseline keeps learning with that memory (exponential forgetting),
            # so an unlucky early estimate does not stay wrong forever
            alpha = 1 / memory
            self.base_mean += alpha * delta
            var = self.base_m2 / (self.base_n - 1)
            self.base_m2 = (1 - alpha) * (var + alpha * delta * delta) * (self.base_n - 1)
        if self.base_n < 200 or self.n & 15 == 0:  # a long baseline moves slowly: refresh now and then
            self._refresh()

    def _step_normal(self, y: float, ts_ns: int) -> int | None:
        mean, sigma, allowance, smallest = self._consts
        z = (y - mean) / sigma
        z = _Z_CLIP if z > _Z_CLIP else -_Z_CLIP if z < -_Z_CLIP else z
        fired = None
        for index, sign in _DIRECTIONS:
            stat = self.stats[index]
            count = stat[_CNT]
            # shift since the statistic left zero (in sigmas, this direction), shrunk towards the smallest one
            theta = smallest
            if count:
                theta = (sign * (stat[_SUM] - count * mean) / sigma + _SHRINK_SAMPLES * smallest) / (
                    count + _SHRINK_SAMPLES)
                theta = smallest if theta < smallest else _MAX_SHIFT if theta > _MAX_SHIFT else theta
            value = stat[_S] + theta * (sign * z - allowance - theta / 2)
            if value <= 0.0:  # the common case, inlined
                if count:
                    stat[:] = _fresh()
            elif self._advance(stat, value, y, ts_ns) and fired is None:
                fired = index
        return fired

    def _step_bernoulli(self, y: float, ts_ns: int) -> int | None:
        p0, rise, up_hit, up_miss, down_hit, down_miss, shrink = self._consts
        up, down = self.stats
        hit = y > 0.5
        count = up[_CNT]
        if count:
            p1 = (up[_SUM] + _SHRINK_EVENTS) / (count + shrink)
            p1 = rise if p1 < rise else 0.995 if p1 > 0.995 else p1
            value = up[_S] + (log(p1 / p0) if hit else log((1 - p1) / (1 - p0)))
        else:
            value = up[_S] + (up_hit if hit else up_miss)
        fired = None
        if value <= 0.0:  # the common case, inlined
            if count:
                up[:] = _fresh()
                self.events = []
        elif self._advance(up, value, y, ts_ns):
            fired = 0
        if hit and up[_CNT]:
            self.events.append([self.n, ts_ns])
            if len(self.events) > _MAX_EVENTS:
                del self.events[0]
        if self._advance(down, down[_S] + (down_hit if hit else down_miss), y, ts_ns) and fired is None:
            fired = 1
        return fired

    def _advance(self, stat: list[float], value: float, y: float, ts_ns: int) -> bool:
        """Move one statistic to `value` (reset at zero); whether it reached the threshold."""
        if value <= 0.0:
            if stat[_CNT]:
                stat[:] = _fresh()
            return False
        if stat[_CNT] == 0:  # rising from zero: this sample is the estimated onset
            stat[_N0], stat[_TS0], stat[_COST0] = self.n, ts_ns, self.last_cost
        stat[_S] = value
        stat[_SUM] += y
        stat[_CNT] += 1
        return value >= self.h

    def _onset(self, stat: list[float]) -> tuple[int, int, float]:
        """(first sample number, its time, sum of y) of the post-change segment. For a rate rise, the change point
        maximizing the likelihood over the run's events (a stray early 1 would dilute the new rate)."""
        first, first_ns, total = int(stat[_N0]), int(stat[_TS0]), stat[_SUM]
        if self._log or stat is not self.stats[0] or not self.events:
            return first, first_ns, total
        p0 = self._consts[0]
        best, best_onset = -math.inf, (first, first_ns, total)
        events = self.events
        for j, (start, start_ns) in enumerate(events):
            hits, m = len(events) - j, self.n - start + 1
            p = hits / m
            if p <= p0:
                continue
            llr = hits * log(p / p0) + (m - hits) * (log((1 - p) / (1 - p0)) if p < 1 else 0.0)
            if llr > best:
                # the segment's rate is counted after its first event: a segment chosen to start at an
                # event would otherwise count that event as evidence of the new rate (biased upwards)
                best, best_onset = llr, (start, start_ns, float(hits - _EVENT_TRIM))
        return best_onset

    def _conclude(self, index: int, ts_ns: int, cum_cost: float) -> None:
        stat = list(self.stats[index])
        first, first_ns, total = self._onset(self.stats[index])
        post_n = self.n - first + 1
        after = total / max(post_n - (total != stat[_SUM]) * _EVENT_TRIM, 1)
        mean, var, weight = self._mean, self._var, self._weight
        self.stats = [_fresh(), _fresh()]
        self.events = []
        self.pending = []
        reported = self._both or index == 0
        if reported and self.n - self.last_finding_n < self.cooldown:
            reported = False
        if reported:
            self.last_finding_n = self.n
        if self._log:
            se = math.sqrt(max(var, _MIN_SIGMA**2) / post_n)
            stderr = math.sqrt(max(var, _MIN_SIGMA**2) * (1 / post_n + 1 / weight))
            scale = self.spec.scale
            low, high = math.expm1(after - 1.96 * se) / scale, math.expm1(after + 1.96 * se) / scale
            before_value, after_value = math.expm1(mean) / scale, math.expm1(after) / scale
            confidence = math.erf(abs(after - mean) / stderr / math.sqrt(2))
        else:
            low, high = _wilson(total, post_n)
            before_value, after_value = mean, after
            pooled = max(mean * (1 - mean), 1e-6) * (1 / post_n + 1 / weight)
            confidence = math.erf(abs(after - mean) / math.sqrt(pooled) / math.sqrt(2))
        # the shifted level is the new reference: rebuild the baseline from the samples to come
        self.prior_mean, self.prior_var = after, var
        self.base_n, self.base_mean, self.base_m2 = 0, 0.0, 0.0
        self._refresh()
        if not reported:
            return
        self._drift = DriftEvent(metric=self.spec.name, before=before_value, after=after_value, low=low, high=high,
                                 since_ns=first_ns, detected_ns=ts_ns,
                                 samples=post_n, cost_usd=max(cum_cost - stat[_COST0], 0.0), confidence=confidence)

    # --- data-only state

    def state(self) -> dict[str, Any]:
        """Every number the monitor needs to resume (JSON-ready)."""
        return {"n": self.n, "base_n": self.base_n, "base_mean": self.base_mean, "base_m2": self.base_m2,
                "prior_mean": self.prior_mean, "prior_var": self.prior_var, "last_finding_n": self.last_finding_n,
                "last_cost": self.last_cost, "pending": list(self.pending), "stats": [list(s) for s in self.stats],
                "events": list(self.events)}

    @classmethod
    def from_state(cls, spec: MetricSpec, state: dict[str, Any], **params: Any) -> DriftMonitor:
        """A monitor resumed from `state()` (validated by the caller: `llmrel.analyzers.checkpoint`).

        Raises:
            ValueError: when the statistics do not fit this monitor.
        """
        monitor = cls(spec, **params)
        if len(state["stats"]) != len(monitor.stats):
            raise ValueError(f"{spec.name}: {len(state['stats'])} statistics, expected {len(monitor.stats)}")
        for name in ("n", "base_n", "base_mean", "base_m2", "prior_mean", "prior_var", "last_finding_n", "last_cost",
                     "pending", "events"):
            setattr(monitor, name, state[name])
        monitor.stats = [[float(s[0]), int(s[1]), int(s[2]), float(s[3]), float(s[4]), int(s[5])]
                         for s in state["stats"]]
        monitor._refresh()
        return monitor


def _wilson(hits: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (sound for the few events a rate test decides on)."""
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)
