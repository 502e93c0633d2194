"""OTLP fuzzing of a real `llmrel serve`, over real gRPC and HTTP (protobuf, JSON, gzip).

Every answer must be a success or a client error (never INTERNAL / 500, never a retryable status
for a request that can only fail again); serve must not crash; every span acknowledged must be
stored (the store holds exactly the acknowledged spans, and control requests sent between the
fuzzed ones are all there); and memory stays bounded.

`LLMREL_FUZZ_CASES` (default 3000) sets the number of fuzzed requests and `LLMREL_FUZZ_SEED`
(default 16) the seed: a failure prints both and the case, so a run replays exactly.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from llmrel.receiver.decode import InvalidRequest, parse_json_request
from tests.instrumentation.serve import llmrel_serve, query_store
from tests.otlp_builders import chat_span, request
from tests.otlp_fuzz import Case, Fuzzer
from tests.receiver.test_worker_processes import descendants

CASES = int(os.environ.get("LLMREL_FUZZ_CASES", "3000"))
SEED = int(os.environ.get("LLMREL_FUZZ_SEED", "16"))
CONTROL_EVERY = 50
SENDERS = 4
MAX_RSS_MIB = 2048  # serve and its worker together; the decode bound is 512 MiB per worker
GRPC_ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
HTTP_ALLOWED = {200, 400, 413}
METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def span_count(case: Case) -> int:
    """Spans in a request the receiver accepted (it parsed, so this parses too)."""
    message = parse_json_request(case.body) if case.is_json else ExportTraceServiceRequest.FromString(case.body)
    return sum(len(ss.spans) for rs in message.resource_spans for ss in rs.scope_spans)


class MemoryWatch:
    """Samples the resident memory of a process tree every 50 ms; `peak_mib` is the highest total."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            total = 0
            for pid in {self.pid, *descendants(self.pid)}:
                with contextlib.suppress(OSError, IndexError):
                    total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            self.peak_mib = max(self.peak_mib, total / 2**20)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mib


@pytest.fixture
def fast_store_dir(tmp_path: Path) -> Iterator[Path]:
    """A store directory in memory when the machine has /dev/shm: the fuzzing is about the protocol
    path, and committing thousands of small parts with fsync on a disk would take most of the run."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    directory = Path(tempfile.mkdtemp(prefix="llmrel-fuzz-", dir=shm))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class Sender:
    """Sends one case over gRPC or HTTP and checks the answer; thread-safe tallies of what was acknowledged."""

    def __init__(self, grpc_port: int, http_port: int) -> None:
        self.channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}",
                                             options=[("grpc.max_send_message_length", 256 << 20)])
        self.export = self.channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=60)
        self.acked = 0
        self.outcomes: dict[str, int] = {}
        self._lock = threading.Lock()

    def send(self, index: int, case: Case, via: str, gzipped: bool) -> None:
        where = f"seed {SEED}, case {index} ({case.how}, {via}): {case.body[:300]!r}"
        response = None
        if via == "grpc":
            try:
                response = ExportTraceServiceResponse.FromString(self.export(case.body, timeout=60))
                outcome = "OK"
            except grpc.RpcError as exc:
                assert exc.code() in GRPC_ALLOWED, f"{exc.code()} {exc.details()} for {where}"
                outcome = exc.code().name
        else:
            answer = self.http.post("/v1/traces", content=gzip.compress(case.body) if gzipped else case.body,
                                    headers={"Content-Type": "application/json" if case.is_json
                                             else "application/x-protobuf",
                                             **({"Content-Encoding": "gzip"} if gzipped else {})})
            assert answer.status_code in HTTP_ALLOWED, f"{answer.status_code} {answer.text[:300]} for {where}"
            outcome = str(answer.status_code)
            if answer.status_code == 200:
                rejected = (answer.json().get("partialSuccess", {}).get("rejectedSpans", 0) if case.is_json
                            else ExportTraceServiceResponse.FromString(answer.content).partial_success.rejected_spans)
                response = ExportTraceServiceResponse(partial_success={"rejected_spans": int(rejected)})
        accepted = 0
        if response is not None:
            try:
                total = span_count(case)
            except InvalidRequest:
                raise AssertionError(f"acknowledged a request that does not parse: {where}") from None
            rejected = response.partial_success.rejected_spans
            assert 0 <= rejected <= total, where
            accepted = total - rejected
        with self._lock:
            self.acked += accepted
            self.outcomes[f"{via}:{outcome}"] = self.outcomes.get(f"{via}:{outcome}", 0) + 1

    def close(self) -> None:
        self.channel.close()
        self.http.close()


def test_fuzzed_otlp_requests(fast_store_dir):
    fuzzer = Fuzzer(SEED)
    controls: list[str] = []
    env = {"LLMREL_INGEST_WORKERS": "1", "LLMREL_CONTENT_POLICY": "redacted", "LLMREL_ANALYZERS_ENABLED": "false",
           "LLMREL_TRACES_TTL_DAYS": "0", "LLMREL_CALLS_TTL_DAYS": "0", "LLMREL_INSERT_TIMEOUT_S": "300",
           "LLMREL_MAX_QUEUE_DELAY_MS": "0"}  # a slow shared host must not turn the controls into "retry later"
    started = time.monotonic()
    with llmrel_serve(fast_store_dir / "store", env=env) as serve:
        watch = MemoryWatch(serve.process.pid)
        sender = Sender(serve.grpc_port, serve.http_port)
        with ThreadPoolExecutor(SENDERS) as pool:
            pending: list[Future[None]] = []
            for index in range(CASES):
                case = fuzzer.case()  # drawn in order, so the seed replays the same cases
                via = "grpc" if not case.is_json and index % 2 == 0 else "http"
                pending.append(pool.submit(sender.send, index, case, via, fuzzer.rng.random() < 0.3))
                if index % CONTROL_EVERY == 0:  # a valid request in between: stored, whatever came before
                    span = chat_span(1, trace=(1 << 100) + index)
                    pending.append(pool.submit(sender.export, request([span]).SerializeToString(), timeout=60))
                    controls.append(span.trace_id.hex())
                if len(pending) >= 2 * SENDERS:
                    pending.pop(0).result()
            for future in pending:
                future.result()
        assert serve.process.poll() is None, "llmrel serve crashed"
        assert sender.http.get("/healthz").status_code == 200
        peak_mib = watch.stop()
        sender.close()
    seconds = time.monotonic() - started
    log = "".join(serve.log)
    assert "ingest_failed" not in log and "Traceback" not in log, log[-3000:]
    stored = query_store(serve.url, "SELECT count() FROM otel_traces")[0][0]
    assert stored == sender.acked + len(controls)
    stored_controls = {r[0] for r in query_store(serve.url, "SELECT DISTINCT TraceId FROM otel_traces "
                                                            "WHERE TraceId LIKE '0000001%'")}
    assert set(controls) <= stored_controls
    assert peak_mib < MAX_RSS_MIB
    print(f"\n{CASES} fuzzed requests (seed {SEED}) in {seconds:.0f} s: {dict(sorted(sender.outcomes.items()))}; "
          f"{sender.acked} spans acknowledged and stored; peak RSS of serve + worker {peak_mib:.0f} MiB")
