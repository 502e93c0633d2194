"""`PreparePool`: `Preparer` in worker processes, each tied to the receiver's life and held to a memory bound.

Workers are spawned, so they share nothing with the receiving process but their configuration.
Each one watches a pipe whose only writing end the receiving process holds: when that process
ends, even by SIGKILL, the pipe reaches end-of-file and the worker exits, and with the workers
gone the multiprocessing resource tracker exits too. On Linux each worker also limits its own
data segment (`RLIMIT_DATA`) to its size after start-up plus twice the per-request decode bound,
so no request, however its bytes inflate in the protobuf parser, can take more: the allocation
fails, and the request is refused as too large, while the process carries on.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import threading
from multiprocessing.connection import Connection

import structlog

from llmrel.receiver.decode import InvalidRequest
from llmrel.receiver.prepare import PrepareConfig, Prepared, Preparer

log = structlog.get_logger(__name__)

_worker: Preparer | None = None


def _exit_with_parent(parent_alive: Connection) -> None:
    """Exit as soon as the receiving process is gone: its end of the pipe closes when it ends."""

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            parent_alive.recv()
        os._exit(0)

    threading.Thread(target=watch, name="llmrel-parent-watch", daemon=True).start()


def _data_segment_bytes() -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _limit_memory(extra_bytes: int) -> None:
    """Cap this process's data segment at its current size plus `extra_bytes` (Linux; elsewhere nothing)."""
    try:
        import resource
    except ImportError:
        return
    current = _data_segment_bytes()
    if current is None:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = current + extra_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def _init_worker(config: PrepareConfig, parent_alive: Connection) -> None:
    global _worker
    # Ctrl-C reaches the whole process group; the server shuts its workers down itself, after
    # draining, so a worker that died of it first would fail the in-flight exports.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent(parent_alive)
    _worker = Preparer(config)
    _worker.warm_up()  # load what preparing needs before the limit, so the limit measures requests only
    _limit_memory(2 * config.max_decoded_bytes)


def _prepare_in_worker(body: bytes, is_json: bool) -> Prepared:
    assert _worker is not None, "worker not initialized"
    try:
        return _worker.prepare(body, is_json)
    except Exception as exc:
        # The executor keeps the last exception alive (it drops only its traceback): its context's
        # traceback would keep every local of the failed request, up to the memory limit, alive too.
        exc.__context__ = exc.__cause__ = None
        raise


class PreparePool:
    """`Preparer` in N worker processes; a crashed pool is replaced on the next request.

    `prepare()` blocks the calling thread (a gRPC or HTTP handler) until a worker is done.
    """

    def __init__(self, config: PrepareConfig, workers: int) -> None:
        self._config = config
        self._workers = workers
        self._lock = threading.Lock()
        # Workers get the reading end; the writing end never leaves this process.
        self._parent_alive, self._alive_writer = multiprocessing.Pipe(duplex=False)
        self._pool = self._start()

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self._workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(self._config, self._parent_alive))

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
        self._alive_writer.close()
        self._parent_alive.close()
