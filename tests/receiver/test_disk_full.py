"""A full disk under load loses nothing that was acknowledged.

`llmrel serve` runs on its own small ext4 volume (a loop-mounted image, so ENOSPC, fsync and
merges are the kernel's real ones). Exporters send LLM spans continuously; the volume is filled
to the last block for a while, then freed. Every acknowledged span must be in `otel_traces` and
`llm_calls` after the store is reopened, no part may have been set aside as broken, `/readyz`
must say "not ready" while writes are refused, and ingest must resume without a restart.

Mounting needs root (CI and the development machines run as root); elsewhere the test says so.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from tests.instrumentation.serve import llmrel_serve, query_store
from tests.otlp_builders import chat_span, request
from tests.receiver.conftest import export_raw

_VOLUME_MIB = 160
_RESERVE_MIB = 24


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mkfs.ext4") is None:
        pytest.skip("needs root and mkfs.ext4 to mount a small loop volume")
    image, mount = tmp_path / "volume.img", tmp_path / "volume"
    mount.mkdir()
    subprocess.run(["truncate", "-s", f"{_VOLUME_MIB}M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-m", "0", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


class Load:
    """Exporters sending 50-span LLM requests (~2 KB of content each) and recording what was acked."""

    def __init__(self, port: int, senders: int = 2) -> None:
        self.port = port
        self.acked: set[str] = set()
        self.refused = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=(i,), daemon=True) for i in range(senders)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _send(self, seed: int) -> None:
        rng = random.Random(seed)
        filler = "x" * 2000
        while not self._stop.is_set():
            now = time.time_ns()
            spans = []
            for _ in range(50):
                span = chat_span(rng.getrandbits(40), trace=rng.getrandbits(100),
                                 extra={"gen_ai.prompt.0.content": filler, "gen_ai.prompt.0.role": "user"})
                span.span_id = rng.getrandbits(64).to_bytes(8, "big")
                span.start_time_unix_nano, span.end_time_unix_nano = now, now + 1_000_000
                spans.append(span)
            try:
                export_raw(self.port, request(spans).SerializeToString(), timeout=10)
            except grpc.RpcError as exc:
                # Retryable, nothing acknowledged; RESOURCE_EXHAUSTED when a loaded host puts the receiver behind.
                assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                      grpc.StatusCode.RESOURCE_EXHAUSTED), exc
                with self._lock:
                    self.refused += 1
                time.sleep(0.2)
                continue
            with self._lock:
                self.acked.update(s.span_id.hex() for s in spans)
            time.sleep(0.05)


def _fill(filler: Path) -> None:
    """Append zeros to `filler` until the volume has no free block left."""
    with open(filler, "ab") as out:
        block = b"\0" * (1 << 16)
        try:
            while True:
                out.write(block)
                out.flush()
        except OSError:
            pass


def _squeeze(filler: Path, seconds: float) -> None:
    """Keep the volume at the edge: give back a few MiB, let writes and merges start, fill it again."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        os.truncate(filler, max(0, filler.stat().st_size - (4 << 20)))
        time.sleep(0.3)
        _fill(filler)
        time.sleep(0.3)


def _readiness(http_port: int) -> int:
    return httpx.get(f"http://127.0.0.1:{http_port}/readyz", timeout=5).status_code


def _wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return False


@pytest.mark.parametrize("reserve_mib", [_RESERVE_MIB, 0], ids=["reserve", "no-reserve"])
def test_acknowledged_spans_survive_a_full_disk(small_volume: Path, reserve_mib: int):
    """With a reserve, writes stop before the disk is full; without one, the engine's own out-of-space errors
    start the same incident handling. Either way a merge caught by the full disk loses nothing."""
    store = small_volume / "store"
    env = {"LLMREL_MIN_FREE_DISK_MIB": str(reserve_mib), "LLMREL_INGEST_WORKERS": "1"}
    with llmrel_serve(store, env=env) as serve, Load(serve.grpc_port) as load:
        time.sleep(5)
        acked_before = len(load.acked)
        assert acked_before > 0
        filler = small_volume / "filler"
        _fill(filler)
        assert _wait_for(lambda: _readiness(serve.http_port) == 503, 10), "readyz stayed ready on a full disk"
        reason = httpx.get(f"http://127.0.0.1:{serve.http_port}/readyz").json()["reason"]
        assert "below the reserve" in reason or "NOT_ENOUGH_SPACE" in reason, reason
        metrics = httpx.get(f"http://127.0.0.1:{serve.http_port}/metrics").text
        assert "llmrel_store_disk_low 1.0" in metrics
        _squeeze(filler, 15)  # exporters keep sending into a disk at the edge of full
        assert load.refused > 0
        filler.unlink()
        assert _wait_for(lambda: _readiness(serve.http_port) == 200, 15), "ingest did not resume"
        acked_at_free = len(load.acked)
        assert _wait_for(lambda: len(load.acked) > acked_at_free, 15), "no export acknowledged after space returned"
        time.sleep(3)
    acked = load.acked
    log = "".join(serve.log)
    assert "disk_space_low" in log

    stored_spans = {r[0] for r in query_store(serve.url, "SELECT DISTINCT SpanId FROM otel_traces")}
    stored_calls = {r[0] for r in query_store(serve.url, "SELECT DISTINCT SpanId FROM llm_calls")}
    detached = query_store(serve.url, "SELECT table, name, reason FROM system.detached_parts")
    assert not acked - stored_spans, f"{len(acked - stored_spans)} acknowledged spans missing from otel_traces"
    assert not acked - stored_calls, f"{len(acked - stored_calls)} acknowledged calls missing from llm_calls"
    # A part a merge left broken was set aside and its source parts restored; each one is reported.
    for table, _name, reason in detached:
        assert reason == "broken-on-start"
        assert re.search(rf"store_broken_part_recovered\s.*table={table}\b", log), (table, log[-3000:])
    print(f"\nacked {len(acked)} spans ({load.refused} exports refused while full), stored {len(stored_spans)} "
          f"spans / {len(stored_calls)} calls, {log.count('store_broken_part_recovered')} table(s) recovered")
