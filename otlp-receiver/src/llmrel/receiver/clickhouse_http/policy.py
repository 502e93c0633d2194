"""What each user may run, judged on the engine's own parse of the statement (`EXPLAIN AST`).

Readers (dashboards) run SELECT / SHOW TABLES / DESCRIBE / EXISTS / SHOW CREATE over llmrel's
database and a few harmless system tables; writers (a collector) may in addition describe and
insert into `otel_traces`. Nobody writes files from a query (`INTO OUTFILE`), and only the admin
reaches other databases, table functions beyond generators, or file-reading functions. The engine
enforces `readonly` underneath, so a statement this misjudges still cannot write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmrel.receiver.clickhouse_http.errors import ClickHouseError

READER, WRITER, ADMIN = "reader", "writer", "admin"

_READ_KINDS = ("SelectWithUnionQuery", "SelectIntersectExceptQuery", "DescribeQuery", "ShowTables",
               "ExistsTableQuery", "ShowCreateTableQuery", "ShowColumns")
_SYSTEM_TABLES = frozenset({
    "one", "numbers", "numbers_mt", "zeros", "settings", "tables", "columns", "databases", "functions",
    "table_functions", "data_type_families", "formats", "time_zones", "build_options", "collations",
    "data_skipping_indices", "aggregate_function_combinators", "keywords",
})
_TABLE_FUNCTIONS = frozenset({"numbers", "numbers_mt", "zeros", "zeros_mt", "values", "generate_series",
                              "generateSeries", "null"})
_DENIED_FUNCTIONS = re.compile(r"^(file|filesystem\w*|joinGet\w*|dictGet\w*|dictHas|getServerSetting|"
                               r"getServerPort|getClientHTTPHeader|catboostEvaluate|evalMLMethod)$", re.I)
_LINE = re.compile(r"^( *)(\S+)(?: (.*?))?(?: \(children \d+\))?$")


@dataclass(frozen=True)
class Node:
    depth: int
    kind: str
    arg: str


def parse_ast(text: str) -> list[Node]:
    nodes = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            arg = re.sub(r" \(alias [^)]*\)$", "", (match.group(3) or "").strip())
            nodes.append(Node(len(match.group(1)), match.group(2), arg))
    return nodes


def _denied(message: str) -> ClickHouseError:
    return ClickHouseError(497, message)


def statement_kind(nodes: list[Node]) -> str:
    return nodes[0].kind if nodes else ""


def check(role: str, nodes: list[Node], database: str) -> None:
    """Raise ACCESS_DENIED unless `role` may run the statement parsed as `nodes` in `database`."""
    if not nodes:
        raise ClickHouseError(62, "Syntax error: empty query")
    kind = nodes[0].kind
    if kind in ("SelectWithUnionQuery", "SelectIntersectExceptQuery") and any(
            n.depth == 1 and n.kind == "Literal" for n in nodes):
        raise _denied("INTO OUTFILE is not allowed over the HTTP interface")
    if role == ADMIN:
        return
    if role == WRITER and kind == "InsertQuery":
        return  # the insert route itself allows otel_traces only
    if kind not in _READ_KINDS:
        raise _denied(f"{role_name(role)}: not enough privileges for {kind or 'this statement'} (read-only user)")
    for index, node in enumerate(nodes):
        if node.kind == "TableIdentifier":
            _check_table(role, node.arg, database)
        elif node.kind == "Function":
            name = node.arg.split(" ")[0]
            parent = _parent(nodes, index)
            if parent is not None and parent.kind == "TableExpression" and name not in _TABLE_FUNCTIONS:
                raise _denied(f"{role_name(role)}: table function {name}() is not allowed")
            if _DENIED_FUNCTIONS.match(name):
                raise _denied(f"{role_name(role)}: function {name}() is not allowed")
        elif node.kind in ("ShowCreateTableQuery",) and node.arg:
            names = node.arg.split()
            if len(names) == 2:
                _check_table(role, ".".join(names), database)
    if role == WRITER and _reads_tables(nodes):
        raise _denied("writer: may only describe and insert into otel_traces")


def _reads_tables(nodes: list[Node]) -> bool:
    for node in nodes:
        if node.kind == "TableIdentifier":
            name = node.arg.split(".")[-1]
            if node.arg.split(".")[0] == "system" or (node.arg.count(".") <= 1 and name == "otel_traces"
                                                      and nodes[0].kind == "DescribeQuery"):
                continue
            return True
    return False


def _parent(nodes: list[Node], index: int) -> Node | None:
    depth = nodes[index].depth
    for node in reversed(nodes[:index]):
        if node.depth < depth:
            return node
    return None


def _check_table(role: str, name: str, database: str) -> None:
    parts = name.split(".")
    if len(parts) == 1:
        return  # the current database (always llmrel's for readers) or a CTE
    if len(parts) != 2:
        raise _denied(f"{role_name(role)}: table name {name!r} is ambiguous")
    db, table = parts
    if db == database:
        return
    if db == "system" and table in _SYSTEM_TABLES:
        return
    raise _denied(f"{role_name(role)}: not enough privileges to read {name}")


def role_name(role: str) -> str:
    return {READER: "llmrel_reader", WRITER: "llmrel_writer", ADMIN: "llmrel_admin"}.get(role, role)
