"""clickhouse-connect over http:// against `llmrel serve`'s ClickHouse HTTP interface (real client, real engine)."""

from __future__ import annotations

import time

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from llmrel.store import connect
from tests.collector.exporter_rows import EXPORTER_INSERT_COLUMNS, chat_trace


def _spans():
    return (chat_trace(0, input_tokens=120, output_tokens=40)
            + chat_trace(1, input_tokens=3000, output_tokens=900, error_type="RateLimitError", duration_ms=2500))


def test_reader_queries_llmrel_tables_with_parameters(chclient, served):
    reader = chclient("reader")
    assert reader.server_version  # the connect sequence (version, system.settings, protocol probe) worked
    assert reader.query("SELECT count() FROM llm_calls").result_rows == [(0,)]
    assert reader.query("SELECT {n:UInt32} * 2 AS v, {s:String} AS s",
                        parameters={"n": 21, "s": "it's"}).result_rows == [(42, "it's")]
    tables = {r[0] for r in reader.query("SELECT name FROM system.tables WHERE database = currentDatabase()")
              .result_rows}
    assert {"llm_calls", "otel_traces", "llm_findings"} <= tables


def test_writer_insert_becomes_llm_calls_once(chclient, settings, served):
    writer = chclient("writer")
    rows = _spans()
    summary = writer.insert("otel_traces", rows, column_names=list(EXPORTER_INSERT_COLUMNS))
    assert summary.written_rows == len(rows)

    reader = chclient("reader")
    assert reader.query("SELECT count() FROM otel_traces").result_rows == [(len(rows),)]
    calls = reader.query("SELECT SpanId, InputTokens, OutputTokens, ErrorType FROM llm_calls FINAL "
                         "ORDER BY SpanId").result_rows
    assert calls == [("0000000000000002", 120, 40, ""), ("0000000000000004", 3000, 900, "RateLimitError")]
    direct = connect(settings)
    try:  # the interface answered after the commit: the store itself holds the rows, once
        assert direct.query("SELECT count() FROM llm_calls").result_rows == [(2,)]
    finally:
        direct.close()


def test_insert_in_another_format_and_compressed(chclient, served):
    """A TSV body, gzip-encoded, sent as clickhouse-connect's raw insert does."""
    writer = chclient("writer", compress="gzip")
    reader = chclient("reader")
    ts = time.time_ns()
    line = "\t".join([str(ts // 1000), "a" * 32, "b" * 16, "", "", "chat gpt-4o", "Client", "svc", "{}", "", "",
                      "{'gen_ai.operation.name':'chat','gen_ai.request.model':'gpt-4o','gen_ai.system':'openai',"
                      "'gen_ai.usage.input_tokens':'7'}", "1000", "Unset", "", "[]", "[]", "[]", "[]", "[]", "[]",
                      "[]"])
    writer.raw_insert("otel_traces", list(EXPORTER_INSERT_COLUMNS), insert_block=line + "\n",
                      fmt="TabSeparated", settings={"date_time_input_format": "best_effort"})
    assert reader.query("SELECT Model, InputTokens FROM llm_calls").result_rows == [("gpt-4o", 7)]


@pytest.mark.parametrize("sql", [
    "DROP TABLE llm_calls",
    "INSERT INTO llm_findings SELECT * FROM llm_findings",
    "ALTER TABLE llm_calls DELETE WHERE 1",
    "SET max_memory_usage = 0",
    "SELECT * FROM system.query_log",
    "SELECT * FROM system.processes",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT file('/etc/hostname')",
    "SELECT * FROM url('http://127.0.0.1:1/', 'CSV', 'a String')",
    "SELECT * FROM remote('127.0.0.1', system.one)",
    "SELECT 1 INTO OUTFILE '/tmp/llmrel-should-not-exist'",
    "SELECT count() FROM llm_calls SETTINGS max_memory_usage = 100000000000",
])
def test_reader_refusals(chclient, sql):
    reader = chclient("reader")
    with pytest.raises(DatabaseError) as refused:
        reader.command(sql)
    assert "DB::Exception" in str(refused.value)


def test_reader_cannot_read_other_databases(chclient, store):
    store.command("CREATE DATABASE IF NOT EXISTS chhttp_other")
    store.command("CREATE TABLE IF NOT EXISTS chhttp_other.secret (s String) ENGINE = MergeTree ORDER BY s")
    reader = chclient("reader")
    with pytest.raises(DatabaseError, match="ACCESS_DENIED"):
        reader.query("SELECT * FROM chhttp_other.secret")
    with pytest.raises(DatabaseError, match="ACCESS_DENIED"):
        chclient("reader", database="chhttp_other").query("SELECT 1")


def test_writer_may_only_insert_spans(chclient):
    writer = chclient("writer")
    with pytest.raises(DatabaseError, match="ACCESS_DENIED"):
        writer.query("SELECT count() FROM llm_calls")
    with pytest.raises(DatabaseError, match="ACCESS_DENIED"):
        writer.raw_insert("llm_findings", ["RuleId"], insert_block="x\n", fmt="TabSeparated")


def test_wrong_password_and_unknown_user(chclient):
    with pytest.raises(DatabaseError, match="516"):
        chclient("reader", password="wrong")
    with pytest.raises(DatabaseError, match="516"):
        chclient("admin", password="")


def test_engine_errors_come_back_as_clickhouse_errors(chclient):
    reader = chclient("reader")
    with pytest.raises(DatabaseError, match="UNKNOWN_TABLE"):
        reader.query("SELECT * FROM no_such_table")
    with pytest.raises(DatabaseError, match="SYNTAX_ERROR"):
        reader.query("SELEC 1")


def test_admin_runs_llmrel_queries_and_arrow(chclient, served):
    admin = chclient("admin", database=served.settings.clickhouse_url.rpartition("=")[2])
    admin.insert("otel_traces", _spans(), column_names=list(EXPORTER_INSERT_COLUMNS))
    table = admin.query_arrow("SELECT Model, sum(InputTokens) AS tokens FROM llm_calls FINAL GROUP BY Model")
    assert table.column("tokens").to_pylist() == [3120]
    assert admin.query_np("SELECT InputTokens FROM llm_calls FINAL ORDER BY InputTokens").tolist() == [[120], [3000]]
