"""`Receiver`: wires settings -> store -> writer -> ingest -> gRPC, HTTP and ClickHouse HTTP servers, and
hands committed calls to a `ServeExtension` (the analyzers and what acts on their findings, composed by
`llmrel.cli.compose`; the receiver never imports them).

Lifecycle: `start()` migrates the schema and binds the ports; `stop()` drains: the servers stop
taking requests, in-flight exports finish (up to the grace period), the writer commits what is
queued, the extension sees the last commits and closes (the analyzers checkpoint). Usable as a
context manager in tests.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
import uvicorn
from clickhouse_connect.driver.client import Client

from llmrel.config import ConfigError, Settings
from llmrel.model import LLM_CALL_COLUMNS, SPAN_COLUMNS, LlmCall
from llmrel.receiver.api import build_api_router
from llmrel.receiver.grpc_server import TraceServicer, build_grpc_server
from llmrel.receiver.http_app import bearer_auth, build_http_app, build_otlp_router
from llmrel.receiver.ingest import Ingestor
from llmrel.receiver.metrics import ReceiverMetrics
from llmrel.receiver.prepare import PrepareConfig, Preparer, RowEncoder
from llmrel.receiver.quiet_server import QuietServer
from llmrel.receiver.storehealth import DiskGuard, StoreHealth
from llmrel.receiver.workers import PreparePool
from llmrel.receiver.writer import BatchWriter
from llmrel.seams import CommitHook, ServeExtension, ServeExtensionFactory
from llmrel.store import connect, detached_parts, migrate

log = structlog.get_logger(__name__)
_MIB = 1024 * 1024


class CommitWorker:
    """Hands committed batches to the extension on one thread, off the ack path.

    The queue is bounded: if analysis falls behind, commits wait for it (backpressure)
    instead of growing memory or dropping calls.
    """

    def __init__(self, on_commit: CommitHook, metrics: ReceiverMetrics, max_batches: int = 64) -> None:
        self._on_commit = on_commit
        self._metrics = metrics
        self._queue: queue.Queue[list[LlmCall] | None] = queue.Queue(max_batches)
        self._thread = threading.Thread(target=self._run, name="llmrel-analyzers", daemon=True)
        self._thread.start()

    def submit(self, calls: list[LlmCall]) -> None:
        self._queue.put(calls)
        self._metrics.analyzer_queue_depth.set(self._queue.qsize())

    def close(self, timeout_s: float = 30.0) -> None:
        """Let the queued batches through, then stop."""
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while (calls := self._queue.get()) is not None:
            self._metrics.analyzer_queue_depth.set(self._queue.qsize())
            try:
                self._on_commit(calls)
            except Exception:
                log.exception("analyzer_failed", calls=len(calls))


def _column_types(client: Client, table: str, columns: tuple[str, ...]) -> tuple[str, ...]:
    """ClickHouse type names of `columns`, in that order, as the store declares them."""
    types = dict(client.query("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                              "AND table = {t:String}", parameters={"t": table}).result_rows)
    missing = [c for c in columns if c not in types]
    if missing:
        raise RuntimeError(f"{table} lacks columns {missing}; run `llmrel migrate`")
    return tuple(types[c] for c in columns)


def _report_detached_parts(client: Client, metrics: ReceiverMetrics) -> None:
    """Parts the engine set aside on opening the store are data no table shows: say so loudly."""
    for table, reason, count in detached_parts(client):
        metrics.store_detached_parts.labels(table, reason).set(count)
        log.error("store_detached_parts", table=table, reason=reason, parts=count,
                  hint="rows in these parts are not visible; see system.detached_parts and the deployment guide")


def _store_partitioning(client: Client) -> tuple[str, int]:
    """The store's time zone (which `toDate()` partitions follow) and its partitions-per-insert limit."""
    timezone, limit = client.query("SELECT timezone(), getSetting('max_partitions_per_insert_block')").result_rows[0]
    return str(timezone), int(limit)


