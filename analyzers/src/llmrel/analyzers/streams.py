"""Per-stream drift state: one `DriftMonitor` per enabled metric, fed from each call of the stream.

Streams form a hierarchy: each leaf (service × requested model × operation [× feature]) has the
parent `(service, *, *)`, whose parent is `(*, *, *)`. A service sees every call of its streams, so
evidence is pooled and sparse streams are watched through it; a new leaf takes its parent's baselines
as priors and tests from its first call. The root is not tested: it only lends a new service a prior.

Values that do not describe the model's behaviour are left out: failed calls feed only the error
rate, a missing number (no TTFT on a non-streaming call, an unpriced call) feeds nothing, and
text metrics need captured output. The model-swap rate (leaves only) is 1 for a call whose response
model is outside the stream's reference mix and 0 otherwise.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from llmrel.analyzers.callfields import FINISH_LENGTH, STATUS_ERROR
from llmrel.analyzers.checks import CallFacts
from llmrel.analyzers.drift import METRICS, DriftConfig, DriftEvent, DriftMonitor, Prior
from llmrel.model import LlmCall

_ORDER = ("error_rate", "violation_rate", "cost_usd", "model_swap_rate", "latency_ms", "ttft_ms", "input_tokens",
          "output_tokens", "length_finish_rate", "tool_call_rate", "output_chars", "refusal_rate")
ANY = "*"


def parent_keys(key: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """The ancestors of a leaf key, nearest first: `(service, *, *)`, then `(*, *, *)`."""
    return ((key[0], *(ANY,) * (len(key) - 1)), (ANY,) * len(key))


def level_of(key: tuple[str, ...]) -> str:
    return "all" if key[0] == ANY else "service" if key[1] == ANY else "stream"


@dataclass(frozen=True)
class StreamHistory:
    """What stored calls say about a stream: its calls, (count, mean, variance) per metric on the
    monitored scale, and its response models (`llmrel.analyzers.history`)."""

    key: tuple[str, ...]
    calls: int
    metrics: dict[str, tuple[int, float, float]]
    models: dict[str, int] = field(default_factory=dict)


class StreamState:
    """Drift monitors of one stream (a leaf, or a parent pooling its children)."""

    def __init__(self, key: tuple[str, ...], config: DriftConfig, parent: StreamState | None = None) -> None:
        self.key = key
        self.config = config
        self.leaf = level_of(key) == "stream"
        # the root pools every call to lend new services a prior; services and streams are tested
        self.tested = level_of(key) != "all"
        self._reset()
        if parent is not None:
            self.adopt_priors(parent)

    def adopt_priors(self, parent: StreamState) -> None:
        """Monitors still without enough samples of their own take the parent's baseline as prior."""
        for name, monitor in self.monitors.items():
            source = parent.monitors.get(name)
            if source is not None and monitor.needs_prior():
                monitor.set_prior(source.baseline())

    def seed(self, history: StreamHistory) -> None:
        """Start each monitor's baseline, and the reference model mix, from stored history."""
        for name, (count, mean, var) in history.metrics.items():
            monitor = self.monitors.get(name)
            if monitor is not None:
                monitor.seed(count, mean, var)
        if self.leaf and history.models:
            self.model_counts = Counter(history.models)
            seen = sum(history.models.values())
            if seen >= self.config.warmup:
                self.model_reference = frozenset(m for m, n in history.models.items()
                                                 if n >= self.config.model_share * seen)
            swap = self.monitors.get("model_swap_rate")
            if swap is not None:  # the history's calls all came from its own mix: none was a swap
                swap.seed(seen, 0.0, 0.0)

    def _reset(self) -> None:
        config = self.config
        self.monitors = {name: config.monitor(METRICS[name]) for name in config.metrics
                         if self.leaf or name != "model_swap_rate"}
        swap = self.monitors.get("model_swap_rate")
        if swap is not None:  # parents do not watch swaps: a stream starts from "no swaps" and tests at once
            swap.set_prior(Prior(0.0, 0.0))
        self._ordered = tuple(self.monitors.get(name) for name in _ORDER)
        self.calls = 0
        self.cum_cost = 0.0
        self.last_ns = 0
        self.model_counts: Counter[str] = Counter()
        self.model_reference: frozenset[str] | None = None
        self.last_model = ""

    def update(self, call: LlmCall, facts: CallFacts, violated: bool) -> list[DriftEvent]:
        """Feed one call to every monitor; returns the drifts concluded on this call."""
        self.calls += 1
        self.cum_cost += call.cost_usd or 0.0
        if call.timestamp_ns > self.last_ns:
            self.last_ns = call.timestamp_ns
        if not self.tested:
            for monitor, x in self._samples(call, facts, violated):
                monitor.learn(x)
            return []
        ts, cum = call.timestamp_ns, self.cum_cost
        return [monitor.drift for monitor, x in self._samples(call, facts, violated)  # type: ignore[misc]
                if monitor.update(x, ts, cum).drift]

    def _samples(self, call: LlmCall, facts: CallFacts, violated: bool) -> list[tuple[DriftMonitor, float]]:
        """(monitor, value) of each metric this call informs."""
        (error, violation, cost, swap, latency, ttft, input_tokens, output_tokens, length, tools, chars,
         refusal) = self._ordered
        failed = call.status_code == STATUS_ERROR
        out: list[tuple[DriftMonitor, float]] = []
        if error is not None:
            out.append((error, 1.0 if failed else 0.0))
        if violation is not None:
            out.append((violation, 1.0 if violated else 0.0))
        if cost is not None and call.cost_usd is not None:
            out.append((cost, call.cost_usd))
        if swap is not None and call.response_model:
            out.append((swap, self._model_swap(call.response_model)))
        if failed:
            return out
        if latency is not None:
            out.append((latency, call.duration_ns / 1e6))
        if ttft is not None and call.time_to_first_token_ns is not None:
            out.append((ttft, call.time_to_first_token_ns / 1e6))
        if input_tokens is not None and call.input_tokens is not None:
            out.append((input_tokens, call.input_tokens))
        if output_tokens is not None and call.output_tokens is not None:
            out.append((output_tokens, call.output_tokens))
        if length is not None and call.finish_reason:
            out.append((length, 1.0 if call.finish_reason == FINISH_LENGTH else 0.0))
        if tools is not None:
            out.append((tools, 1.0 if call.tool_calls else 0.0))
        if call.output_text:
            if chars is not None:
                out.append((chars, float(len(call.output_text))))
            if refusal is not None:
                out.append((refusal, 1.0 if facts.refusal else 0.0))
        return out

    def _model_swap(self, response_model: str) -> float:
        """1 for a response model outside the reference mix. The mix is learned from the first `warmup`
        calls, but only while the swap test is quiet, so a swap early in a stream's life is still caught."""
        counts = self.model_counts
        seen = sum(counts.values())
        if self.model_reference is not None:
            outside = response_model not in self.model_reference
        else:
            # past a stream's first 10 calls, a newcomer joins the mix once seen twice, each time interleaved
            # with another model: a swap (the old model gone, the new one every call) never qualifies
            need = max(self.config.model_share * seen, 2 if seen >= 10 else 1)
            outside = seen > 0 and counts[response_model] < need
            monitor = self.monitors["model_swap_rate"]
            if seen < self.config.warmup and (not outside or (monitor.quiet()
                                                              and response_model != self.last_model)):
                counts[response_model] += 1
                if seen + 1 >= self.config.warmup:
                    floor = self.config.model_share * (seen + 1)
                    self.model_reference = frozenset(m for m, n in counts.items() if n >= floor)
        if outside and self.model_reference is not None:
            counts[response_model] += 1
        self.last_model = response_model
        return 1.0 if outside else 0.0

    def accept_model_mix(self) -> tuple[frozenset[str], str]:
        """After a reported swap: the new dominant model joins the reference. Returns (old reference, new)."""
        if self.model_reference is None:
            seen = sum(self.model_counts.values())
            self.model_reference = frozenset(m for m, n in self.model_counts.items()
                                             if n >= self.config.model_share * seen)
        old = self.model_reference
        outside = Counter({m: n for m, n in self.model_counts.items() if m not in old})
        newcomer = outside.most_common(1)[0][0] if outside else ""
        self.model_reference = old | {newcomer} if newcomer else old
        return old, newcomer

    # --- data-only state

    def state(self) -> dict[str, Any]:
        return {"key": list(self.key), "calls": self.calls, "cum_cost": self.cum_cost, "last_ns": self.last_ns,
                "model_counts": dict(self.model_counts),
                "model_reference": sorted(self.model_reference) if self.model_reference is not None else None,
                "last_model": self.last_model,
                "monitors": {name: m.state() for name, m in self.monitors.items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any], config: DriftConfig) -> StreamState:
        """A stream resumed from `state()` (already validated).

        Raises:
            ValueError: when it does not fit `config` (other metrics or designs).
        """
        stream = cls(tuple(state["key"]), config)
        if set(state["monitors"]) != set(stream.monitors):
            raise ValueError(f"stream {stream.key}: monitored metrics differ from the configuration")
        for name, saved in state["monitors"].items():
            stream.monitors[name] = DriftMonitor.from_state(METRICS[name], saved, **config.monitor_params())
        stream._ordered = tuple(stream.monitors.get(name) for name in _ORDER)
        stream.calls, stream.cum_cost, stream.last_ns = state["calls"], state["cum_cost"], state["last_ns"]
        stream.model_counts = Counter(state["model_counts"])
        reference = state["model_reference"]
        stream.model_reference = frozenset(reference) if reference is not None else None
        stream.last_model = state["last_model"]
        return stream
