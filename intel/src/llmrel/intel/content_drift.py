"""Drift in what the model says, per stream, when tokens and latency need not change.

Representation (lexical; no embedding model is installed, as one would need a weight download at run time):
each output text becomes hashed word 1–2-grams (River `BagOfWords` → `FeatureHasher`, 1024 features,
sublinear counts, L2-normalized). A stream (service × requested model × operation) keeps a reference
window of `reference` calls, then tests each tumbling window of `window` calls against it with a
two-sample permutation test on the distance between the window means (a linear-kernel MMD). A drift is
reported when the test is significant at `alpha` and the cosine distance of the means is at least
`min_distance` (a real change of topic or style, not a paraphrase); the reference then restarts from
the new regime. Cheap signals (words per answer, refusals, JSON answers, non-Latin letters) are reported
before and after, with the words that became more frequent.

It only works when output content is stored (`content_policy` full or redacted); calls without output
text are counted, and `status()` says when a stream has none.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from llmrel.call_traits import is_refusal, stream_key
from llmrel.findings import Finding, finding_id
from llmrel.model import LlmCall

REPRESENTATION = "hashed word 1-2-grams (river BagOfWords + FeatureHasher), permutation test on window means"
METRIC = "output_content"
RULE_ID = "drift.output_content"
_MAX_CHARS = 4000


@dataclass(frozen=True)
class ContentDriftConfig:
    """Settings of the output-content detector.

    Attributes:
        reference: calls with output text in a stream's reference window.
        window: calls per tested window (the detection delay is at most this many calls).
        n_features: size of the hashed vector.
        permutations: draws of the permutation test.
        alpha: significance of one window's test.
        min_distance: smallest cosine distance between the reference and window means worth a finding.
        seed: permutations are seeded per stream, so a replay gives the same findings.
    """

    reference: int = 400
    window: int = 200
    n_features: int = 1024
    permutations: int = 200
    alpha: float = 0.005
    min_distance: float = 0.1
    seed: int = 20_261_202


@dataclass
class _Signals:
    words: float = 0.0
    refusals: int = 0
    json: int = 0
    non_latin: float = 0.0
    n: int = 0
    terms: Counter[str] = field(default_factory=Counter)

    def add(self, text: str) -> None:
        words = text.split()
        self.words += len(words)
        self.refusals += is_refusal(text)
        stripped = text.strip()
        if stripped[:1] in ("{", "["):
            try:
                json.loads(stripped)
                self.json += 1
            except ValueError:
                pass
        letters = [c for c in text[:_MAX_CHARS] if c.isalpha()]
        if letters:
            self.non_latin += sum(1 for c in letters if ord(c) > 0x24F) / len(letters)
        self.n += 1

    def summary(self) -> dict[str, float]:
        n = max(self.n, 1)
        return {"words": self.words / n, "refusal_rate": self.refusals / n, "json_rate": self.json / n,
                "non_latin_share": self.non_latin / n}


@dataclass
class _Stream:
    key: tuple[str, ...]
    reference: list[np.ndarray] = field(default_factory=list)
    ref_signals: _Signals = field(default_factory=_Signals)
    window: list[np.ndarray] = field(default_factory=list)
    win_signals: _Signals = field(default_factory=_Signals)
    window_start_ns: int = 0
    window_cost: float = 0.0
    last_call: LlmCall | None = None
    checks: int = 0


class ContentDriftMonitor:
    """Output-content drift over every stream; `process` is pure (no I/O)."""

    def __init__(self, config: ContentDriftConfig | None = None) -> None:
        self.config = config or ContentDriftConfig()
        self._featurizer: tuple[Any, Any] | None = None  # river's, made with the first text (river loads then)
        self.streams: dict[tuple[str, ...], _Stream] = {}
        self.with_content = 0
        self.without_content = 0
        self.tests = 0

    def vector(self, text: str) -> tuple[np.ndarray, Counter[str]]:
        """The hashed, sublinear, L2-normalized vector of a text, and its word counts."""
        if self._featurizer is None:
            from river import feature_extraction, preprocessing  # with scipy ~90 MiB: not for a serve at rest

            self._featurizer = (feature_extraction.BagOfWords(ngram_range=(1, 2)), preprocessing.FeatureHasher(
                n_features=self.config.n_features, seed=0, alternate_sign=False))
        bow, hasher = self._featurizer
        bag = bow.transform_one(text[:_MAX_CHARS])
        vec = np.zeros(self.config.n_features)
        for index, count in hasher.transform_one(bag).items():
            vec[index] = 1.0 + math.log(count) if count > 0 else 0.0
        norm = np.linalg.norm(vec)
        return (vec / norm if norm else vec), Counter({k: v for k, v in bag.items() if isinstance(k, str)})

    def process(self, calls: list[LlmCall], now_ns: int) -> list[Finding]:
        findings = []
        for call in calls:
            if not call.output_text or call.status_code == "Error":
                self.without_content += not call.output_text
                continue
            self.with_content += 1
            key = stream_key(call)
            stream = self.streams.get(key)
            if stream is None:
                stream = self.streams[key] = _Stream(key)
            vec, terms = self.vector(call.output_text)
            cfg = self.config
            if len(stream.reference) < cfg.reference:
                stream.reference.append(vec)
                stream.ref_signals.add(call.output_text)
                stream.ref_signals.terms.update(terms)
                continue
            if not stream.window:
                stream.window_start_ns = call.timestamp_ns
                stream.window_cost = 0.0
            stream.window.append(vec)
            stream.win_signals.add(call.output_text)
            stream.win_signals.terms.update(terms)
            stream.window_cost += call.cost_usd or 0.0
            stream.last_call = call
            if len(stream.window) >= cfg.window:
                finding = self._test(stream, now_ns)
                if finding is not None:
                    findings.append(finding)
        return findings

    def _test(self, stream: _Stream, now_ns: int) -> Finding | None:
        cfg = self.config
        ref, win = np.vstack(stream.reference), np.vstack(stream.window)
        p_value, distance = permutation_test(ref, win, cfg.permutations,
                                             np.random.default_rng([cfg.seed, stream.checks]))
        stream.checks += 1
        self.tests += 1
        finding = None
        if p_value < cfg.alpha and distance >= cfg.min_distance:
            finding = self._finding(stream, p_value, distance, now_ns)
            # The new regime becomes the reference.
            stream.reference, stream.ref_signals = stream.window, stream.win_signals
        stream.window, stream.win_signals = [], _Signals()
        return finding

    def _finding(self, stream: _Stream, p_value: float, distance: float, now_ns: int) -> Finding:
        before, after = stream.ref_signals.summary(), stream.win_signals.summary()
        key, call = stream.key, stream.last_call
        assert call is not None
        since = datetime.fromtimestamp(stream.window_start_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")
        new_terms = _rising_terms(stream.ref_signals, stream.win_signals)
        changed = [f"{name} {before[name]:.3g} -> {after[name]:.3g}" for name in before
                   if abs(after[name] - before[name]) > max(0.1 * abs(before[name]), 0.05)]
        message = (f"output content changed since {since} UTC (cosine distance {distance:.2f} of the window means, "
                   f"p={p_value:.3g}); more frequent words: {', '.join(new_terms) or '-'}"
                   + (f"; {'; '.join(changed)}" if changed else ""))
        attributes = {"representation": REPRESENTATION, "p_value": f"{p_value:.4g}", "distance": f"{distance:.4f}",
                      "new_terms": ",".join(new_terms),
                      **{f"before.{k}": f"{v:.4g}" for k, v in before.items()},
                      **{f"after.{k}": f"{v:.4g}" for k, v in after.items()}}
        return Finding(
            finding_id=finding_id("drift", METRIC, *key, stream.window_start_ns), kind="drift", rule_id=RULE_ID,
            severity="warning", service_name=key[0], model=key[1], operation=key[2], feature="", tenant="",
            metric=METRIC, trace_id=call.trace_id, span_id=call.span_id, observed=distance,
            expected=self.config.min_distance, message=message, calls=len(stream.window),
            cost_usd=stream.window_cost, impact_usd=0.0, confidence=1.0 - p_value,
            event_time_ns=stream.window_start_ns, detected_at_ns=now_ns, attributes=attributes)

    def status(self) -> dict[str, object]:
        """Whether the detector sees content at all, and how far each stream is."""
        enabled = self.with_content > 0
        return {"enabled": enabled, "representation": REPRESENTATION,
                "reason": None if enabled else ("no output text stored: content capture is off "
                                                "(content_policy) or the instrumentation does not record it"),
                "calls_with_content": self.with_content, "calls_without_content": self.without_content,
                "tests": self.tests,
                "streams": [{"stream": list(s.key), "reference": len(s.reference), "window": len(s.window)}
                            for s in self.streams.values()]}


def permutation_test(ref: np.ndarray, win: np.ndarray, permutations: int,
                     rng: np.random.Generator) -> tuple[float, float]:
    """(p-value, cosine distance of the means) of the two-sample test on ||mean(ref) − mean(win)||²."""
    pooled = np.vstack([ref, win])
    n, m = len(ref), len(win)
    total = pooled.sum(axis=0)
    observed = float(np.sum((ref.mean(axis=0) - win.mean(axis=0)) ** 2))
    # Each permutation picks which m rows form the window: the difference of means follows from their sum.
    chosen = np.argsort(rng.random((permutations, n + m)), axis=1)[:, :m]
    picks = np.zeros((permutations, n + m))
    np.put_along_axis(picks, chosen, 1.0, axis=1)
    win_sums = picks @ pooled
    diffs = (total - win_sums) / n - win_sums / m
    null = np.einsum("ij,ij->i", diffs, diffs)
    p_value = (1 + int(np.sum(null >= observed))) / (permutations + 1)
    a, b = ref.mean(axis=0), win.mean(axis=0)
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) if a.any() and b.any() else 1.0
    return p_value, 1.0 - cosine


def _rising_terms(before: _Signals, after: _Signals, top: int = 5) -> list[str]:
    nb, na = max(before.n, 1), max(after.n, 1)
    # Each word's share of the KL divergence of the new word rates from the old: new words first.
    gains = {}
    for term, count in after.terms.items():
        new, old = count / na, before.terms.get(term, 0) / nb
        gains[term] = new * math.log((new + 0.01) / (old + 0.01))
    return [t for t, g in sorted(gains.items(), key=lambda kv: (-kv[1], kv[0]))[:top] if g > 0]
