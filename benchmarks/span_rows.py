"""Reading stored spans back as `SpanRecord`s by column name, against the positional read it replaced.

`llmrel analyze` reads up to `batch_rows` (20,000) `otel_traces` rows per poll. The query runs once;
then each way of turning its rows into `SpanRecord`s is timed over the same rows, best of `--repeat`:

- `positional` (baseline): the former `row_to_span`, fixed indexes into `SPAN_COLUMNS` order;
- `by_name`: `llmrel.span_rows.span_reader(result.column_names)`, names resolved once per query;
- `named_results`: clickhouse-connect's `named_results()` dicts, then `SpanRecord(**row)`.

    .venv/bin/python benchmarks/span_rows.py [--rows 20000] [--repeat 5]

Figures are printed and written to benchmarks/results/span_rows.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llmrel.config import load_settings
from llmrel.model import SPAN_COLUMNS, SpanRecord
from llmrel.span_rows import SELECT_SPANS, span_reader
from llmrel.store import connect, migrate

RESULTS = Path(__file__).resolve().parent / "results" / "span_rows.json"
T0 = 1_764_000_000_000_000_000


def _spans(count: int) -> list[SpanRecord]:
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": "120",
             "gen_ai.usage.output_tokens": "40", "gen_ai.input.messages": "x" * 300, "llmrel.feature": "faq"}
    return [SpanRecord(T0 + i * 1000, f"{i:032x}", f"{i:016x}", "", "", "chat gpt-4o-mini", "Client", "support",
                       {"service.name": "support", "service.version": "1.2.3"}, "openai", "0.1", attrs, 700_000_000,
                       "Unset", "", [T0 + i * 1000 + 1], ["gen_ai.choice"], [{"index": "0"}], [], [], [], [])
            for i in range(count)]


def _positional(row: Sequence[Any]) -> SpanRecord:
    """The former `row_to_span` (indexes in `SPAN_COLUMNS` order)."""
    values = list(row)
    values[0] = int(values[0])
    values[12] = int(values[12])
    values[15] = [int(t) for t in values[15]]
    for i in (8, 11):
        values[i] = dict(values[i])
    for i in (17, 21):
        values[i] = [dict(m) for m in values[i]]
    return SpanRecord(*values)


def _named(row: dict[str, Any]) -> SpanRecord:
    return SpanRecord(**{**row, "timestamp_ns": int(row["timestamp_ns"]), "duration_ns": int(row["duration_ns"]),
                         "events_timestamp": [int(t) for t in row["events_timestamp"]],
                         "resource_attributes": dict(row["resource_attributes"]),
                         "span_attributes": dict(row["span_attributes"]),
                         "events_attributes": [dict(m) for m in row["events_attributes"]],
                         "links_attributes": [dict(m) for m in row["links_attributes"]]})


def _best(fn: Callable[[], list[SpanRecord]], repeat: int) -> tuple[float, list[SpanRecord]]:
    best, out = float("inf"), []
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="llmrel-bench-span-rows-"))
    try:
        settings = load_settings(clickhouse_url=f"chdb://{data}", traces_ttl_days=0)
        client = connect(settings)
        migrate(client, settings)
        spans = _spans(args.rows)
        client.insert("otel_traces", spans, column_names=list(SPAN_COLUMNS))
        started = time.perf_counter()
        result = client.query(f"SELECT {SELECT_SPANS} FROM otel_traces ORDER BY Timestamp, TraceId, SpanId")
        query_s = time.perf_counter() - started
        rows = result.result_rows
        positional_s, by_position = _best(lambda: [_positional(r) for r in rows], args.repeat)

        def by_name() -> list[SpanRecord]:
            read = span_reader(result.column_names)
            return [read(r) for r in rows]

        by_name_s, named = _best(by_name, args.repeat)
        named_results_s, dicts = _best(lambda: [_named(r) for r in result.named_results()], args.repeat)
        client.close()
    finally:
        shutil.rmtree(data, ignore_errors=True)
    assert by_position == named == dicts == spans, "the three reads must give the stored spans"
    figures = {
        "rows": args.rows, "query_s": round(query_s, 4),
        "positional_s": round(positional_s, 4), "by_name_s": round(by_name_s, 4),
        "named_results_s": round(named_results_s, 4),
        "by_name_vs_positional": round(by_name_s / positional_s, 3),
        "named_results_vs_positional": round(named_results_s / positional_s, 3),
        "by_name_us_per_row": round(by_name_s / args.rows * 1e6, 2),
    }
    for key, value in figures.items():
        print(f"{key:>28}: {value}")
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
