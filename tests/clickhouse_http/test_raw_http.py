"""Raw requests, as curl or a hand-written client sends them: headers, errors, auth, compression, hostile input."""

from __future__ import annotations

import gzip
import json
import struct
import threading
import time

import httpx
import lz4.block
import pytest
from backports import zstd
from clickhouse_cityhash.cityhash import CityHash128

from llmrel.cli.compose import build_receiver
from llmrel.served_store import read_admin_secret
from tests.clickhouse_http.conftest import READER_PASSWORD, WRITER_PASSWORD

READER = ("llmrel_reader", READER_PASSWORD)


@pytest.fixture
def http(served):
    with httpx.Client(base_url=f"http://127.0.0.1:{served.clickhouse_http_port}", timeout=30) as client:
        yield client


def _code(response: httpx.Response) -> int:
    return int(response.headers["X-ClickHouse-Exception-Code"])


def test_ping_and_root_are_open(http):
    assert http.get("/ping").text == "Ok.\n"
    assert http.get("/").text == "Ok.\n"
    assert http.get("/replicas_status").status_code == 200


def test_query_needs_credentials(http):
    response = http.get("/", params={"query": "SELECT 1"})
    assert response.status_code == 401 and _code(response) == 194
    assert response.text.startswith("Code: 194. DB::Exception: ")
    assert "(REQUIRED_PASSWORD)" in response.text
    wrong = http.get("/", params={"query": "SELECT 1"}, auth=("llmrel_reader", "nope"))
    assert wrong.status_code == 403 and _code(wrong) == 516
    unknown = http.get("/", params={"query": "SELECT 1"}, auth=("default", ""))
    assert unknown.status_code == 403 and _code(unknown) == 516


def test_header_auth_and_mixing_refused(http):
    headers = {"X-ClickHouse-User": "llmrel_reader", "X-ClickHouse-Key": READER_PASSWORD}
    assert http.post("/", content="SELECT 1", headers=headers).text == "1\n"
    mixed = http.post("/", content="SELECT 1", headers=headers, auth=READER)
    assert mixed.status_code == 403 and _code(mixed) == 516


def test_query_param_and_body_are_joined_by_a_newline(http):
    assert http.post("/", params={"query": "SELECT 40 +"}, content="2", auth=READER).text == "42\n"


def test_response_headers(http):
    response = http.post("/?default_format=JSONCompact&query_id=q-123", content="SELECT 1 AS one", auth=READER)
    assert response.status_code == 200
    assert response.json()["data"] == [[1]]
    assert response.headers["X-ClickHouse-Query-Id"] == "q-123"
    assert response.headers["X-ClickHouse-Format"] == "JSONCompact"
    assert response.headers["X-ClickHouse-Timezone"]
    assert response.headers["X-ClickHouse-Server-Display-Name"]
    summary = json.loads(response.headers["X-ClickHouse-Summary"])
    assert all(isinstance(v, str) for v in summary.values()) and "read_rows" in summary
    by_header = http.post("/", content="SELECT 1 AS one", auth=READER, headers={"X-ClickHouse-Format": "CSV"})
    assert by_header.text == "1\n" and by_header.headers["X-ClickHouse-Format"] == "CSV"
    by_clause = http.post("/?default_format=CSV", content="SELECT 1 AS one FORMAT JSONEachRow", auth=READER)
    assert by_clause.text == '{"one":1}\n' and by_clause.headers["X-ClickHouse-Format"] == "JSONEachRow"


def test_settings_allow_list(http):
    unknown = http.post("/?no_such_setting=1", content="SELECT 1", auth=READER)
    assert unknown.status_code == 404 and _code(unknown) == 115 and "(UNKNOWN_SETTING)" in unknown.text
    dangerous = http.post("/?allow_ddl=1", content="SELECT 1", auth=READER)
    assert _code(dangerous) == 452
    limited = http.post("/?max_result_rows=1", content="SELECT number FROM numbers(10)", auth=READER)
    assert _code(limited) == 396  # TOO_MANY_ROWS_OR_BYTES: the allowed setting reached the engine


def test_session_features_refused_clearly(http):
    response = http.post("/?session_id=abc&session_check=1", content="SELECT 1", auth=READER)
    assert response.status_code == 501 and _code(response) == 48 and "Sessions are not supported" in response.text
    assert http.post("/?session_id=abc", content="SELECT 1", auth=READER).text == "1\n"  # stateless, accepted


def test_parameters_are_values_not_sql(http):
    hostile = "x' OR 1=1; DROP TABLE llm_calls --"
    response = http.post("/", params={"param_s": hostile}, content="SELECT {s:String}", auth=READER)
    assert response.text == hostile.replace("'", "\\'") + "\n"
    bad = http.post("/", params={"param_n": "not a number"}, content="SELECT {n:UInt8}", auth=READER)
    assert bad.status_code in (400, 500) and "DB::Exception" in bad.text


def test_multi_statements_and_outfile_refused(http):
    assert _code(http.post("/", content="SELECT 1; DROP TABLE llm_calls", auth=READER)) == 62
    assert http.post("/", content="SELECT ';' AS x; -- trailing comment", auth=READER).text == ";\n"
    admin_outfile = http.post("/", content="SELECT 1 INTO OUTFILE '/tmp/llmrel-x'", auth=READER)
    assert _code(admin_outfile) == 497


def test_wrong_format_name(http):
    response = http.post("/", content="SELECT 1 FORMAT NoSuchFormat", auth=READER)
    assert response.status_code == 404 and _code(response) == 73


