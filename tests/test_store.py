"""Schema migrations on the real embedded ClickHouse engine."""

from __future__ import annotations

from llmrel.model import LLM_CALL_COLUMNS, SPAN_COLUMNS
from llmrel.store import connect, engine_options, load_migrations, migrate, schema_version, template_vars


def test_migrate_is_idempotent_and_versioned(settings):
    client = connect(settings)
    first = migrate(client, settings)
    second = migrate(client, settings)
    assert first == [m.version for m in load_migrations(settings, client.database)]
    assert second == []
    assert schema_version(client) == max(first)


def test_tables_have_the_model_columns(store):
    def columns(table: str) -> list[str]:
        return [r[0] for r in store.query(f"DESCRIBE TABLE {table}").result_rows]

    assert columns("otel_traces") == list(SPAN_COLUMNS)
    assert [c for c in columns("llm_calls") if c != "IngestedAt"] == list(LLM_CALL_COLUMNS)


def test_otel_traces_types_match_the_collector_exporter(store):
    types = dict(store.query("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                             "AND table = 'otel_traces'").result_rows)
    assert types["Timestamp"] == "DateTime64(9)"
    assert types["SpanAttributes"] == "Map(LowCardinality(String), String)"
    assert types["Events.Timestamp"] == "Array(DateTime64(9))"
    assert types["Links.Attributes"] == "Array(Map(LowCardinality(String), String))"
    assert types["Duration"] == "UInt64"


def test_ttl_rendering(settings):
    values = template_vars(settings.model_copy(update={"traces_ttl_days": 0, "calls_ttl_days": 7}), "db")
    assert values["ttl_traces"] == ""
    assert values["ttl_calls"] == "TTL toDateTime(Timestamp) + toIntervalDay(7)"


def test_the_embedded_engine_starts_with_small_host_settings(store, settings):
    """Its own RSS sampled every 5 s, asynchronous metrics every minute, caches capped (its defaults: 100 ms, 1 s,
    GiBs): what an idle `llmrel serve` would otherwise spend its CPU and memory on."""
    rows = dict(store.query("SELECT name, value FROM system.server_settings WHERE name IN {names:Array(String)}",
                            parameters={"names": list(engine_options(settings))}).result_rows)
    assert rows == {name: str(value) for name, value in engine_options(settings).items()}
    assert engine_options(settings.model_copy(update={"embedded_max_memory_mib": 900}))[
        "max_server_memory_usage"] == 900 * 1024 * 1024
