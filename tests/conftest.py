"""Shared fixtures. chDB allows one engine path per process, so every test in a pytest run
shares one embedded store directory and gets a database of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from llmrel.config import Settings, load_settings
from llmrel.store import connect, migrate


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def settings(chdb_dir: Path) -> Settings:
    """Settings on the session's embedded store, with a fresh database for this test.

    Retention is off so fixed-time fixtures are not expired by TTL on insert; requests are
    prepared in the receiving process (tests that need worker processes ask for them). Admission by
    queue delay is off, so a slow shared host cannot turn a test's exports into "retry later"
    (tests/receiver/test_backpressure.py sets it).
    """
    db = f"t_{uuid.uuid4().hex[:12]}"
    return load_settings(clickhouse_url=f"chdb://{chdb_dir}?database={db}",
                         grpc_endpoint="127.0.0.1:0", http_endpoint="127.0.0.1:0",
                         clickhouse_http_endpoint="127.0.0.1:0", log_format="console", traces_ttl_days=0,
                         calls_ttl_days=0, findings_ttl_days=0, ingest_workers=0, max_queue_delay_ms=0)


@pytest.fixture
def store(settings: Settings) -> Iterator[Client]:
    """A migrated clickhouse-connect client on the test's database."""
    client = connect(settings)
    migrate(client, settings)
    yield client
    client.command(f"DROP DATABASE IF EXISTS {client.database}")
    client.close()