def test_gzip_response_only_when_enabled(http):
    plain = http.post("/", content="SELECT 1", auth=READER, headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in plain.headers and plain.text == "1\n"
    packed = http.post("/?enable_http_compression=1", content="SELECT 1", auth=READER,
                       headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip" and packed.text == "1\n"  # httpx decodes it


def test_compressed_request_bodies(http):
    for encoding, body in (("gzip", gzip.compress(b"SELECT 7")), ("zstd", zstd.compress(b"SELECT 7"))):
        response = http.post("/", content=body, auth=READER, headers={"Content-Encoding": encoding})
        assert response.text == "7\n", encoding
    assert _code(http.post("/", content=b"x", auth=READER, headers={"Content-Encoding": "br"})) == 48


def _checksum(block: bytes) -> bytes:
    """The 16 checksum bytes as clickhouse-go (ch-go) verifies them: the package's 128-bit integer, upper
    64 bits first, each half little-endian (the collector test checks it against the real driver)."""
    value = CityHash128(block)
    return struct.pack("<QQ", value >> 64, value & (2**64 - 1))


def _blocks(data: bytes) -> bytes:
    """ClickHouse's compressed block format, written independently of the server's code."""
    payload = lz4.block.compress(data, store_size=False)
    header = struct.pack("<BII", 0x82, len(payload) + 9, len(data))
    return _checksum(header + payload) + header + payload


def test_native_compressed_blocks_both_ways(http):
    response = http.post("/?compress=1", content="SELECT 'abc' AS s", auth=READER)
    raw = response.content
    method, size, raw_size = struct.unpack_from("<BII", raw, 16)
    assert method == 0x82 and _checksum(raw[16:16 + size]) == raw[:16]
    assert lz4.block.decompress(raw[25:16 + size], uncompressed_size=raw_size) == b"abc\n"
    query = http.post("/?decompress=1", content=_blocks(b"SELECT 5"), auth=READER)
    assert query.text == "5\n"
    corrupt = bytearray(_blocks(b"SELECT 5"))
    corrupt[-1] ^= 0xFF
    assert _code(http.post("/?decompress=1", content=bytes(corrupt), auth=READER)) == 40


def test_writes_refused_on_get_and_for_the_reader(http, served):
    admin = ("llmrel_admin", read_admin_secret(served.settings))
    response = http.get("/", params={"query": "CREATE TABLE t_get (a UInt8) ENGINE = Memory"}, auth=admin)
    assert _code(response) == 164  # READONLY, as ClickHouse answers a write over GET
    assert _code(http.post("/", content="CREATE TABLE t2 (a UInt8) ENGINE = Memory", auth=READER)) == 497


def test_truncated_native_insert_stores_nothing(http):
    writer = ("llmrel_writer", WRITER_PASSWORD)
    body = b"\x01\x05\x07TraceId\x06String\x03abc"  # claims 5 rows, holds part of one
    response = http.post("/", params={"query": "INSERT INTO otel_traces (TraceId) FORMAT Native"}, content=body,
                         auth=writer)
    assert response.status_code >= 400 and "DB::Exception" in response.text
    assert http.post("/", content="SELECT count() FROM otel_traces", auth=READER).text == "0\n"


def test_a_1_gib_body_is_refused_as_it_streams(settings):
    """A 1 GiB body is refused once past the insert limit (413), never buffered whole in memory."""
    receiver = build_receiver(type(settings).model_validate({
        **settings.model_dump(), "writer_password": WRITER_PASSWORD,
        "clickhouse_http_max_body_mib": 4, "analyzers_enabled": False}))
    receiver.start()
    sent = 0

    def chunks():
        nonlocal sent
        while sent < 1 << 30:
            sent += 1 << 20
            yield b"\n" * (1 << 20)

    try:
        with httpx.Client(timeout=30) as client:
            response = client.post(f"http://127.0.0.1:{receiver.clickhouse_http_port}/",
                                   params={"query": "INSERT INTO otel_traces FORMAT TabSeparated"}, content=chunks(),
                                   auth=("llmrel_writer", WRITER_PASSWORD))
    finally:
        receiver.stop(grace_s=2)
    assert response.status_code == 413 and _code(response) == 229
    assert sent == 1 << 30  # the whole GiB went out (httpx sends the body before reading the answer)


def test_a_query_that_runs_forever_is_stopped_at_the_limit(http):
    response = http.post("/?max_execution_time=1", content="SELECT count() FROM system.numbers", auth=READER)
    assert _code(response) == 159  # TIMEOUT_EXCEEDED


def test_queries_over_the_concurrency_cap_are_refused_not_queued(settings):
    receiver = build_receiver(type(settings).model_validate({
        **settings.model_dump(), "reader_password": READER_PASSWORD,
        "clickhouse_http_max_concurrent": 1,
        "analyzers_enabled": False}))
    receiver.start()
    url = f"http://127.0.0.1:{receiver.clickhouse_http_port}/"
    answers: list[httpx.Response] = []
    seen: list[int] = []
    try:
        for _ in range(20):  # until the slow query holds the only slot (not refused itself by a probe)
            answers.clear()
            slow = threading.Thread(target=lambda: answers.append(
                httpx.post(url, content="SELECT sleep(2)", auth=READER, timeout=60)))
            slow.start()
            slow.join(0.3)
            if slow.is_alive():
                break
        with httpx.Client(timeout=30) as client:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # until the slow query holds the only slot
                refused = client.post(url, content="SELECT 1", auth=READER)
                seen.append(refused.status_code)
                if "X-ClickHouse-Exception-Code" in refused.headers or not slow.is_alive():
                    break
        slow.join()
    finally:
        receiver.stop(grace_s=2)
    assert "X-ClickHouse-Exception-Code" in refused.headers, (seen, refused.text)
    assert _code(refused) == 202 and "(TOO_MANY_SIMULTANEOUS_QUERIES)" in refused.text
    assert answers[0].status_code == 200
