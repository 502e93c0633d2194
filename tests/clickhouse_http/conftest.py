"""`llmrel serve` (in process) with its ClickHouse HTTP interface on a free port, and clients of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from llmrel.cli.compose import build_receiver
from llmrel.config import Settings
from llmrel.receiver.server import Receiver
from llmrel.served_store import read_admin_secret

READER_PASSWORD = "reader-pw-for-tests"
WRITER_PASSWORD = "writer-pw-for-tests"


@pytest.fixture
def served(settings: Settings, store: Client) -> Iterator[Receiver]:
    """A running receiver with reader and writer users enabled (analyzers on), stopped before `store` drops
    the test's database."""
    receiver = build_receiver(type(settings).model_validate({
        **settings.model_dump(), "reader_password": READER_PASSWORD,
        "writer_password": WRITER_PASSWORD}))
    receiver.start()
    yield receiver
    receiver.stop(grace_s=2)


@pytest.fixture
def chclient(served: Receiver) -> Iterator[Callable[..., Client]]:
    """`chclient("reader" | "writer" | "admin", **kwargs)`: a clickhouse-connect HTTP client of the interface."""
    made: list[Client] = []
    passwords = {"reader": READER_PASSWORD, "writer": WRITER_PASSWORD,
                 "admin": read_admin_secret(served.settings)}

    def make(user: str, password: str | None = None, **kwargs: object) -> Client:
        client = clickhouse_connect.get_client(
            host="127.0.0.1", port=served.clickhouse_http_port, username=f"llmrel_{user}",
            password=passwords[user] if password is None else password, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
