"""The ASGI app: ClickHouse's HTTP interface (`/`, `/ping`, `/replicas_status`) over the embedded store.

Per request: authenticate, read the query (`query=` and/or the body, decoding `Content-Encoding`
and `decompress=1` blocks as it streams), check it against the user's policy, run it on the engine
in a thread, answer with ClickHouse's headers (compressed per `compress=1` / `Accept-Encoding`).
An `INSERT ... FORMAT x` streams its data to a temporary file, never wholly into memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmrel.receiver.clickhouse_http import compression, inserts, native, policy
from llmrel.receiver.clickhouse_http.engine import Engine, Result
from llmrel.receiver.clickhouse_http.errors import ClickHouseError
from llmrel.receiver.clickhouse_http.query_settings import Limits, query_settings
from llmrel.receiver.clickhouse_http.sqltext import InsertHead, insert_head, output_format, single_statement
from llmrel.receiver.clickhouse_http.users import Users

log = structlog.get_logger(__name__)

_HEAD_LIMIT = 1 << 20  # a query (without insert data) may be at most this long, like http_max_uri_size
_INSERT_PROBE = 64 * 1024  # an INSERT statement at the start of the body fits in this
_CONTENT_TYPES = {"TabSeparated": "text/tab-separated-values; charset=UTF-8", "TSV": "text/tab-separated-values",
                  "CSV": "text/csv; charset=UTF-8", "JSON": "application/json; charset=UTF-8"}


@dataclass
class Interface:
    """What the app serves: the engine, users, limits, llmrel's database and the span pipeline."""

    engine: Engine
    users: Users
    limits: Limits
    database: str
    sink: inserts.SpanSink | None
    max_body_bytes: int
    ready: object = None  # callable returning a problem string (store unavailable) or None


def build_app(interface: Interface) -> Starlette:
    async def ping(request: Request) -> Response:
        return Response(b"Ok.\n", media_type="text/plain; charset=UTF-8", headers=_common(interface))

    async def replicas_status(request: Request) -> Response:
        return Response(b"Ok.\n", media_type="text/plain; charset=UTF-8", headers=_common(interface))

    async def root(request: Request) -> Response:
        if request.method == "GET" and not request.query_params:
            return await ping(request)
        try:
            return await _handle(interface, request)
        except ClickHouseError as exc:
            return _error(interface, exc)
        except Exception as exc:  # logged; answered as ClickHouse answers an internal error
            log.exception("clickhouse_http_failed")
            return _error(interface, ClickHouseError(1001, f"internal error: {type(exc).__name__}"))

    return Starlette(routes=[Route("/ping", ping, methods=["GET", "HEAD"]),
                             Route("/replicas_status", replicas_status, methods=["GET"]),
                             Route("/", root, methods=["GET", "POST"])])


def _common(interface: Interface) -> dict[str, str]:
    return {"X-ClickHouse-Server-Display-Name": interface.engine.display_name}


def _error(interface: Interface, exc: ClickHouseError) -> Response:
    headers = {**_common(interface), "X-ClickHouse-Exception-Code": str(exc.code)}
    if exc.code == 194:
        headers["WWW-Authenticate"] = 'Basic realm="ClickHouse server HTTP API"'
    return Response(exc.body(interface.engine.version), status_code=exc.status,
                    media_type="text/plain; charset=UTF-8", headers=headers)


