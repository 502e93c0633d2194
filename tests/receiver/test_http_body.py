"""OTLP/HTTP bodies: memory is reserved as bytes arrive, and a body that stalls is cut off.

The slow uploads are real sockets speaking HTTP/1.1 chunked transfer (no Content-Length), as a
stalled client or a slow link delivers them.
"""

from __future__ import annotations

import gzip
import socket
import time

import httpx
import pytest

from tests.otlp_builders import chat_span, request

PB = {"Content-Type": "application/x-protobuf"}


class SlowUpload:
    """A chunked POST to /v1/traces that sends `first` bytes of body, then nothing."""

    def __init__(self, port: int, first: int = 1000) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n" + f"{first:x}\r\n".encode() + b"\0" * first + b"\r\n")

    def response(self) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def slow_uploads():
    opened: list[SlowUpload] = []

    def make(port: int, count: int) -> list[SlowUpload]:
        opened.extend(SlowUpload(port) for _ in range(count))
        return opened[-count:]

    yield make
    for upload in opened:
        upload.close()


def inflight(receiver) -> float:
    return receiver.metrics.inflight_bytes._value.get()


def wait_for(condition, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_uploads_without_content_length_hold_only_what_they_sent(make_receiver, query, slow_uploads):
    receiver = make_receiver(recv_timeout_s=30)  # 64 MiB bodies, 256 MiB in flight: four would have filled it
    slow_uploads(receiver.http_port, 8)
    assert wait_for(lambda: inflight(receiver) == 8 * 1000), inflight(receiver)
    response = httpx.post(f"http://127.0.0.1:{receiver.http_port}/v1/traces",
                          content=request([chat_span(1)]).SerializeToString(), headers=PB, timeout=10)
    assert response.status_code == 200
    assert query("SELECT count() FROM otel_traces") == [(1,)]


def test_a_body_that_stalls_is_cut_off_and_its_memory_released(make_receiver, slow_uploads):
    receiver = make_receiver(recv_timeout_s=1)
    (upload,) = slow_uploads(receiver.http_port, 1)
    started = time.monotonic()
    head = upload.response()
    assert head.startswith(b"HTTP/1.1 408 "), head[:200]
    assert b"connection: close" in head.lower()
    assert 0.9 < time.monotonic() - started < 5
    assert wait_for(lambda: inflight(receiver) == 0)
    assert receiver.metrics.requests.labels("http", "receive_timeout")._value.get() == 1


def test_a_gzip_body_counts_its_inflated_size_against_the_bound(make_receiver):
    receiver = make_receiver(max_recv_mib=8, max_inflight_mib=8)
    bomb = gzip.compress(b"\0" * (6 << 20))  # 6 KiB that inflate to 6 MiB, under the body limit
    held = 4 << 20
    assert receiver._ingestor.reserve(held)  # half the bound is taken by other requests
    try:
        response = httpx.post(f"http://127.0.0.1:{receiver.http_port}/v1/traces", content=bomb,
                              headers={**PB, "Content-Encoding": "gzip"}, timeout=10)
        assert response.status_code == 429
    finally:
        receiver._ingestor.release(held)
    assert wait_for(lambda: inflight(receiver) == 0)
    body = gzip.compress(request([chat_span(1)]).SerializeToString())
    response = httpx.post(f"http://127.0.0.1:{receiver.http_port}/v1/traces", content=body,
                          headers={**PB, "Content-Encoding": "gzip"}, timeout=10)
    assert response.status_code == 200
