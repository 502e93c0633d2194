"""Dashboards over `llm_calls` and `otel_traces`: Overview, Cost impact, Trace drill-down.

`llm_calls` is a ReplacingMergeTree (a span delivered twice collapses), so every query reads it
with `FINAL` to count each call once.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as dm

from llmrel.grafana.dashboards_actions import breaker_annotation
from llmrel.grafana.panels import (
    TRACE_DASHBOARD_UID,
    Grid,
    assemble,
    data_table,
    single_stat,
    sql_string,
    target,
    time_series,
    variable_filter,
)
from llmrel.grafana.query import DATASOURCE_REF, Format
from llmrel.pricing import COST_UNKNOWN_SQL, UNPRICED_SQL, USAGE_UNKNOWN_SQL

OVERVIEW_UID = "llmrel-overview"
COST_UID = "llmrel-cost"

CALLS_WHERE = f"FROM llm_calls FINAL WHERE $__timeFilter(Timestamp) AND {variable_filter()}"
# Text-box variables, read as values whatever a viewer types or puts in `?var-…=`: a budget that is
# not a number is NULL, a trace id is compared as text.
DAILY_BUDGET = f"toFloat64OrNull({sql_string('daily_budget_usd')})"
TRACE_ID = f"lower(trimBoth({sql_string('trace_id')}))"
SERIES_TAIL = "GROUP BY time ORDER BY time"


def _series(select: str, by: str | None = None, where: str = "") -> str:
    """`time`, optional label column `by`, then the numeric columns in `select`."""
    label = f", {by}" if by else ""
    group = f"GROUP BY time{', ' + by.split(' AS ')[-1] if by else ''} ORDER BY time"
    return f"SELECT $__timeInterval(Timestamp) AS time{label}, {select} {CALLS_WHERE}{where} {group}"


def overview() -> dash.Dashboard:
    grid = Grid()
    stats = [
        ("Calls", "SELECT count() AS calls", "short"),
        ("Error rate", "SELECT countIf(StatusCode = 'Error') / greatest(count(), 1) AS error_rate", "percentunit"),
        ("Latency p95", "SELECT quantile(0.95)(Duration) / 1e6 AS p95_ms", "ms"),
        ("Tokens", "SELECT sum(ifNull(InputTokens, 0) + ifNull(OutputTokens, 0)) AS tokens", "short"),
        ("Spend", "SELECT sum(ifNull(CostUSD, 0)) AS cost_usd", "currencyUSD"),
        ("Calls of unknown cost", f"SELECT countIf({COST_UNKNOWN_SQL}) AS cost_unknown_calls", "short",
         "Calls to a model without a price, and successful calls that reported no token usage (e.g. streams "
         "without include_usage): their spend is missing from every cost figure."),
    ]
    for title, select, unit, *description in stats:
        grid.add(single_stat(title, f"{select} {CALLS_WHERE}", unit, *description), w=4, h=4)
    grid.add(time_series("Calls by service", _series("count() AS calls", "ServiceName AS service"), "short"),
             w=12, h=8)
    grid.add(time_series("Error rate by service",
                         _series("countIf(StatusCode = 'Error') / count() AS error_rate", "ServiceName AS service"),
                         "percentunit", "Share of calls whose span status is Error."), w=12, h=8)
    grid.add(time_series("Latency p50 / p95 / p99", _series(
        "quantile(0.5)(Duration) / 1e6 AS p50_ms, quantile(0.95)(Duration) / 1e6 AS p95_ms, "
        "quantile(0.99)(Duration) / 1e6 AS p99_ms"), "ms"), w=12, h=8)
    grid.add(time_series("Time to first token (streaming)", _series(
        "quantile(0.5)(TimeToFirstToken) / 1e6 AS ttft_p50_ms, quantile(0.95)(TimeToFirstToken) / 1e6 AS ttft_p95_ms",
        where=" AND TimeToFirstToken IS NOT NULL"), "ms"), w=12, h=8)
    grid.add(time_series("Tokens", _series(
        "sum(ifNull(InputTokens, 0)) AS input_tokens, sum(ifNull(OutputTokens, 0)) AS output_tokens"), "short"),
        w=12, h=8)
    grid.add(time_series("Spend by model", _series("sum(ifNull(CostUSD, 0)) AS cost_usd", "Model AS model"),
                         "currencyUSD"), w=12, h=8)
    grid.add(data_table("Cost per service and model", (
        "SELECT ServiceName AS service, Model AS model, count() AS calls, "
        "countIf(StatusCode = 'Error') / count() AS error_rate, quantile(0.95)(Duration) / 1e6 AS p95_ms, "
        "sum(ifNull(InputTokens, 0)) AS input_tokens, sum(ifNull(OutputTokens, 0)) AS output_tokens, "
        f"sum(ifNull(CostUSD, 0)) AS cost_usd {CALLS_WHERE} GROUP BY service, model ORDER BY cost_usd DESC")),
        w=16, h=9)
    grid.add(data_table("Calls of unknown cost by model", (
        f"SELECT Provider AS provider, Model AS model, countIf({UNPRICED_SQL}) AS unpriced_calls, "
        f"countIf({USAGE_UNKNOWN_SQL}) AS no_usage_calls, "
        "sum(ifNull(InputTokens, 0)) AS input_tokens, sum(ifNull(OutputTokens, 0)) AS output_tokens "
        f"{CALLS_WHERE} AND {COST_UNKNOWN_SQL} GROUP BY provider, model ORDER BY count() DESC"),
        "Their spend is missing from every cost figure. Unpriced: add the model to the prices file. "
        "No usage: successful calls without token counts; for streams, request include_usage."), w=8, h=9)
    return assemble("LLM Overview", OVERVIEW_UID,
                    "Traffic, errors, latency, tokens and cost of every LLM call.", grid,
                    annotations=[breaker_annotation()])


def budget_variable() -> dash.TextBoxVariable:
    return (dash.TextBoxVariable("daily_budget_usd").label("Daily budget (USD)").default_value("100")
            .current(dm.VariableOption(selected=True, text="100", value="100")))


def cost_impact(findings_cost: list[tuple[str, str]]) -> dash.Dashboard:
    """Spend, cost of failures and budget burn; `findings_cost` adds (title, sql) tables from findings."""
    grid = Grid()
    run_rate = ("sum(ifNull(CostUSD, 0)) / greatest(dateDiff('second', $__fromTime, $__toTime), 1) * 86400")
    grid.add(single_stat("Spend", f"SELECT sum(ifNull(CostUSD, 0)) AS cost_usd {CALLS_WHERE}", "currencyUSD"),
             w=6, h=4)
    grid.add(single_stat("Daily run rate", f"SELECT {run_rate} AS daily_run_rate_usd {CALLS_WHERE}",
                         "currencyUSD", "Spend over the range, scaled to 24 hours."), w=6, h=4)
    grid.add(single_stat("Budget burn", (
        f"SELECT {run_rate} / {DAILY_BUDGET} AS budget_burn {CALLS_WHERE}"), "percentunit",
        "Daily run rate as a share of the daily budget; above 100% the budget runs out before the day ends."),
        w=6, h=4)
    grid.add(single_stat("Cost of failed calls", (
        f"SELECT sumIf(ifNull(CostUSD, 0), StatusCode = 'Error') AS failed_cost_usd {CALLS_WHERE}"),
        "currencyUSD", "Money spent on calls that ended in an error."), w=6, h=4)
    grid.add(time_series("Spend by service", _series("sum(ifNull(CostUSD, 0)) AS cost_usd", "ServiceName AS service"),
                         "currencyUSD"), w=12, h=8)
    grid.add(time_series("Cumulative spend against the daily budget", (
        "SELECT time, sum(cost_usd) OVER (ORDER BY time) AS cumulative_usd, "
        f"{DAILY_BUDGET} AS daily_budget_usd FROM ("
        f"SELECT $__timeInterval(Timestamp) AS time, sum(ifNull(CostUSD, 0)) AS cost_usd {CALLS_WHERE} "
        f"{SERIES_TAIL}) ORDER BY time"), "currencyUSD"), w=12, h=8)
    for title, column in (("Spend by feature", "Feature"), ("Spend by tenant", "Tenant")):
        name = column.lower()
        grid.add(data_table(title, (
            f"SELECT {column} AS {name}, count() AS calls, sum(ifNull(CostUSD, 0)) AS cost_usd, "
            f"sumIf(ifNull(CostUSD, 0), StatusCode = 'Error') AS failed_cost_usd, "
            f"countIf({COST_UNKNOWN_SQL}) AS cost_unknown_calls {CALLS_WHERE} "
            f"GROUP BY {name} ORDER BY cost_usd DESC LIMIT 100")), w=12, h=8)
    for title, sql in findings_cost:
        grid.add(data_table(title, sql), w=12, h=8)
    return assemble("LLM Cost impact", COST_UID,
                    "What LLM calls cost, what failures and findings cost, and how fast the budget burns.",
                    grid, extra_variables=[budget_variable()])


# The datasource's own trace query (grafana/clickhouse-datasource sqlGenerator.ts, nested Events/Links):
# span events become the trace view's `logs`, span links its `references`.
_TRACE_SQL = f"""WITH {TRACE_ID} AS trace_id,
  (SELECT min(Start) FROM otel_traces_trace_id_ts WHERE TraceId = trace_id) AS trace_start,
  (SELECT max(End) + 1 FROM otel_traces_trace_id_ts WHERE TraceId = trace_id) AS trace_end
