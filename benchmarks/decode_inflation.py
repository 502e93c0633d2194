"""Decoded-size inflation: how much memory one OTLP request takes once parsed and prepared, per wire byte.

For each request shape (realistic LLM chat spans with content, and the element kinds that inflate
most: empty spans, tiny attributes, empty events, empty links, long int arrays) a request of about
`--mib` MiB is built here and prepared in a fresh process, which reports the growth of its peak
resident memory for the protobuf parse alone and for the whole preparation (parse, decode, content
policy, normalize, price, Native encoding), with the decode bound lifted so the true figure shows.
Beside each: `check_decoded_size`'s estimate, which is what the receiver compares with
LLMREL_MAX_DECODED_MIB, as a ratio to the measured decode; at or above 1 it is a bound.

    .venv/bin/python benchmarks/decode_inflation.py [--mib 4]

Figures are printed and written to benchmarks/results/decode_inflation.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "decode_inflation.json"
SHAPES = ("realistic", "empty_spans", "tiny_attributes", "empty_events", "empty_links", "int_array")

_CHILD = r"""
import json, sys
from llmrel.receiver.decode import check_decoded_size, decode_request, parse_protobuf_request
from llmrel.receiver.prepare import PrepareConfig, Preparer

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

def peak():
    return status("VmHWM")

mode, path, types = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
body = open(path, "rb").read()
preparer = Preparer(PrepareConfig("full", None, tuple(types[0]), tuple(types[1]), max_decoded_bytes=1 << 62))
preparer.warm_up()
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # the peak resident size starts again from the current one
base = peak()
if mode == "parse":
    request = parse_protobuf_request(body)
    print(json.dumps({"growth": peak() - base}))
else:
    prepared = preparer.prepare(body, False)
    growth = peak() - base
    request = parse_protobuf_request(body)
    budget = check_decoded_size(request, len(body), 1 << 62)
    decode_request(request, budget)  # charges the elements of array and map values
    print(json.dumps({"growth": growth, "estimate": budget.total}))
"""


def build(shape: str, target: int) -> bytes:
    sys.path.insert(0, str(ROOT))
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    from tests.otlp_builders import T0, chat_span, request

    def bare(i: int) -> Span:
        return Span(trace_id=(i + 1).to_bytes(16, "big"), span_id=(i + 1).to_bytes(8, "big"),
                    start_time_unix_nano=T0 + i, end_time_unix_nano=T0 + i + 1)

    if shape == "realistic":
        content = {"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Summarize this ticket. " * 90}
        return request([chat_span(i, extra=content) for i in range(target // 2700)]).SerializeToString()
    if shape == "empty_spans":  # valid ids and times, nothing else: about 45 bytes each
        return request([bare(i) for i in range(target // 45)]).SerializeToString()
    span = bare(0)
    if shape == "tiny_attributes":
        span.attributes.extend(KeyValue(key=f"{i:x}") for i in range(target // 8))
    elif shape == "empty_events":
        span.events.extend(Span.Event() for _ in range(target // 2))
    elif shape == "empty_links":
        span.links.extend(Span.Link() for _ in range(target // 2))
    else:
        values = [AnyValue(int_value=1)] * (target // 4)
        span.attributes.append(KeyValue(key="a", value=AnyValue(array_value=ArrayValue(values=values))))
    return request([span]).SerializeToString()


def column_types() -> list[list[str]]:
    from llmrel.config import load_settings
    from llmrel.model import LLM_CALL_COLUMNS, SPAN_COLUMNS
    from llmrel.receiver.server import _column_types
    from llmrel.store import connect, migrate

    with tempfile.TemporaryDirectory() as store:
        settings = load_settings(clickhouse_url=f"chdb://{store}")
        client = connect(settings)
        migrate(client, settings)
        types = [list(_column_types(client, "otel_traces", SPAN_COLUMNS)),
                 list(_column_types(client, "llm_calls", LLM_CALL_COLUMNS))]
        client.close()
    return types


def measure(mode: str, body_path: Path, types: list[list[str]]) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD, mode, str(body_path), json.dumps(types)],
                          capture_output=True, text=True, timeout=900, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=float, default=4.0, help="wire size of each request")
    args = parser.parse_args()
    types = column_types()
    mib = 2**20
    figures = {}
    with tempfile.TemporaryDirectory() as work:
        for shape in SHAPES:
            body = build(shape, int(args.mib * mib))
            path = Path(work) / f"{shape}.bin"
            path.write_bytes(body)
            started = time.perf_counter()
            parse = measure("parse", path, types)
            prepare = measure("prepare", path, types)
            seconds = time.perf_counter() - started
            wire = len(body)
            figures[shape] = {
                "wire_mib": round(wire / mib, 2),
                "parse_growth_mib": round(parse["growth"] / mib, 1),
                "prepare_growth_mib": round(prepare["growth"] / mib, 1),
                "parse_inflation": round(parse["growth"] / wire, 1),
                "prepare_inflation": round(prepare["growth"] / wire, 1),
                "estimate_mib": round(prepare["estimate"] / mib, 1),
                "estimate_over_prepare": round(prepare["estimate"] / max(prepare["growth"], 1), 2),
                "seconds": round(seconds, 1),
            }
            f = figures[shape]
            print(f"{shape:16s} wire {f['wire_mib']:6.1f} MiB  parse x{f['parse_inflation']:5.1f}  "
                  f"prepare x{f['prepare_inflation']:5.1f} ({f['prepare_growth_mib']:7.1f} MiB)  "
                  f"estimate {f['estimate_mib']:7.1f} MiB = {f['estimate_over_prepare']:4.2f} x measured")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "params": vars(args), "shapes": figures},
                                  indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
