"""BubbleUp-style contrast (pure): which `dimension=value` pairs the affected calls share and the baseline lacks.

Input is the aggregated form of the calls: one row per distinct combination of dimension values, with
how many affected (`target`) and baseline calls have it. Every single value, then every pair of the
strongest single values, is scored by the share of affected calls that have it against the share of
baseline calls, and tested with a one-sided Fisher exact test (the hypergeometric tail) corrected for
the number of comparisons (Bonferroni). A cause must be significant, rare enough in the baseline to
matter (lift) and common enough among the affected calls to explain them (support); causes rank by the
difference of shares, so a pair that explains the calls more precisely than either half ranks first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations

import numpy as np
import polars as pl
from scipy.stats import hypergeom

TARGET = "target"
BASELINE = "baseline"
EMPTY = "(empty)"


@dataclass(frozen=True)
class ContrastConfig:
    """Thresholds of a cause.

    Attributes:
        alpha: family-wise error rate (Bonferroni over every value and pair tested).
        min_lift: the cause is at least this many times more common among affected calls.
        min_support: and covers at least this share of the affected calls.
        min_calls: and at least this many affected calls.
        min_target: fewer affected (or baseline) calls than this is "insufficient".
        pair_candidates: the strongest single values combined into pairs.
        top: causes reported.
    """

    alpha: float = 0.01
    min_lift: float = 1.5
    min_support: float = 0.2
    min_calls: int = 5
    min_target: int = 10
    pair_candidates: int = 8
    top: int = 5


@dataclass(frozen=True)
class Cause:
    """One `dimension=value` (or a pair of them joined by ` & `) and its evidence."""

    cause: str
    target_calls: int
    baseline_calls: int
    target_share: float
    baseline_share: float
    lift: float
    p_value: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Contrast:
    """The verdict (`explained`, `unexplained`, `insufficient`) and the ranked causes."""

    verdict: str
    target_calls: int
    baseline_calls: int
    dimensions: int
    tested: int
    causes: tuple[Cause, ...]

    def summary(self) -> str:
        if self.verdict == "insufficient":
            return (f"too few calls to compare ({self.target_calls} affected, {self.baseline_calls} baseline; "
                    "at least 10 of each are needed)")
        if self.verdict == "unexplained":
            return (f"no single dimension explains it: {self.tested} values of {self.dimensions} dimensions "
                    f"compared over {self.target_calls} affected and {self.baseline_calls} baseline calls")
        top = self.causes[0]
        return (f"likely cause: {top.cause} — {top.target_share:.0%} of {self.target_calls} affected calls vs "
                f"{top.baseline_share:.1%} of {self.baseline_calls} baseline calls (lift {top.lift:.1f}x, "
                f"p={top.p_value:.2g})")


def _label(dimension: str, value: object) -> str:
    text = str(value) if value is not None and value != "" else EMPTY
    return f"{dimension}={text}"


def contrast(combos: pl.DataFrame, dimensions: list[str], config: ContrastConfig | None = None,
             baseline_scale: int = 1) -> Contrast:
    """Rank the causes in `combos` (dimension columns + `target` and `baseline` counts).

    `baseline_scale`: the baseline counts are a 1-in-k sample; tests run on the sample, reported baseline
    counts are scaled back up (estimates).
    """
    config = config or ContrastConfig()
    total_t = int(combos[TARGET].sum()) if combos.height else 0
    total_b = int(combos[BASELINE].sum()) if combos.height else 0
    reported_b = total_b * baseline_scale
    if total_t < config.min_target or total_b < config.min_target:
        return Contrast("insufficient", total_t, reported_b, len(dimensions), 0, ())
    singles = []
    for dim in dimensions:
        grouped = combos.group_by(dim).agg(pl.col(TARGET).sum(), pl.col(BASELINE).sum())
        if grouped.height < 2:
            continue  # one value everywhere: explains nothing
        for value, t, b in grouped.select(dim, TARGET, BASELINE).iter_rows():
            singles.append(((dim,), (value,), int(t), int(b)))
    strongest = sorted((s for s in singles if s[2] >= config.min_calls),
                       key=lambda s: _p_values(np.array([s[2]]), np.array([s[3]]), total_t, total_b)[0])
    strongest = strongest[:config.pair_candidates]
    pairs = []
    for (d1, v1, _, _), (d2, v2, _, _) in combinations(strongest, 2):
        if d1 == d2:
            continue
        mask = (pl.col(d1[0]) == v1[0]) & (pl.col(d2[0]) == v2[0])
        sums = combos.filter(mask).select(pl.col(TARGET).sum(), pl.col(BASELINE).sum()).row(0)
        pairs.append(((d1[0], d2[0]), (v1[0], v2[0]), int(sums[0] or 0), int(sums[1] or 0)))
    candidates = singles + pairs
    if not candidates:
        return Contrast("unexplained", total_t, reported_b, len(dimensions), 0, ())
    t = np.array([c[2] for c in candidates], dtype=np.int64)
    b = np.array([c[3] for c in candidates], dtype=np.int64)
    p = np.minimum(_p_values(t, b, total_t, total_b) * len(candidates), 1.0)
    share_t = t / total_t
    share_b = b / total_b
    lift = share_t / np.maximum(share_b, 0.5 / total_b)
    keep = ((p < config.alpha) & (lift >= config.min_lift) & (share_t >= config.min_support)
            & (t >= config.min_calls))
    order = sorted(np.flatnonzero(keep), key=lambda i: (-(share_t[i] - share_b[i]), p[i]))
    causes = tuple(
        Cause(" & ".join(_label(d, v) for d, v in zip(candidates[i][0], candidates[i][1], strict=True)),
              int(t[i]), int(b[i]) * baseline_scale, float(share_t[i]), float(share_b[i]), float(lift[i]),
              float(p[i]))
        for i in order[:config.top])
    return Contrast("explained" if causes else "unexplained", total_t, reported_b, len(dimensions),
                    len(candidates), causes)


def _p_values(t: np.ndarray, b: np.ndarray, total_t: int, total_b: int) -> np.ndarray:
    """One-sided Fisher exact test: P(X >= t) for X ~ Hypergeom(all calls, calls with the value, affected calls)."""
    return hypergeom.sf(t - 1, total_t + total_b, t + b, total_t)
