"""The `grafana-clickhouse-datasource` query model as a foundation-SDK data query variant.

The SDK ships no ClickHouse query type, so this module adds one the way the SDK's own plugins
do: a `Dataquery` subclass with `to_json`/`from_json`, a builder, and a runtime registration
so that `Dashboard.from_json` reads ClickHouse targets back as `ClickHouseQuery` objects.
"""

from __future__ import annotations

import enum
import typing

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import plugins as cogplugins
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

DATASOURCE_TYPE = "grafana-clickhouse-datasource"
DATASOURCE_UID = "llmrel-clickhouse"
DATASOURCE_NAME = "llmrel ClickHouse"
DATASOURCE_REF = dashboard.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class Format(enum.IntEnum):
    """sqlds result formats stored in a target's `format`."""

    TIME_SERIES = 0
    TABLE = 1
    LOGS = 2
    TRACE = 3


class ClickHouseQuery(cogvariants.Dataquery):
    """One SQL-editor target of the ClickHouse datasource (`src/types/sql.ts` of the plugin)."""

    def __init__(self, raw_sql: str = "", ref_id: str = "A", format: Format = Format.TABLE,
                 query_type: str | None = None, datasource: dashboard.DataSourceRef | None = None,
                 hide: bool | None = None) -> None:
        self.raw_sql = raw_sql
        self.ref_id = ref_id
        self.format = format
        self.query_type = query_type
        self.datasource = datasource or DATASOURCE_REF
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "datasource": self.datasource.to_json(),
            "editorType": "sql",
            "format": int(self.format),
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }
        if self.query_type is not None:
            payload["queryType"] = self.query_type
        if self.hide is not None:
            payload["hide"] = self.hide
        return payload

    @classmethod
    def from_json(cls, data: dict[str, typing.Any]) -> ClickHouseQuery:
        unknown = set(data) - {"datasource", "editorType", "format", "rawSql", "refId", "queryType", "hide"}
        if unknown:
            raise ValueError(f"unexpected ClickHouse query fields {sorted(unknown)}")
        if data.get("editorType", "sql") != "sql":
            raise ValueError("only SQL-editor queries are supported")
        return cls(raw_sql=data["rawSql"], ref_id=data.get("refId", "A"), format=Format(data.get("format", 1)),
                   query_type=data.get("queryType"),
                   datasource=dashboard.DataSourceRef.from_json(data.get("datasource", {})),
                   hide=data.get("hide"))


class ClickHouseQueryBuilder(cogbuilder.Builder[ClickHouseQuery]):
    """Builder for `ClickHouseQuery`, usable wherever the SDK takes a data query builder."""

    def __init__(self, raw_sql: str) -> None:
        self._internal = ClickHouseQuery(raw_sql=raw_sql)

    def build(self) -> ClickHouseQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> typing.Self:
        self._internal.ref_id = ref_id
        return self

    def format(self, format: Format) -> typing.Self:
        self._internal.format = format
        return self

    def query_type(self, query_type: str) -> typing.Self:
        self._internal.query_type = query_type
        return self


def register_variant() -> None:
    """Let the SDK's `from_json` decode ClickHouse targets (and its own expression and panel types)."""
    cogplugins.register_default_plugins()
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=ClickHouseQuery.from_json))


register_variant()
