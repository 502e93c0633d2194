"""What the one span -> call adapter costs on `llmrel analyze`'s path, against the receiver's, same run.

Both paths go through `llmrel.calls_ingest.CallIngest`. The receiver applies the content policy to every
span it stores, then normalizes and prices (`apply_content_policy` + `calls`, the baseline). `llmrel
analyze` reads spans another writer stored: it normalizes each span to find its calls (and its shard),
applies the policy to those spans only and normalizes the cleaned span again (`stored_calls`). Timed
over the same `--spans` chat spans with prompts and completions (best of `--repeat`), under `full` and
`redacted`; then one `llmrel analyze --once` catch-up over them per policy on the embedded store.

    .venv/bin/python benchmarks/analyze_ingest.py [--spans 5000] [--repeat 3]

Figures are printed and written to benchmarks/results/analyze_ingest.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmrel.analyzers.tail import Shard
from llmrel.calls_ingest import CallIngest
from llmrel.cli.compose import build_tailer
from llmrel.config import load_settings
from llmrel.model import SPAN_COLUMNS, SpanRecord
from llmrel.store import connect, migrate

RESULTS = Path(__file__).resolve().parent / "results" / "analyze_ingest.json"
T0 = 1_764_000_000_000_000_000


def _spans(count: int) -> list[SpanRecord]:
    def attrs(i: int) -> dict[str, str]:
        prompt = f"Order #{i}: mail ann{i}@example.com or call +33 6 12 34 56 {i % 90 + 10}. " + "Details. " * 40
        return {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": "420",
                "gen_ai.usage.output_tokens": "80",
                "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": prompt}]}]),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
                    {"type": "text", "content": "Your order ships tomorrow. " * 8}]}])}
    return [SpanRecord(T0 + i * 1_000_000, f"{i:032x}", f"{i:016x}", "", "", "chat gpt-4o-mini", "Client",
                       f"svc-{i % 4}", {"service.name": f"svc-{i % 4}"}, "openai", "0.1", attrs(i), 700_000_000,
                       "Unset", "", [], [], [], [], [], [], []) for i in range(count)]


def _best(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spans = _spans(args.spans)
    figures: dict[str, Any] = {"spans": args.spans}
    for policy in ("full", "redacted"):
        ingest = CallIngest(policy)

        def receiver_path(ingest: CallIngest = ingest) -> list[Any]:
            return ingest.calls(ingest.apply_content_policy(spans, lambda *_: None))[0]

        receiver_s = _best(receiver_path, args.repeat)
        stored_s = _best(lambda ingest=ingest: ingest.stored_calls(spans), args.repeat)
        assert ingest.stored_calls(spans) == receiver_path()  # the same calls either way
        figures[policy] = {"receiver_adapter_us_per_span": round(receiver_s / args.spans * 1e6, 1),
                           "analyze_adapter_us_per_span": round(stored_s / args.spans * 1e6, 1),
                           "analyze_vs_receiver": round(stored_s / receiver_s, 3)}
    data = Path(tempfile.mkdtemp(prefix="llmrel-bench-analyze-"))
    try:
        settings = load_settings(clickhouse_url=f"chdb://{data}", traces_ttl_days=0, calls_ttl_days=0,
                                 findings_ttl_days=0)
        client = connect(settings)
        migrate(client, settings)
        client.insert("otel_traces", spans, column_names=list(SPAN_COLUMNS))
        for policy in ("full", "redacted"):
            client.command("TRUNCATE TABLE llm_calls")
            tailer = build_tailer(settings.model_copy(update={"content_policy": policy}), client,
                                  Shard(0, 1), settle_s=0, rescan_s=3600)
            tailer.analyzer.analyzer_id = f"bench-{policy}"  # its checkpoint is not the next run's start
            started = time.perf_counter()
            tailer.run(threading.Event(), once=True)
            elapsed = time.perf_counter() - started
            stored = client.query("SELECT count() FROM llm_calls").result_rows[0][0]
            assert stored == args.spans, stored
            figures[policy]["analyze_once_spans_per_s"] = round(args.spans / elapsed)
        figures["analyze_once_redacted_vs_full"] = round(
            figures["full"]["analyze_once_spans_per_s"] / figures["redacted"]["analyze_once_spans_per_s"], 3)
        client.close()
    finally:
        shutil.rmtree(data, ignore_errors=True)
    print(json.dumps(figures, indent=2))
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