class Receiver:
    """The running llmrel ingest service (gRPC + HTTP + ClickHouse HTTP + writer), with its extension."""

    def __init__(self, settings: Settings, *, client_factory: Callable[[], Client] | None = None,
                 extension: ServeExtensionFactory | None = None) -> None:
        self.settings = settings
        self._extension_factory = extension
        self.metrics = ReceiverMetrics()
        self._client_factory = client_factory or (lambda: connect(settings))
        self.grpc_port = 0
        self.http_port = 0
        self.clickhouse_http_port = 0
        self._ready = False

    def start(self) -> Receiver:
        """Migrate, then start every part; on failure, stop what had started and re-raise."""
        try:
            return self._start()
        except BaseException:
            self._abort_start()
            raise

    def _abort_start(self) -> None:
        if (grpc_server := getattr(self, "_grpc", None)) is not None:
            grpc_server.stop(0)
        if (servicer := getattr(self, "_servicer", None)) is not None:
            servicer.close()
        if (http := getattr(self, "_uvicorn", None)) is not None:
            http.exit()
        if (clickhouse_http := getattr(self, "_clickhouse_http", None)) is not None:
            clickhouse_http.stop(0)
        for part in ("_pool", "_writer", "_commits", "_extension", "_health"):
            if (component := getattr(self, part, None)) is not None:
                component.close()
        for name in ("_write_client", "_read_client"):
            if (client := getattr(self, name, None)) is not None:
                client.close()

    def _start(self) -> Receiver:
        s = self.settings
        if (problem := s.unauthenticated_exposure(s.grpc_endpoint, s.http_endpoint)) is not None:
            raise ConfigError(problem)
        tls = None
        if s.tls_cert_file is not None and s.tls_key_file is not None:
            tls = (s.tls_cert_file.read_bytes(), s.tls_key_file.read_bytes())
        self._write_client = self._client_factory()
        migrate(self._write_client, s)
        _report_detached_parts(self._write_client, self.metrics)
        guard = None
        if s.embedded_path is not None:
            guard = DiskGuard(s.embedded_path, s.min_free_disk_mib * _MIB, self._client_factory(), self.metrics)
        self._health = StoreHealth(guard)
        self._read_client = self._client_factory()
        timezone, max_partitions = _store_partitioning(self._write_client)
        self._extension: ServeExtension | None = None
        self._commits: CommitWorker | None = None
        if self._extension_factory is not None:
            self._extension = self._extension_factory(s, self._client_factory, self.metrics.registry)
            self._commits = CommitWorker(self._extension.on_commit, self.metrics)
        config = PrepareConfig(s.content_policy, s.prices_file,
                               _column_types(self._write_client, "otel_traces", SPAN_COLUMNS),
                               _column_types(self._write_client, "llm_calls", LLM_CALL_COLUMNS),
                               timezone=timezone, max_partitions=max_partitions,
                               max_decoded_bytes=s.max_decoded_mib * _MIB)
        self._writer = BatchWriter(
            self._write_client, self.metrics, RowEncoder(config.span_types, config.call_types),
            max_spans=s.batch_max_spans, max_wait_s=s.batch_max_wait_ms / 1000,
            on_commit=self._commits.submit if self._commits else None, health=self._health,
            max_partitions=max_partitions)
        workers = s.ingest_workers if s.ingest_workers is not None else min(os.cpu_count() or 1, 8)
        if workers:
            self._pool: PreparePool | None = PreparePool(config, workers)
            self._pool.warm_up()
            prepare = self._pool.prepare
        else:
            self._pool = None
            prepare = Preparer(config).prepare
        self._ingestor = Ingestor(self._writer, self.metrics, prepare=prepare,
                                  max_inflight_bytes=s.max_inflight_mib * _MIB, commit_timeout_s=s.insert_timeout_s,
                                  max_queue_delay_s=s.max_queue_delay_ms / 1000)
        token = s.auth_token.get_secret_value() if s.auth_token else None
        self._servicer = TraceServicer(self._ingestor, self.metrics, retry_after_s=s.retry_after_s,
                                       recv_timeout_s=s.recv_timeout_s, prepare_threads=max(4, 2 * workers),
                                       prepare_inline=not workers)
        self._grpc = build_grpc_server(
            self._servicer, s.grpc_endpoint, max_recv_bytes=s.max_recv_mib * _MIB, auth_token=token, tls=tls,
            handshake_timeout_s=s.recv_timeout_s)
        self.grpc_port = self._grpc.port
        auth = bearer_auth(token)
        app = build_http_app(
            [build_otlp_router(self._ingestor, self.metrics, auth=auth, max_body_bytes=s.max_recv_mib * _MIB,
                               retry_after_s=s.retry_after_s, recv_timeout_s=s.recv_timeout_s),
             build_api_router(self._read_client, auth),
             *(self._extension.routers(auth) if self._extension is not None else [])],
            self.metrics, not_ready=self._not_ready)
        host, _, port = s.http_endpoint.rpartition(":")
        self._uvicorn = QuietServer(uvicorn.Config(
            app, host=host.strip("[]"), port=int(port), log_level="warning", access_log=False,
            timeout_graceful_shutdown=10, lifespan="off",
            ssl_certfile=s.tls_cert_file, ssl_keyfile=s.tls_key_file))
        self._http_thread = threading.Thread(target=self._uvicorn.run, name="llmrel-http", daemon=True)
        if self._extension is not None:
            self._extension.start()
        self._grpc.start()
        self._http_thread.start()
        self.http_port = self._wait_for_http()
        self._clickhouse_http = self._start_clickhouse_http(config)
        self._ready = True
        log.info("receiver_started", grpc_port=self.grpc_port, http_port=self.http_port,
                 clickhouse_http_port=self.clickhouse_http_port,
                 store="embedded" if s.is_embedded else "server", tls=s.tls, auth=token is not None)
        return self

    def _start_clickhouse_http(self, config: PrepareConfig) -> Any | None:
        """ClickHouse's HTTP interface over the embedded store; its `otel_traces` inserts join this pipeline."""
        s = self.settings
        if not s.clickhouse_http_endpoint or not s.is_embedded:
            return None
        from llmrel.receiver.clickhouse_http.listener import ClickHouseHttpListener, span_sink

        listener = ClickHouseHttpListener(s, span_sink(Preparer(config).prepare_spans, self._ingestor.store),
                                          self._health.problem)
        self.clickhouse_http_port = listener.start()
        return listener

    def _not_ready(self) -> str | None:
        if not self._ready:
            return "starting or shutting down"
        return self._health.problem()

    def _wait_for_http(self, timeout_s: float = 30.0) -> int:
        deadline = time.monotonic() + timeout_s
        while not self._uvicorn.started:
            if not self._http_thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"cannot serve OTLP/HTTP on {self.settings.http_endpoint}")
            time.sleep(0.01)
        return self._uvicorn.servers[0].sockets[0].getsockname()[1]

    def stop(self, grace_s: float = 10.0) -> None:
        """Graceful shutdown: stop accepting, drain in-flight exports, commit, checkpoint."""
        if not self._ready:
            return
        self._ready = False
        self._uvicorn.exit()
        if self._clickhouse_http is not None:
            self._clickhouse_http.stop(grace_s)
        self._grpc.stop(grace_s)
        self._servicer.close()
        self._http_thread.join(grace_s + 1)
        if self._pool is not None:
            self._pool.close()
        self._writer.close()
        if self._commits is not None:
            self._commits.close()
        if self._extension is not None:
            self._extension.close()
        self._health.close()
        for client in (self._write_client, self._read_client):
            client.close()
        log.info("receiver_stopped")

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
