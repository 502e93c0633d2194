"""Redaction: recall and false positives on a labelled corpus, cost per span on the export thread, worst cases.

* Quality: every positive of `tests/core/corpus.py` (secrets and PII as people write them) must be
  removed from the text and its kind reported by `scan` (the `no_pii` check); every negative
  (order ids, timestamps, versions, hashes, UUIDs, ordinary words) must come out unchanged.
* Cost: `prepare_span` (the content policy the exporter applies on the batch processor's thread)
  per LLM span with `redacted` against the same spans with `off` (content stripped, no
  redaction), interleaved span by span, p50/p99; and the app-thread cost per LLM span of the
  llmrel pipeline (`measure_hooks` of `instrumentation_overhead.py`), which redaction must not touch.
* Worst cases: seconds for 1 MiB of each adversarial unit of `tests/core/test_redaction_timing.py`.

`--baseline-rev REV` also scores the rules of an earlier revision (read with `git show`) on the same
corpus and texts, for a before/after comparison in one run.

Run: `python benchmarks/redaction_bench.py [--spans 20000] [--baseline-rev 8815e0e]`; writes
`benchmarks/results/redaction.json`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from instrumentation_overhead import measure_hooks, percentile  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402

from llmrel_core.redaction import redact, scan  # noqa: E402
from llmrel_instrumentation.config import ContentPolicy  # noqa: E402
from llmrel_instrumentation.content import prepare_span  # noqa: E402
from tests.core.corpus import NEGATIVES, POSITIVES  # noqa: E402
from tests.core.test_redaction_timing import ADVERSARIAL  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "redaction.json"
Redact = Callable[[str], tuple[str, int]]

_USER = ["Hi, I ordered the blue kettle (order #A-99812) on 2026-01-15 and it arrived broken.",
         "My email is jane.doe@example.com and my phone +33 6 12 34 56 78, card 4111 1111 1111 1111.",
         "Can you summarize the refund policy for orders over 50 EUR? Version 2.1 of the policy, please.",
         "Here is the log: 2026-01-15T12:30:45.123Z ERROR request 0af7651916cd43dd8448eb211c80319c failed (HTTP 503)."]
_ANSWER = ("Sure! Here is the summary of your account activity for January 2026: "
           + "On 2026-01-{day:02d} you spent 12.50 EUR at store 4411, ref 99812-22. " * 12)


def quality(redact_fn: Redact, scan_fn: Callable[[str], list[str]] | None) -> dict[str, Any]:
    missed = [text for text, kind, secret in POSITIVES
              if secret in redact_fn(text)[0] or (scan_fn is not None and kind not in scan_fn(text))]
    flagged = [text for _, text in NEGATIVES if redact_fn(text)[1]]
    by_kind: dict[str, list[int]] = {}
    for text, kind, _ in POSITIVES:
        by_kind.setdefault(kind, [0, 0])[1] += 1
        by_kind[kind][0] += text not in missed
    return {"positives": len(POSITIVES), "negatives": len(NEGATIVES),
            "recall": round(1 - len(missed) / len(POSITIVES), 4),
            "false_positive_rate": round(len(flagged) / len(NEGATIVES), 4),
            "recall_by_kind": {k: f"{hit}/{n}" for k, (hit, n) in sorted(by_kind.items())},
            "missed": missed, "false_positives": flagged}


def _spans(count: int, seed: int = 7) -> list[Any]:
    """LLM spans with GenAI input/output message attributes, a quarter of them carrying PII."""
    rng = random.Random(seed)
    tracer = TracerProvider().get_tracer("bench")
    spans = []
    for i in range(count):
        user = rng.choice(_USER)
        with tracer.start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.input.messages", json.dumps([
                {"role": "system", "parts": [{"type": "text", "content": "You are a helpful support agent."}]},
                {"role": "user", "parts": [{"type": "text", "content": user}]}]))
            span.set_attribute("gen_ai.output.messages", json.dumps([
                {"role": "assistant", "parts": [{"type": "text", "content": _ANSWER.format(day=i % 28 + 1)}],
                 "finish_reason": "stop"}]))
        spans.append(span)
    return spans


def export_thread_cost(count: int) -> dict[str, float]:
    """ns per span of `prepare_span`, `redacted` vs `off`, interleaved; wall time and the thread's CPU time
    (on a loaded machine a wall-time p99 mostly measures preemption)."""
    redacted: list[int] = []
    redacted_cpu: list[int] = []
    stripped: list[int] = []
    for span in _spans(count):
        cpu = time.thread_time_ns()
        start = time.perf_counter_ns()
        prepare_span(span, ContentPolicy.REDACTED)
        middle = time.perf_counter_ns()
        redacted_cpu.append(time.thread_time_ns() - cpu)
        prepare_span(span, ContentPolicy.OFF)
        stripped.append(time.perf_counter_ns() - middle)
        redacted.append(middle - start)
    return {"spans": count, "redacted_cpu_p50_us": percentile(redacted_cpu, 0.5) / 1000,
            "redacted_cpu_p99_us": percentile(redacted_cpu, 0.99) / 1000,
            "redacted_p50_us": percentile(redacted, 0.5) / 1000,
            "redacted_p99_us": percentile(redacted, 0.99) / 1000, "off_p50_us": percentile(stripped, 0.5) / 1000,
            "off_p99_us": percentile(stripped, 0.99) / 1000,
            "redaction_added_p50_us": (percentile(redacted, 0.5) - percentile(stripped, 0.5)) / 1000,
            "redaction_added_p99_us": (percentile(redacted, 0.99) - percentile(stripped, 0.99)) / 1000}


def text_cost(redact_fn: Redact, repeat: int = 2000) -> dict[str, float]:
    """µs per call (p50) on the two message attributes of a typical span."""
    span = _spans(1)[0]
    texts = [span.attributes["gen_ai.input.messages"], span.attributes["gen_ai.output.messages"]]
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        for text in texts:
            redact_fn(text)
        samples.append(time.perf_counter_ns() - start)
    return {"p50_us": percentile(samples, 0.5) / 1000, "p99_us": percentile(samples, 0.99) / 1000}


def worst_cases(redact_fn: Redact, size: int = 1 << 20) -> dict[str, float]:
    units = sorted({u for units in ADVERSARIAL.values() for u in units})
    seconds = {}
    for unit in units:
        text = (unit * (size // len(unit) + 1))[:size]
        start = time.perf_counter()
        redact_fn(text)
        seconds[unit] = round(time.perf_counter() - start, 3)
    worst = max(seconds, key=seconds.__getitem__)
    return {"bytes": size, "worst_unit": worst, "worst_s": seconds[worst], "median_s": sorted(seconds.values())[
        len(seconds) // 2], "by_unit_s": seconds}


def load_baseline(rev: str) -> Redact:
    """`redact` as it was at `rev` (the app-side module then held the rules)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:instrumentation/src/llmrel_instrumentation/"
                             "redaction.py"], check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_redaction.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_redaction", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["baseline_redaction"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.redact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--baseline-rev", default=None, help="also score the rules of this git revision")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.python_version()}",
        "quality": quality(redact, scan),
        "export_thread_per_llm_span": export_thread_cost(args.spans),
        "app_thread_per_llm_span": measure_hooks(20_000),
        "redact_two_message_attributes": text_cost(redact),
        "worst_case_1mib": worst_cases(redact),
    }
    if args.baseline_rev:
        baseline = load_baseline(args.baseline_rev)
        results["baseline"] = {"rev": args.baseline_rev, "quality": quality(baseline, None),
                               "redact_two_message_attributes": text_cost(baseline)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    q, e, a = results["quality"], results["export_thread_per_llm_span"], results["app_thread_per_llm_span"]
    print(f"corpus: recall {q['recall']:.1%} ({q['positives']} positives), false positives "
          f"{q['false_positive_rate']:.1%} ({q['negatives']} look-alikes)")
    print(f"export thread per LLM span: redacted p50 {e['redacted_p50_us']:.1f} µs / p99 {e['redacted_p99_us']:.1f} µs"
          f" (CPU {e['redacted_cpu_p50_us']:.1f} / {e['redacted_cpu_p99_us']:.1f} µs); off {e['off_p50_us']:.1f} / "
          f"{e['off_p99_us']:.1f} µs")
    print(f"app thread per LLM span (redaction not on it): +{a['added_p50_us']:.1f} µs p50, "
          f"+{a['added_p99_us']:.1f} µs p99 vs stock SDK")
    w = results["worst_case_1mib"]
    print(f"worst adversarial 1 MiB: {w['worst_s']:.2f} s ({w['worst_unit']!r}), median {w['median_s']:.3f} s")
    if "baseline" in results:
        b = results["baseline"]
        print(f"baseline {b['rev']}: recall {b['quality']['recall']:.1%}, false positives "
              f"{b['quality']['false_positive_rate']:.1%}; two attributes p50 "
              f"{b['redact_two_message_attributes']['p50_us']:.1f} µs vs now "
              f"{results['redact_two_message_attributes']['p50_us']:.1f} µs")


if __name__ == "__main__":
    main()