async def _decoded_body(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The request body, decoded (Content-Encoding, then `decompress=1` blocks), at most `limit` bytes."""
    http = compression.http_decoder(request.headers.get("content-encoding"))
    blocks = compression.BlockDecoder() if request.query_params.get("decompress") == "1" else None
    total = 0
    async for chunk in request.stream():
        if not chunk:
            continue
        if http is not None:
            chunk = http(chunk)
        if blocks is not None:
            chunk = blocks(chunk)
        total += len(chunk)
        if total > limit:
            raise ClickHouseError(229, f"The request body exceeds the limit of {limit} bytes")
        if chunk:
            yield chunk
    if blocks is not None:
        blocks.finish()


async def _handle(interface: Interface, request: Request) -> Response:
    params = request.query_params
    headers = request.headers
    user = interface.users.authenticate(headers, params)
    if params.get("session_check") == "1" or params.get("close_session") == "1":
        raise ClickHouseError(48, "Sessions are not supported: every request runs on its own; "
                                  "pass settings as URL parameters")
    if params.get("role"):
        raise ClickHouseError(48, "Roles are not supported")
    database = headers.get("x-clickhouse-database") or params.get("database") or interface.database
    if user.role != policy.ADMIN and database not in (interface.database, "default"):
        raise ClickHouseError(497, f"{user.name}: not enough privileges to use database {database}")
    if database == "default" and user.role != policy.ADMIN:
        database = interface.database  # clients that send database=default still see llmrel's tables
    default_format = headers.get("x-clickhouse-format") or params.get("default_format") or "TabSeparated"
    engine_settings, transport = query_settings(params, interface.engine.known_settings, interface.limits)
    query_id = params.get("query_id") or headers.get("x-clickhouse-query-id") or str(uuid.uuid4())
    query_param = params.get("query", "")
    statement_args = {k[6:]: v for k, v in params.items() if k.startswith("param_")}

    slot = interface.engine.slot()
    with slot:
        body = _decoded_body(request, interface.max_body_bytes)
        head = insert_head(query_param)
        result: Result
        if head is not None and not query_param[head.data_offset:].strip():
            fmt = head.format
            result = await _insert(interface, user.role, head, b"", body, database, engine_settings)
        else:
            text, head, data, rest = await _read_statement(query_param, body)
            if head is not None:
                fmt = head.format
                result = await _insert(interface, user.role, head, data, rest, database, engine_settings)
            else:
                sql = single_statement(text)
                if not sql.strip():
                    raise ClickHouseError(62, "Empty query")
                if request.method == "GET" and user.role == policy.ADMIN:
                    engine_settings.setdefault("readonly", "2")
                fmt = output_format(sql, default_format)
                if fmt == "Native" and native.HELLO.match(sql):
                    engine = interface.engine
                    result = Result(native.hello_block(engine.display_name, engine.version, engine.timezone,
                                                       _int(params.get("client_protocol_version"))))
                else:
                    role = user.role
                    result = await asyncio.to_thread(
                        interface.engine.run, sql, default_format, database=database, settings=engine_settings,
                        params=statement_args, readonly=role != policy.ADMIN,
                        check=lambda nodes: policy.check(role, nodes, interface.database))
    return _respond(interface, request, result, fmt, query_id, transport)


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


async def _read_statement(query_param: str, body: AsyncIterator[bytes]
                          ) -> tuple[str, InsertHead | None, bytes, AsyncIterator[bytes]]:
    """(statement text, the INSERT head when data follows it, the data read so far, the rest of the body).

    ClickHouse runs `query` + newline + body; a statement that is not an INSERT with data must fit
    in `_HEAD_LIMIT`.
    """
    buffered = bytearray((query_param + "\n").encode() if query_param else b"")
    async for chunk in body:
        buffered += chunk
        if len(buffered) >= _INSERT_PROBE:
            head = insert_head(buffered[:_INSERT_PROBE].decode("latin-1"))
            if head is not None:
                return "", head, bytes(buffered[head.data_offset:]), body
        if len(buffered) > _HEAD_LIMIT:
            raise ClickHouseError(229, f"Query is too large ({len(buffered)} bytes). max_query_size = {_HEAD_LIMIT}")
    raw = bytes(buffered)
    head = insert_head(raw[:_INSERT_PROBE].decode("latin-1"))
    if head is not None and raw[head.data_offset:].strip():
        return "", head, raw[head.data_offset:], _empty()
    try:
        return raw.decode(), None, b"", _empty()
    except UnicodeDecodeError:
        raise ClickHouseError(62, "Syntax error: the query is not valid UTF-8") from None


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""


async def _insert(interface: Interface, role: str, head: InsertHead, first: bytes, rest: AsyncIterator[bytes],
                  database: str, settings: dict[str, str]) -> Result:
    fd, name = tempfile.mkstemp(prefix="llmrel-chhttp-", suffix=".data")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(first)
            async for chunk in rest:
                out.write(chunk)
        if interface.ready is not None and (problem := interface.ready()) is not None:
            raise ClickHouseError(439, f"The store is unavailable: {problem}; nothing was stored, retry")
        return await asyncio.to_thread(inserts.insert, interface.engine, head, path, role=role, database=database,
                                       llmrel_database=interface.database, settings=settings, sink=interface.sink)
    finally:
        path.unlink(missing_ok=True)


def _respond(interface: Interface, request: Request, result: Result, fmt: str, query_id: str,
             transport: dict[str, str]) -> Response:
    body = result.body
    headers = {**_common(interface), "X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Format": fmt,
               "X-ClickHouse-Timezone": interface.engine.timezone,
               "X-ClickHouse-Summary": json.dumps(result.summary(), separators=(",", ":"))}
    if request.query_params.get("compress") == "1":
        body = compression.compress_blocks(body)
    elif transport.get("enable_http_compression") == "1" and body:
        encoding = compression.response_encoding(request.headers.get("accept-encoding"))
        if encoding is not None:
            body = compression.http_encode(body, encoding)
            headers["Content-Encoding"] = encoding
    media = _CONTENT_TYPES.get(fmt, "application/octet-stream" if fmt.startswith(("Native", "RowBinary", "Arrow",
                                                                                   "Parquet")) else "text/plain")
    return Response(body, media_type=media, headers=headers)
