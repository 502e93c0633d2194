"""A demo LLM app: a support bot, a streaming summarizer, a JSON extractor and a knowledge search.

It calls an OpenAI-compatible API with the real `openai` client at a steady rate and puts the business
context into OpenTelemetry baggage (`llmrel.feature`, `llmrel.tenant`, `user.id`) around each request, so an
instrumentation that copies baggage onto spans can cut cost and quality by feature, tenant and user. It runs
with or without OpenTelemetry installed; under `opentelemetry-instrument` its LLM calls become spans.

    python -m llmrel.demo.app --base-url http://127.0.0.1:8000/v1 --calls 200 --rate 5
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import openai

from llmrel.demo.scenarios import SCENARIOS, TENANTS, Scenario

FEATURE_KEY = "llmrel.feature"
TENANT_KEY = "llmrel.tenant"
USER_KEY = "user.id"
_USERS_PER_TENANT = 40
_DEFAULT_CALLS = 100

try:
    from opentelemetry import baggage, context, trace
except ImportError:  # the demo also runs without OpenTelemetry
    baggage = context = trace = None  # type: ignore[assignment]


@contextmanager
def business_context(feature: str, tenant: str, user_id: str) -> Iterator[None]:
    """Put the request's business context into OTel baggage and open a span for the request."""
    if baggage is None:
        yield
        return
    ctx = baggage.set_baggage(FEATURE_KEY, feature)
    ctx = baggage.set_baggage(TENANT_KEY, tenant, ctx)
    ctx = baggage.set_baggage(USER_KEY, user_id, ctx)
    token = context.attach(ctx)
    try:
        with trace.get_tracer("llmrel.demo").start_as_current_span(f"{feature} request"):
            yield
    finally:
        context.detach(token)


@dataclass
class DemoStats:
    """Outcome counts of a demo run (thread-safe through `record`)."""

    requests: int = 0
    llm_calls: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_feature: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, feature: str, outcome: str, llm_calls: int) -> None:
        with self._lock:
            self.requests += 1
            self.llm_calls += llm_calls
            self.outcomes[outcome] += 1
            self.by_feature[feature] += 1

    def as_dict(self, elapsed_s: float) -> dict[str, Any]:
        return {"requests": self.requests, "llm_calls": self.llm_calls, "outcomes": dict(self.outcomes),
                "by_feature": dict(self.by_feature), "elapsed_s": round(elapsed_s, 3)}


def _pick(rng: random.Random, weighted: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([item for item, _ in weighted], weights=[w for _, w in weighted])[0]


def run_one(client: openai.OpenAI, scenarios: Sequence[Scenario], seed: int, index: int,
            stats: DemoStats) -> None:
    """Run request number `index`: pick feature, tenant and user from its own seeded stream, then call."""
    rng = random.Random(f"{seed}:{index}")
    scenario = _pick(rng, [(s, s.weight) for s in scenarios])
    tenant = _pick(rng, TENANTS)
    user_id = f"{tenant}-user-{rng.randint(1, _USERS_PER_TENANT)}"
    with business_context(scenario.feature, tenant, user_id):
        try:
            llm_calls, outcome = scenario.run(client, rng), "ok"
        except openai.APIStatusError as exc:
            llm_calls, outcome = 1, f"http_{exc.status_code}"
        except openai.APIError as exc:
            llm_calls, outcome = 1, type(exc).__name__
        except ValueError:
            llm_calls, outcome = 1, "invalid_json"
    stats.record(scenario.feature, outcome, llm_calls)


def run_demo(base_url: str, *, calls: int | None = _DEFAULT_CALLS, rate: float = 5.0,
             duration_s: float | None = None, seed: int = 0, features: Sequence[str] | None = None,
             concurrency: int = 8, max_retries: int = 2, stop: threading.Event | None = None) -> DemoStats:
    """Send demo traffic until `calls` requests were started, `duration_s` passed or `stop` is set.

    Requests start at `rate` per second (fewer when `concurrency` requests are already in flight).
    """
    scenarios = [SCENARIOS[name] for name in (features or SCENARIOS)]
    stats, stop = DemoStats(), stop or threading.Event()
    slots = threading.BoundedSemaphore(concurrency)
    start = time.monotonic()
    with openai.OpenAI(base_url=base_url, api_key="demo-key", max_retries=max_retries) as client, \
            ThreadPoolExecutor(concurrency, thread_name_prefix="llmrel-demo") as pool:
        index = 0
        while not stop.is_set() and (calls is None or index < calls):
            if duration_s is not None and time.monotonic() - start >= duration_s:
                break
            if stop.wait(max(0.0, start + index / rate - time.monotonic())):
                break
            slots.acquire()
            future = pool.submit(run_one, client, scenarios, seed, index, stats)
            future.add_done_callback(lambda _: slots.release())
            index += 1
    return stats


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry: run the demo traffic and print a JSON summary."""
    parser = argparse.ArgumentParser(prog="python -m llmrel.demo.app", description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="OpenAI-compatible base URL, e.g. http://host:port/v1")
    parser.add_argument("--calls", type=int, default=None, help=f"requests to send (default {_DEFAULT_CALLS})")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--rate", type=float, default=5.0, help="requests started per second")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--features", default=",".join(SCENARIOS),
                        help=f"comma-separated subset of: {', '.join(SCENARIOS)}")
    args = parser.parse_args(argv)
    features = [f.strip() for f in args.features.split(",") if f.strip()]
    unknown = sorted(set(features) - set(SCENARIOS))
    if unknown or args.rate <= 0 or args.concurrency < 1:
        parser.error(f"unknown features {unknown}" if unknown else "--rate and --concurrency must be positive")
    calls = args.calls if args.calls is not None or args.duration is not None else _DEFAULT_CALLS

    stop = threading.Event()

    def _on_signal(signum: int, _: FrameType | None) -> None:
        stop.set()

    # SIGTERM ends the run like SIGINT: stop starting requests, finish those in flight, exit normally so
    # atexit hooks (e.g. the span exporter's flush) still run.
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    started = time.monotonic()
    stats = run_demo(args.base_url, calls=calls, rate=args.rate, duration_s=args.duration, seed=args.seed,
                     features=features, concurrency=args.concurrency, stop=stop)
    print(json.dumps(stats.as_dict(time.monotonic() - started)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
