"""Starts the interface beside the OTLP listeners of `llmrel serve` (embedded store only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import uvicorn

from llmrel.config import ConfigError, Settings
from llmrel.model import SpanRecord
from llmrel.receiver.clickhouse_http.app import Interface, build_app
from llmrel.receiver.clickhouse_http.engine import Engine
from llmrel.receiver.clickhouse_http.errors import ClickHouseError
from llmrel.receiver.clickhouse_http.query_settings import Limits
from llmrel.receiver.clickhouse_http.users import Users
from llmrel.receiver.ingest import IngestResult, Outcome
from llmrel.receiver.prepare import Prepared
from llmrel.receiver.quiet_server import QuietServer
from llmrel.served_store import publish_endpoint, withdraw_endpoint
from llmrel.store import database_name

_MIB = 1024 * 1024


def span_sink(prepare: Callable[[list[SpanRecord]], Prepared],
              store: Callable[[Prepared], IngestResult]) -> Callable[[list[SpanRecord]], int]:
    """Spans -> the receiver's pipeline; returns the spans stored, raises ClickHouse's error otherwise."""
    def sink(spans: list[SpanRecord]) -> int:
        result = store(prepare(spans))
        if result.outcome is Outcome.STORED:
            return result.accepted
        if result.outcome is Outcome.REJECTED:
            raise ClickHouseError(117, f"Incorrect data: {result.message}")
        if result.outcome is Outcome.FAILED:
            raise ClickHouseError(1001, result.message)
        raise ClickHouseError(439, f"{result.message}; nothing acknowledged, retry")
    return sink


class ClickHouseHttpListener:
    """The interface's own uvicorn server, in a thread."""

    def __init__(self, settings: Settings, sink: Callable[[list[SpanRecord]], int],
                 not_ready: Callable[[], str | None]) -> None:
        endpoint = settings.clickhouse_http_endpoint
        if endpoint is None or settings.embedded_path is None:
            raise ValueError("the ClickHouse HTTP interface serves an embedded store only")
        if (problem := settings.unauthenticated_exposure(endpoint)) is not None:
            raise ConfigError(problem)
        limits = Limits(settings.clickhouse_http_max_execution_time_s, settings.clickhouse_http_max_memory_mib * _MIB,
                        settings.clickhouse_http_max_result_rows, settings.clickhouse_http_max_result_mib * _MIB)
        interface = Interface(Engine(settings.embedded_path, settings.clickhouse_http_max_concurrent),
                              Users(settings), limits, database_name(settings.clickhouse_url), sink,
                              settings.clickhouse_http_max_body_mib * _MIB, not_ready)
        host, _, port = endpoint.rpartition(":")
        self._store, self._host = settings.embedded_path, host.strip("[]")
        self._server = QuietServer(uvicorn.Config(
            build_app(interface), host=host.strip("[]"), port=int(port), log_level="warning", access_log=False,
            timeout_graceful_shutdown=10, lifespan="off",
            ssl_certfile=settings.tls_cert_file, ssl_keyfile=settings.tls_key_file))
        self._thread = threading.Thread(target=self._server.run, name="llmrel-clickhouse-http", daemon=True)
        self.port = 0

    def start(self, timeout_s: float = 30.0) -> int:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError("cannot serve the ClickHouse HTTP interface")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        publish_endpoint(self._store, self._host, self.port)
        return self.port

    def stop(self, grace_s: float = 10.0) -> None:
        withdraw_endpoint(self._store)
        self._server.exit()
        self._thread.join(grace_s + 1)
