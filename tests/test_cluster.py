"""Cluster variant of `schemas/`: ON CLUSTER, Replicated engines, Distributed tables over `_local` ones.

No ClickHouse cluster (Keeper, several servers) can run here, so the rendered DDL is checked as
text and parsed by the real ClickHouse parser (`formatQuery` in the embedded engine), not executed.
"""

from __future__ import annotations

import re

import pytest

from llmrel.cluster import distribute, sharding_key
from llmrel.store import load_migrations

_NAME = re.compile(r"^CREATE (?:TABLE|MATERIALIZED VIEW) IF NOT EXISTS (\w+)\.(\w+)")


def _statements(settings, cluster: str | None) -> list[str]:
    cluster_settings = settings.model_copy(update={"cluster": cluster, "calls_ttl_days": 180})
    return [s for m in load_migrations(cluster_settings, "llmrel") for s in m.statements()]


def _by_name(statements: list[str]) -> dict[str, str]:
    return {m.group(2): s for s in statements if (m := _NAME.match(s))}


@pytest.fixture
def cluster_ddl(settings) -> dict[str, str]:
    return _by_name(_statements(settings, "prod"))


def test_single_node_schema_has_no_cluster_objects(settings):
    statements = _statements(settings, None)
    text = "\n".join(statements)
    assert "ON CLUSTER" not in text
    assert "Replicated" not in text
    assert "Distributed" not in text
    assert "_local" not in text


def test_every_table_becomes_replicated_local_storage_plus_distributed(settings, cluster_ddl):
    single = _by_name(_statements(settings, None))
    tables = [name for name, s in single.items() if s.startswith("CREATE TABLE")]
    assert {"otel_traces", "otel_traces_trace_id_ts", "llm_calls"} <= set(tables)
    for name in tables:
        local, distributed = cluster_ddl[f"{name}_local"], cluster_ddl[name]
        assert "ON CLUSTER prod" in local
        assert re.search(r"ENGINE = Replicated\w*MergeTree", local), local
        assert distributed.startswith(
            f"CREATE TABLE IF NOT EXISTS llmrel.{name} ON CLUSTER prod AS llmrel.{name}_local "
            f"ENGINE = Distributed(prod, llmrel, {name}_local, cityHash64(")


def test_trace_data_is_sharded_by_trace_and_other_tables_by_sorting_key(cluster_ddl):
    def key(name: str) -> str:
        return cluster_ddl[name].rsplit(f"{name}_local, ", 1)[1].removesuffix(")")

    assert key("otel_traces") == key("otel_traces_trace_id_ts") == key("llm_calls") == "cityHash64(TraceId)"
    assert key("llm_analyzer_state") == "cityHash64(AnalyzerId)"


def test_storage_keeps_engine_arguments_ttl_and_order(cluster_ddl):
    calls = cluster_ddl["llm_calls_local"]
    assert "ENGINE = ReplicatedReplacingMergeTree(IngestedAt)" in calls
    assert "ORDER BY (ServiceName, Model, Timestamp, TraceId, SpanId)" in calls
    assert "TTL toDateTime(Timestamp) + toIntervalDay(180)" in calls
    assert "ENGINE = ReplicatedMergeTree()" in cluster_ddl["otel_traces_local"]


def test_local_table_is_created_before_its_distributed_table(settings):
    names = [m.group(2) for s in _statements(settings, "prod") if (m := _NAME.match(s))]
    for name in ("otel_traces", "otel_traces_trace_id_ts", "llm_calls"):
        assert names.index(f"{name}_local") < names.index(name)


def test_materialized_view_reads_and_writes_local_tables(cluster_ddl):
    view = cluster_ddl["otel_traces_trace_id_ts_mv"]
    assert "ON CLUSTER prod" in view
    assert "TO llmrel.otel_traces_trace_id_ts_local" in view
    assert "FROM llmrel.otel_traces_local" in view


def test_rendered_cluster_ddl_parses_in_clickhouse(settings, store):
    for statement in _statements(settings, "prod"):
        formatted = store.query("SELECT formatQuery({q:String})", parameters={"q": statement}).result_rows[0][0]
        assert formatted.startswith(("CREATE TABLE", "CREATE MATERIALIZED VIEW", "CREATE VIEW", "ALTER TABLE")), \
            formatted
        if formatted.startswith("ALTER TABLE") and " COLUMN " not in formatted:
            # settings and TTLs go to the storage tables only; column changes to both tables
            assert formatted.split()[2].endswith("_local"), formatted


def test_later_migrations_see_tables_of_earlier_ones():
    create = ("CREATE TABLE IF NOT EXISTS db.findings ON CLUSTER c (TraceId String, Rule String)\n"
              "ENGINE = ReplicatedMergeTree() ORDER BY Rule;")
    alter_column = "ALTER TABLE db.findings ON CLUSTER c ADD COLUMN IF NOT EXISTS Note String;"
    alter_ttl = "ALTER TABLE db.findings ON CLUSTER c MODIFY TTL now() + toIntervalDay(1);"
    view = ("CREATE MATERIALIZED VIEW IF NOT EXISTS db.rules_mv ON CLUSTER c TO db.rule_counts\n"
            "AS SELECT Rule, count() AS n FROM db.findings GROUP BY Rule;")
    first, second = distribute([create, f"{alter_column}\n{alter_ttl}\n{view}"], "c", "db")
    assert "db.findings_local" in first and "Distributed(c, db, findings_local, cityHash64(TraceId))" in first
    assert second.split(";\n\n")[:-1] == [
        "ALTER TABLE db.findings_local ON CLUSTER c ADD COLUMN IF NOT EXISTS Note String",
        "ALTER TABLE db.findings ON CLUSTER c ADD COLUMN IF NOT EXISTS Note String",
        "ALTER TABLE db.findings_local ON CLUSTER c MODIFY TTL now() + toIntervalDay(1)",
        # rule_counts is not a replicated table of this schema: the view keeps its target name.
        "CREATE MATERIALIZED VIEW IF NOT EXISTS db.rules_mv ON CLUSTER c TO db.rule_counts\n"
        "AS SELECT Rule, count() AS n FROM db.findings_local GROUP BY Rule",
    ]


def test_sharding_key_follows_the_trace_when_there_is_one():
    assert sharding_key("CREATE TABLE db.t (\n    TraceId String CODEC(ZSTD(1)),\n    x UInt8\n)") \
        == "cityHash64(TraceId)"
    assert sharding_key("CREATE TABLE db.prices (\n    Model String,\n    Day Date\n) ENGINE = ReplicatedMergeTree()\n"
                        "ORDER BY (Model, Day)") == "cityHash64(Model, Day)"
    assert sharding_key("CREATE TABLE db.log (Line String) ENGINE = ReplicatedMergeTree() ORDER BY tuple()") \
        == "rand()"
