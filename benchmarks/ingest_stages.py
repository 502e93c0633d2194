"""Where a span's time goes on the ingest path, stage by stage, in one process (no RPC, no IPC):
parse, decode-size check, decode into Python values, content policy, normalize + price, Native
encoding of both tables, and the embedded store's inserts (in commits of `--batch` requests); and
one commit of 200 one-span exports, as a Native block per export vs one block for all.
Timed with `time.perf_counter` around each stage (the profiler: stage counters; `--cprofile N` adds
cProfile's top N functions). Used by `benchmarks/ingest_bench.py`; run alone for a quick look:

    .venv/bin/python benchmarks/ingest_stages.py [--spans-per-request 100] [--batch 8] [--cprofile 25]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from otlp_load import build_request


def measure_stages(requests: list[bytes], *, batch: int, rounds: int = 3, profile_top: int = 0) -> dict:
    """Microseconds per span of each stage, and spans/s of each stage alone."""
    from llmrel.config import load_settings
    from llmrel.model import LLM_CALL_COLUMNS, SPAN_COLUMNS
    from llmrel.receiver.decode import check_decoded_size, decode_request, parse_protobuf_request
    from llmrel.receiver.prepare import PrepareConfig, Preparer, RowEncoder
    from llmrel.receiver.server import _column_types
    from llmrel.store import connect, migrate

    data = Path(tempfile.mkdtemp(prefix="llmrel-bench-stages-"))
    settings = load_settings(clickhouse_url=f"chdb://{data}", analyzers_enabled=False)
    client = connect(settings)
    migrate(client, settings)
    preparer = Preparer(PrepareConfig("full", None, _column_types(client, "otel_traces", SPAN_COLUMNS),
                                      _column_types(client, "llm_calls", LLM_CALL_COLUMNS)))
    encoder = RowEncoder(_column_types(client, "otel_traces", SPAN_COLUMNS),
                         _column_types(client, "llm_calls", LLM_CALL_COLUMNS))
    seconds: dict[str, float] = defaultdict(float)
    spans = 0
    profiler = cProfile.Profile() if profile_top else None

    def timed(stage: str, fn, *args):
        started = time.perf_counter()
        out = fn(*args)
        seconds[stage] += time.perf_counter() - started
        return out

    if profiler is not None:
        profiler.enable()
    for _ in range(rounds):
        prepared = []
        for body in requests:
            request = timed("parse", parse_protobuf_request, body)
            budget = timed("size_check", check_decoded_size, request, len(body), 512 << 20)
            decoded = timed("decode", decode_request, request, budget)
            kept = timed("content_policy", preparer._ingest.apply_content_policy, decoded.spans,
                         decoded.rejections.span)
            calls = timed("normalize_price", lambda k: preparer._ingest.calls(k)[0], kept)
            spans_native = timed("encode_spans", encoder.spans, kept)
            calls_native = timed("encode_calls", encoder.calls, calls)
            prepared.append((spans_native, calls_native))
            spans += len(kept)
        for i in range(0, len(prepared), batch):
            commit = prepared[i:i + batch]
            timed("insert_llm_calls", client.raw_insert, "llm_calls", list(LLM_CALL_COLUMNS),
                  b"".join(c for _, c in commit), None, "Native")
            timed("insert_otel_traces", client.raw_insert, "otel_traces", list(SPAN_COLUMNS),
                  b"".join(s for s, _ in commit), None, "Native")
    if profiler is not None:
        profiler.disable()
    small = _small_exports_commit(client, preparer, encoder)
    client.close()
    shutil.rmtree(data, ignore_errors=True)
    per_span = {stage: round(s / spans * 1e6, 2) for stage, s in seconds.items()}
    total = sum(per_span.values())
    result = {"spans": spans, "spans_per_commit": batch * (spans // (rounds * len(requests))),
              "us_per_span": per_span, "total_us_per_span": round(total, 2),
              "share": {stage: round(us / total, 3) for stage, us in per_span.items()},
              "single_process_spans_per_s": round(1e6 / total),
              "one_span_exports_commit": small}
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(profile_top)
        result["cprofile_top"] = out.getvalue()
    return result


def _small_exports_commit(client, preparer, encoder, exports: int = 200, rounds: int = 3) -> dict:
    """One commit of `exports` one-span exports: each export's rows as a Native block of its own (as
    they were concatenated before) vs all rows encoded as one block (the group commit now), encoding
    included; wall ms per commit."""
    from llmrel.model import LLM_CALL_COLUMNS, SPAN_COLUMNS

    rng = random.Random(7)
    rows = [preparer.prepare(build_request(rng, 1), False).blocks[0] for _ in range(exports)]

    def commit(spans: list[bytes], calls: list[bytes]) -> None:
        client.raw_insert("llm_calls", list(LLM_CALL_COLUMNS), insert_block=b"".join(calls), fmt="Native")
        client.raw_insert("otel_traces", list(SPAN_COLUMNS), insert_block=b"".join(spans), fmt="Native")

    def block_per_export() -> None:
        commit([encoder.spans(r.spans) for r in rows], [encoder.calls(r.calls) for r in rows])

    def one_block() -> None:
        commit([encoder.spans([s for r in rows for s in r.spans])], [encoder.calls([c for r in rows for c in r.calls])])

    result = {"exports": exports}
    for name, fn in (("block_per_export_ms", block_per_export), ("one_block_ms", one_block)):
        started = time.perf_counter()
        for _ in range(rounds):
            fn()
        result[name] = round((time.perf_counter() - started) / rounds * 1000, 1)
    result["ratio"] = round(result["block_per_export_ms"] / result["one_block_ms"], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans-per-request", type=int, default=100)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8, help="requests per commit")
    parser.add_argument("--cprofile", type=int, default=0, help="print cProfile's top N functions")
    args = parser.parse_args()
    rng = random.Random(42)
    requests = [build_request(rng, args.spans_per_request) for _ in range(args.requests)]
    result = measure_stages(requests, batch=args.batch, profile_top=args.cprofile)
    print(result.pop("cprofile_top", ""))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