SELECT TraceId AS traceID, SpanId AS spanID, ParentSpanId AS parentSpanID, ServiceName AS serviceName,
  SpanName AS operationName, multiply(toUnixTimestamp64Nano(Timestamp), 0.000001) AS startTime,
  multiply(Duration, 0.000001) AS duration,
  arrayMap(key -> map('key', key, 'value', SpanAttributes[key]), mapKeys(SpanAttributes)) AS tags,
  arrayMap(key -> map('key', key, 'value', ResourceAttributes[key]), mapKeys(ResourceAttributes)) AS serviceTags,
  SpanKind AS kind, if(StatusCode IN ('Error', 'STATUS_CODE_ERROR'), 2, 0) AS statusCode,
  StatusMessage AS statusMessage,
  arrayMap((name, timestamp, attributes) -> tuple(name, toString(toUnixTimestamp64Milli(timestamp)),
    arrayMap(key -> map('key', key, 'value', attributes[key]), mapKeys(attributes)))::Tuple(name String,
    timestamp String, fields Array(Map(String, String))),
    `Events.Name`, `Events.Timestamp`, `Events.Attributes`) AS logs,
  arrayMap((traceID, spanID, attributes) -> tuple(traceID, spanID,
    arrayMap(key -> map('key', key, 'value', attributes[key]), mapKeys(attributes)))::Tuple(traceID String,
    spanID String, tags Array(Map(String, String))), `Links.TraceId`, `Links.SpanId`, `Links.Attributes`) AS references
