"""Cluster variant of the schema: every table is sharded, replicated storage behind a Distributed table.

On a ClickHouse cluster each `CREATE TABLE db.name ... ENGINE = Replicated*MergeTree` of
`schemas/` becomes the storage table `db.name_local` (created on every node), and
`db.name` becomes a `Distributed` table over it. Readers and writers keep using the
public names; inserts into `db.name` spread over the shards by the sharding key.

Rows of one trace go to one shard (`cityHash64(TraceId)`; tables without a trace id are sharded
by their sorting key), so a span delivered twice lands on the same shard and `ReplacingMergeTree`
collapses it there.
Materialized views fire on inserts into the local tables, so they read `_local` sources and
write `_local` targets on each shard. Column changes (`ALTER TABLE ... ADD COLUMN`) apply to
both tables; other `ALTER`s (TTL, indexes, settings) only to the storage table.
"""

from __future__ import annotations

import re

LOCAL_SUFFIX = "_local"

_CREATE_TABLE = re.compile(r"^(CREATE TABLE (?:IF NOT EXISTS )?)(\w+)\.(\w+)\b", re.IGNORECASE)
_MATERIALIZED_VIEW = re.compile(r"^CREATE MATERIALIZED VIEW\b", re.IGNORECASE)
_ALTER_TABLE = re.compile(r"^(ALTER TABLE )(\w+)\.(\w+)\b", re.IGNORECASE)
_REPLICATED_ENGINE = re.compile(r"\bENGINE\s*=\s*Replicated\w*MergeTree\b", re.IGNORECASE)
_TRACE_ID_COLUMN = re.compile(r"(?:^|[(,])\s*TraceId\s+String\b", re.MULTILINE)
_ORDER_BY = re.compile(r"\bORDER BY (.+?)\s*$", re.MULTILINE | re.IGNORECASE)
_COLUMN_CHANGE = re.compile(r"\b(?:ADD|DROP|MODIFY|RENAME|COMMENT|CLEAR) COLUMN\b", re.IGNORECASE)


def split_statements(sql: str) -> list[str]:
    """Statements split on `;` at line end, `--` comment lines dropped (as `store.Migration`)."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]


def sharding_key(create_statement: str) -> str:
    """`cityHash64(TraceId)` for tables of trace data, else a hash of the sorting key.

    Either way a row written twice (a retry, a replay) lands twice on the same shard, where a
    ReplacingMergeTree collapses it.
    """
    if _TRACE_ID_COLUMN.search(create_statement):
        return "cityHash64(TraceId)"
    order_by = _ORDER_BY.search(create_statement)
    key = order_by.group(1) if order_by else "tuple()"
    if key in ("tuple()", "()"):
        return "rand()"
    return f"cityHash64{key}" if key.startswith("(") else f"cityHash64({key})"


def distribute(sqls: list[str], cluster: str, db: str) -> list[str]:
    """Rewrite rendered migrations (with `ON CLUSTER` and Replicated engines) for a sharded cluster.

    Args:
        sqls: the migration files in version order, after template rendering for `cluster`.
        cluster: the ClickHouse cluster name (as in `remote_servers`).
        db: the database the statements create objects in.

    Returns:
        One SQL text per migration, of `;`-terminated statements: each replicated table as
        `<name>_local` followed by its `Distributed` table, materialized views rewired to the
        local tables, ALTERs applied per table role. Tables created by an earlier migration are
        known to the later ones.
    """
    split = [split_statements(sql) for sql in sqls]
    sharded = _sharded_tables([s for statements in split for s in statements], db)
    return ["".join(f"{out};\n\n" for s in statements for out in _distribute_statement(s, cluster, db, sharded))
            for statements in split]


def _sharded_tables(statements: list[str], db: str) -> set[str]:
    """Names of the tables created with a Replicated*MergeTree engine."""
    names = set()
    for statement in statements:
        match = _CREATE_TABLE.match(statement)
        if match and match.group(2) == db and _REPLICATED_ENGINE.search(statement):
            names.add(match.group(3))
    return names


def _distribute_statement(statement: str, cluster: str, db: str, sharded: set[str]) -> list[str]:
    create = _CREATE_TABLE.match(statement)
    if create and create.group(3) in sharded:
        prefix, name = create.group(1), create.group(3)
        local = _CREATE_TABLE.sub(lambda m: f"{prefix}{db}.{name}{LOCAL_SUFFIX}", statement, count=1)
        distributed = (f"{prefix}{db}.{name} ON CLUSTER {cluster} AS {db}.{name}{LOCAL_SUFFIX} "
                       f"ENGINE = Distributed({cluster}, {db}, {name}{LOCAL_SUFFIX}, {sharding_key(statement)})")
        return [local, distributed]
    if _MATERIALIZED_VIEW.match(statement):
        return [_localize_references(statement, db, sharded)]
    alter = _ALTER_TABLE.match(statement)
    if alter and alter.group(2) == db and alter.group(3) in sharded:
        name = alter.group(3)
        local = _ALTER_TABLE.sub(lambda m: f"{m.group(1)}{db}.{name}{LOCAL_SUFFIX}", statement, count=1)
        return [local, statement] if _COLUMN_CHANGE.search(statement) else [local]
    return [statement]


def _localize_references(statement: str, db: str, sharded: set[str]) -> str:
    """Point a materialized view's `TO` target and `FROM`/`JOIN` sources at the local tables."""
    for name in sharded:
        pattern = re.compile(rf"\b(TO|FROM|JOIN)(\s+){re.escape(db)}\.{re.escape(name)}\b", re.IGNORECASE)
        statement = pattern.sub(lambda m, n=name: f"{m.group(1)}{m.group(2)}{db}.{n}{LOCAL_SUFFIX}", statement)
    return statement
