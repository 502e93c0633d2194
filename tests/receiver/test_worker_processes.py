"""`llmrel serve`'s ingest worker processes: they end with it, and no request can inflate them unbounded."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import grpc
import pytest

from tests.instrumentation.serve import llmrel_serve
from tests.otlp_builders import chat_span, request
from tests.otlp_fuzz import field
from tests.receiver.conftest import export_raw


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def memory_mib(pid: int, field: str) -> float:
    """`VmRSS` (now) or `VmHWM` (peak) of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field}")


def empty_spans(count: int) -> bytes:
    """A request of `count` empty spans: 2 bytes each on the wire, about 170 bytes each once parsed."""
    return field(1, field(2, b"\x12\x00" * count))


def test_workers_and_resource_tracker_end_when_serve_is_killed(tmp_path):
    with llmrel_serve(tmp_path / "store", env={"LLMREL_INGEST_WORKERS": "2"}) as serve:
        export_raw(serve.grpc_port, request([chat_span(1)]).SerializeToString())
        children = descendants(serve.process.pid)
        assert len(children) >= 3, children  # two workers and the resource tracker
        os.kill(serve.process.pid, signal.SIGKILL)
        serve.process.wait(10)
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = [pid for pid in children if alive(pid)]
        for pid in survivors:  # leave nothing behind when the assertion fails
            os.kill(pid, signal.SIGKILL)
        assert not survivors, "processes outlived a killed llmrel serve"


def test_a_request_that_inflates_in_the_parser_is_refused_within_the_worker_bound(tmp_path):
    env = {"LLMREL_INGEST_WORKERS": "1", "LLMREL_MAX_DECODED_MIB": "64"}
    with llmrel_serve(tmp_path / "store", env=env) as serve:
        export_raw(serve.grpc_port, request([chat_span(1)]).SerializeToString())
        (worker,) = [p for p in descendants(serve.process.pid) if "resource_tracker" not in
                     Path(f"/proc/{p}/cmdline").read_text()]
        start_mib = memory_mib(worker, "VmRSS")
        body = empty_spans(12_000_000)  # 23 MiB that the parser alone would grow to about 2 GiB
        with pytest.raises(grpc.RpcError) as caught:
            export_raw(serve.grpc_port, body, timeout=60)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "memory" in caught.value.details()
        assert "google.rpc.retryinfo-bin" not in dict(caught.value.trailing_metadata() or ())
        assert memory_mib(worker, "VmHWM") < start_mib + 2 * 64 + 32  # the bound: twice the decode limit
        assert alive(worker)
        export_raw(serve.grpc_port, request([chat_span(2)]).SerializeToString())