FROM otel_traces
WHERE TraceId = trace_id AND Timestamp >= trace_start AND Timestamp <= trace_end
ORDER BY startTime ASC
LIMIT 1 BY SpanId"""


def trace_drilldown() -> dash.Dashboard:
    grid = Grid()
    trace_panel = (dash.Panel().type("traces").title("Trace").datasource(DATASOURCE_REF).options({})
                   .with_target(target(_TRACE_SQL, Format.TRACE).query_type("traces")))
    grid.add(trace_panel, w=24, h=14)
    grid.add(data_table("LLM calls in this trace", (
        "SELECT Timestamp AS time, SpanId AS span_id, ServiceName AS service, Operation AS operation, "
        "Model AS model, Duration / 1e6 AS duration_ms, TimeToFirstToken / 1e6 AS ttft_ms, "
        "InputTokens AS input_tokens, OutputTokens AS output_tokens, CostUSD AS cost_usd, "
        "StatusCode AS status, ErrorType AS error_type, FinishReason AS finish_reason "
        f"FROM llm_calls FINAL WHERE TraceId = {TRACE_ID} ORDER BY time")), w=24, h=8)
    grid.add(data_table("Traces with failing or slow LLM calls", (
        "SELECT TraceId AS trace_id, min(Timestamp) AS start, any(ServiceName) AS service, count() AS calls, "
        "countIf(StatusCode = 'Error') AS errors, max(Duration) / 1e6 AS slowest_ms, "
        f"sum(ifNull(CostUSD, 0)) AS cost_usd {CALLS_WHERE} "
        "GROUP BY trace_id ORDER BY errors DESC, slowest_ms DESC LIMIT 50"),
        "Click a trace id to open it above.", trace_column="trace_id"), w=24, h=9)
    trace_id = dash.TextBoxVariable("trace_id").label("Trace ID")
    return assemble("LLM Trace drill-down", TRACE_DASHBOARD_UID,
                    "One trace in the OpenTelemetry trace view, with its LLM calls.", grid,
                    extra_variables=[trace_id])

