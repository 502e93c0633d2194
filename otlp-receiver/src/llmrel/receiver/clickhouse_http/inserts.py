"""Inserts into `otel_traces` go through the receiver's pipeline, like spans received over OTLP.

The body (any input format) is parsed by the engine into a private staging table, read back as
`SpanRecord`s, then prepared (content policy, normalization, pricing) and group-committed by the
same writer, so each span becomes its `llm_calls` row exactly once and the insert is answered only
once stored. Inserts into any other table (admin only) go to the engine directly.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

from llmrel.model import SpanRecord
from llmrel.receiver.clickhouse_http.engine import Engine, Result, quote_identifier, quote_string
from llmrel.receiver.clickhouse_http.errors import ClickHouseError
from llmrel.receiver.clickhouse_http.policy import ADMIN, WRITER, role_name
from llmrel.receiver.clickhouse_http.sqltext import InsertHead
from llmrel.span_rows import SELECT_SPANS, span_reader

SPANS_TABLE = "otel_traces"
# (stored spans, rejected spans) or a ClickHouseError describing why nothing was stored
SpanSink = Callable[[list[SpanRecord]], int]


def insert(engine: Engine, head: InsertHead, data: Path, *, role: str, database: str, llmrel_database: str,
           settings: dict[str, str], sink: SpanSink | None) -> Result:
    """Store the rows of `data` (in `head.format`) into `head.table`."""
    db, table = head.table_parts()
    db = db or database
    if db == llmrel_database and table == SPANS_TABLE and sink is not None:
        if role not in (WRITER, ADMIN):
            raise ClickHouseError(497, f"{role_name(role)}: not enough privileges to insert into {SPANS_TABLE}")
        return _insert_spans(engine, head, data, llmrel_database, settings, sink)
    if role != ADMIN:
        raise ClickHouseError(497, f"{role_name(role)}: not enough privileges to insert into {db}.{table}")
    columns = f" {head.columns}" if head.columns else ""
    sql = (f"INSERT INTO {quote_identifier(db)}.{quote_identifier(table)}{columns} "
           f"FROM INFILE {quote_string(str(data))} FORMAT {head.format}")
    return engine.run(sql, "TabSeparated", database=database, settings=settings, params={}, readonly=False)


def _insert_spans(engine: Engine, head: InsertHead, data: Path, database: str, settings: dict[str, str],
                  sink: SpanSink) -> Result:
    staging = f"{quote_identifier(database)}.{quote_identifier('llmrel_http_insert_' + uuid.uuid4().hex)}"
    run = engine.run
    run(f"CREATE TABLE {staging} ENGINE = Memory AS SELECT * FROM {quote_identifier(database)}.{SPANS_TABLE} "
        "WHERE 0", "TabSeparated", database=database, settings={}, params={}, readonly=False)
    try:
        columns = f" {head.columns}" if head.columns else ""
        parsed = run(f"INSERT INTO {staging}{columns} FROM INFILE {quote_string(str(data))} FORMAT {head.format}",
                     "TabSeparated", database=database, settings=settings, params={}, readonly=False)
        rows = run(f"SELECT {SELECT_SPANS} FROM {staging}", "JSONCompactEachRowWithNames", database=database,
                   settings={"output_format_json_quote_64bit_integers": "0",
                             "output_format_json_validate_utf8": "1"}, params={}, readonly=True)
        lines = [line for line in rows.body.splitlines() if line]
        read = span_reader(json.loads(lines[0])) if lines else None
        spans = [read(json.loads(line)) for line in lines[1:]] if read else []
        stored = sink(spans)
        return Result(b"", parsed.read_rows, parsed.read_bytes, stored, parsed.read_bytes, parsed.elapsed_ns)
    finally:
        run(f"DROP TABLE IF EXISTS {staging}", "TabSeparated", database=database, settings={}, params={},
            readonly=False)
