"""Statement text checks the interface makes before the engine runs anything: the engine (chDB) runs
every statement of a multi-statement text, so a `;` the lexer misses would run unchecked."""

from __future__ import annotations

import pytest

from llmrel.receiver.clickhouse_http.errors import ClickHouseError
from llmrel.receiver.clickhouse_http.sqltext import insert_head, output_format, single_statement


@pytest.mark.parametrize("sql", [
    "SELECT 1; SELECT 2",
    "SELECT 1 -- x\n; SELECT 2",
    "SELECT $$a;b$$; SELECT 2",
    "SELECT 'a\\';' ; SELECT 2",
    "SELECT `a;` FROM (SELECT 1 AS `a;`); SELECT 2",
    "SELECT 1 /* ; */; DROP TABLE t",
    "SELECT 1;;",
])
def test_multi_statements_are_found_past_strings_comments_and_quoted_names(sql):
    with pytest.raises(ClickHouseError) as refused:
        single_statement(sql)
    assert refused.value.code == 62


@pytest.mark.parametrize(("sql", "statement"), [
    ("SELECT ';' ", "SELECT ';' "),
    ("SELECT 1;", "SELECT 1"),
    ("SELECT 1; -- done\n", "SELECT 1"),
    ("SELECT 1 # ; SELECT 2", "SELECT 1 # ; SELECT 2"),  # '#' starts a comment in ClickHouse too
    ("SELECT 'it''s'", "SELECT 'it''s'"),
])
def test_one_statement_passes(sql, statement):
    assert single_statement(sql) == statement


def test_unterminated_quote_is_a_syntax_error():
    with pytest.raises(ClickHouseError):
        single_statement("SELECT 'a; DROP TABLE t")


def test_insert_head_and_data_offset():
    text = 'INSERT INTO "db"."otel_traces" (Timestamp,\n  `Events.Name`) FORMAT Native\n\x01\x02'
    head = insert_head(text)
    assert head is not None and head.format == "Native" and text[head.data_offset:] == "\x01\x02"
    assert head.table_parts() == ("db", "otel_traces")
    assert head.column_names() == ["Timestamp", "Events.Name"]
    assert insert_head("INSERT INTO t VALUES (1)") is None
    assert output_format("SELECT 1 FORMAT JSONEachRow", "TabSeparated") == "JSONEachRow"
    assert output_format("SELECT 'FORMAT CSV' AS x", "TabSeparated") == "TabSeparated"
