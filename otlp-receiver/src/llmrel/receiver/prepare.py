"""Request bytes -> rows ready to insert: parse, decode, content policy, normalize, price, and
encode both tables' rows in ClickHouse's Native format. Pure CPU work with no I/O, so it can run
in worker processes (`PreparePool`) and use every core, leaving the process that owns the
store to insert bytes, acknowledge and analyze.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import structlog
from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.transform import NativeTransform

from llmrel.model import LLM_CALL_COLUMNS, SPAN_COLUMNS, LlmCall, SpanRecord
from llmrel.receiver.content import content_transform
from llmrel.receiver.decode import InvalidRequest, decode_request, parse_json_request, parse_protobuf_request

log = structlog.get_logger(__name__)


class Prepared(NamedTuple):
    """One request's rows, encoded for insertion, plus what the ack and the analyzers need."""

    spans_native: bytes
    calls_native: bytes
    span_count: int
    calls: list[LlmCall]
    rejected: int
    errors: list[str]
    normalize_errors: int


@dataclass(frozen=True)
class PrepareConfig:
    """Everything a worker needs; picklable. Column types are ClickHouse type names in column order."""

    content_policy: str
    prices_file: Path | None
    span_types: tuple[str, ...]
    call_types: tuple[str, ...]


def _encode(table: str, columns: Sequence[str], types: Sequence[Any], rows: Sequence[tuple]) -> bytes:
    if not rows:
        return b""
    context = InsertContext(table, list(columns), list(types), data=rows)
    encoded = b"".join(NativeTransform.build_insert(context))
    return encoded[encoded.index(b"\n") + 1:]  # drop the "INSERT ... FORMAT Native" line of the first block


class Preparer:
    """Turns request bodies into `Prepared` rows with one configuration."""

    def __init__(self, config: PrepareConfig) -> None:
        from llmrel.normalize import normalize_span
        from llmrel.price_file import load_price_file
        from llmrel.pricing import Pricer

        self._normalize: Callable[[SpanRecord], LlmCall | None] = normalize_span
        self._price = Pricer(load_price_file(config.prices_file) if config.prices_file else None).price
        self._span_transform = content_transform(config.content_policy)
        self._span_types = [get_from_name(t) for t in config.span_types]
        self._call_types = [get_from_name(t) for t in config.call_types]

    def prepare(self, body: bytes, is_json: bool) -> Prepared:
        """Prepare one request body.

        Raises:
            InvalidRequest: the body is not a valid OTLP trace request.
        """
        request = parse_json_request(body) if is_json else parse_protobuf_request(body)
        decoded = decode_request(request)
        spans = decoded.spans
        if self._span_transform is not None:
            spans = [self._span_transform(s) for s in spans]
        calls, failures = [], 0
        for span in spans:
            try:
                call = self._normalize(span)
                if call is not None:
                    calls.append(self._price(call))
            except Exception:
                failures += 1
                log.exception("normalize_failed", trace_id=span.trace_id, span_id=span.span_id)
        return Prepared(_encode("otel_traces", SPAN_COLUMNS, self._span_types, spans),
                        _encode("llm_calls", LLM_CALL_COLUMNS, self._call_types, calls),
                        len(spans), calls, decoded.rejected, decoded.errors, failures)


_worker: Preparer | None = None


def _init_worker(config: PrepareConfig) -> None:
    global _worker
    # Ctrl-C reaches the whole process group; the server shuts its workers down itself, after
    # draining, so a worker that died of it first would fail the in-flight exports.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker = Preparer(config)


def _prepare_in_worker(body: bytes, is_json: bool) -> Prepared:
    assert _worker is not None, "worker not initialized"
    return _worker.prepare(body, is_json)


class PreparePool:
    """`Preparer` in N worker processes; a crashed pool is replaced on the next request.

    `prepare()` blocks the calling thread (a gRPC or HTTP handler) until a worker is done.
    """

    def __init__(self, config: PrepareConfig, workers: int) -> None:
        self._config = config
        self._workers = workers
        self._lock = threading.Lock()
        self._pool = self._start()

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self._workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(self._config,))

    def warm_up(self) -> None:
        """Start every worker now (imports take a second or two) rather than on the first requests."""
        futures = [self._pool.submit(_prepare_in_worker, b"", False) for _ in range(self._workers)]
        for future in futures:
            future.result()

    def prepare(self, body: bytes, is_json: bool) -> Prepared:
        """Prepare in a worker. If the worker dies (a crash, the OOM killer), the pool is replaced
        and the request tried once more; a request that kills a worker twice is refused as invalid,
        so a sender's retries cannot keep breaking the pool."""
        try:
            return self._submit(body, is_json)
        except concurrent.futures.process.BrokenProcessPool:
            pass
        try:
            return self._submit(body, is_json)
        except concurrent.futures.process.BrokenProcessPool:
            raise InvalidRequest("the request stopped the decoder twice; not retrying") from None

    def _submit(self, body: bytes, is_json: bool) -> Prepared:
        pool = self._pool
        try:
            return pool.submit(_prepare_in_worker, body, is_json).result()
        except concurrent.futures.process.BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    log.error("prepare_pool_broken_restarting")
                    pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = self._start()
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
