"""Panel and variable factories shared by the dashboards: one ClickHouse SQL target per panel.

Panels are placed by `Grid`, which packs them left to right in 24 columns and numbers them, so
panel ids are stable across builds (alert rules link to them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grafana_foundation_sdk.builders import common, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from llmrel.grafana.query import DATASOURCE_REF, ClickHouseQueryBuilder, Format

GRID_WIDTH = 24
TRACE_DASHBOARD_UID = "llmrel-traces"

# Filters applied by the dashboard variables; the frontend turns an `All` choice into `1=1`.
CALL_FILTERS = {
    "environment": "Environment",
    "service": "ServiceName",
    "model": "Model",
    "feature": "Feature",
    "tenant": "Tenant",
}


def sql_string(var: str) -> str:
    """A dashboard variable as a ClickHouse `String` expression that no value can break out of.

    Grafana's SQL formats do not escape backslashes (`singlequote` turns `'` into `\\'`, `sqlstring`
    into `''`), and ClickHouse reads `\\` as an escape, so `x\\') OR 1=1 --` would end the literal.
    `percentencode` (RFC 3986, the same in Grafana's legacy and scenes template services) leaves only
    `A-Z a-z 0-9 - _ . ~ %`, which is inert inside `'…'`; `decodeURLComponent` restores the value.
    """
    return f"decodeURLComponent('${{{var}:percentencode}}')"


def sql_values(var: str) -> str:
    """A multi-value variable as a ClickHouse `Array(String)`, safe like `sql_string`.

    `percentencode` joins a selection as `{a,b}` before encoding it: the braces are removed and the
    text split at commas (so a value that itself contains a comma matches nothing).
    """
    return f"splitByChar(',', replaceRegexpOne({sql_string(var)}, '^[{{](.*)[}}]$', '\\\\1'))"


def variable_filter(columns: dict[str, str] = CALL_FILTERS) -> str:
    """`AND`-joined `$__conditionalAll` filters for the variables mapped to `columns`."""
    return " AND ".join(f"$__conditionalAll(has({sql_values(var)}, {column}), ${var})"
                        for var, column in columns.items())


def variables() -> list[dash.QueryVariable]:
    """Environment, service, model, feature and tenant, each narrowed by the ones before it."""
    result = []
    for position, (name, column) in enumerate(CALL_FILTERS.items()):
        before = dict(list(CALL_FILTERS.items())[:position])
        narrowing = f" AND {variable_filter(before)}" if before else ""
        sql = (f"SELECT DISTINCT {column} FROM llm_calls WHERE $__timeFilter(Timestamp){narrowing} "
               f"AND {column} != '' ORDER BY {column}")
        result.append(
            dash.QueryVariable(name).label(name.capitalize()).datasource(DATASOURCE_REF).query(sql)
            .multi(True).include_all(True).refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dm.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
            .current(dm.VariableOption(selected=True, text="All", value="$__all")))
    return result


def target(sql: str, fmt: Format = Format.TABLE, ref_id: str = "A") -> ClickHouseQueryBuilder:
    return ClickHouseQueryBuilder(sql).format(fmt).ref_id(ref_id)


def trace_link(field_name: str = "trace_id") -> dm.DynamicConfigValue:
    """A data link from a trace-id cell to the trace drill-down dashboard."""
    url = f"/d/{TRACE_DASHBOARD_UID}?var-trace_id=${{__value.raw}}&${{__url_time_range}}"
    return dm.DynamicConfigValue(id_val="links", value=[{"title": "Open trace", "url": url}])


@dataclass
class Grid:
    """Packs panels into rows of 24 columns and gives each a sequential id."""

    x: int = 0
    y: int = 0
    row_height: int = 0
    next_id: int = 1
    panels: list[cogbuilder.Builder[dm.Panel]] = field(default_factory=list)

    def add(self, panel: cogbuilder.Builder[dm.Panel], w: int, h: int) -> int:
        if self.x + w > GRID_WIDTH:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel_id = self.next_id
        panel.id(panel_id).grid_pos(dm.GridPos(h=h, w=w, x=self.x, y=self.y))  # type: ignore[attr-defined]
        self.x += w
        self.row_height = max(self.row_height, h)
        self.next_id += 1
        self.panels.append(panel)
        return panel_id

    def row(self, title: str) -> None:
        """A full-width row header that starts a new line."""
        if self.x:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        row = dash.Row(title).id(self.next_id).grid_pos(dm.GridPos(h=1, w=GRID_WIDTH, x=0, y=self.y))
        self.next_id += 1
        self.y += 1
        self.panels.append(row)  # type: ignore[arg-type]


def time_series(title: str, sql: str, unit: str, description: str = "") -> timeseries.Panel:
    """A time series panel; the query returns `time`, optional label columns, then numbers."""
    return (timeseries.Panel().title(title).description(description).datasource(DATASOURCE_REF)
            .with_target(target(sql, Format.TIME_SERIES)).unit(unit).line_width(1).fill_opacity(10)
            .span_nulls(True)
            .legend(common.VizLegendOptions().display_mode(cm.LegendDisplayMode.LIST)
                    .placement(cm.LegendPlacement.BOTTOM).show_legend(True).calcs([]))
            .tooltip(common.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING)))


def single_stat(title: str, sql: str, unit: str, description: str = "") -> stat.Panel:
    """A one-number panel; the query returns one row with one numeric column."""
    return (stat.Panel().title(title).description(description).datasource(DATASOURCE_REF)
            .with_target(target(sql)).unit(unit).graph_mode(cm.BigValueGraphMode.NONE)
            .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))


def data_table(title: str, sql: str, description: str = "", trace_column: str | None = None) -> table.Panel:
    """A table panel; `trace_column` cells link to the trace drill-down."""
    panel = (table.Panel().title(title).description(description).datasource(DATASOURCE_REF)
             .with_target(target(sql)).show_header(True).align(cm.FieldTextAlignment.AUTO).inspect(False))
    if trace_column:
        panel.override_by_name(trace_column, [trace_link()])
    return panel


def assemble(title: str, uid: str, description: str, grid: Grid,
             extra_variables: list[cogbuilder.Builder[dm.VariableModel]] | None = None,
             annotations: list[dash.AnnotationQuery] | None = None) -> dash.Dashboard:
    """A dashboard with the standard variables, time range and the grid's panels in order."""
    board = (dash.Dashboard(title).uid(uid).description(description).tags(["llmrel"])
             .time("now-6h", "now").refresh("1m").timezone("browser").editable()
             .tooltip(dm.DashboardCursorSync.CROSSHAIR)
             .variables([*variables(), *(extra_variables or [])]))
    for annotation in annotations or []:
        board.annotation(annotation)
    for panel in grid.panels:
        if isinstance(panel, dash.Row):
            board.with_row(panel)
        else:
            board.with_panel(panel)
    return board
