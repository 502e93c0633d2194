"""Dashboards over `llm_findings`: Quality (rule violations) and Drift, plus the findings tables of Cost impact.

`llm_findings` has no environment column: the environment variable keeps the findings whose trace
has a call in that environment (findings without a trace, such as drift and window findings,
only show under All).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as dm

from llmrel.grafana.dashboards_actions import breaker_annotation
from llmrel.grafana.dashboards_calls import CALLS_WHERE
from llmrel.grafana.panels import (
    Grid,
    assemble,
    data_table,
    single_stat,
    sql_string,
    sql_values,
    target,
    time_series,
    variable_filter,
)
from llmrel.grafana.query import DATASOURCE_REF

QUALITY_UID = "llmrel-quality"
DRIFT_UID = "llmrel-drift"

FINDING_FILTERS = {"service": "ServiceName", "model": "Model", "feature": "Feature", "tenant": "Tenant"}
_ENVIRONMENT = ("$__conditionalAll(TraceId IN (SELECT TraceId FROM llm_calls WHERE $__timeFilter(Timestamp) "
                f"AND has({sql_values('environment')}, Environment)), $environment)")
DRIFT_METRIC = sql_string("drift_metric")
FINDINGS_WHERE = (f"FROM llm_findings FINAL WHERE $__timeFilter(EventTime) AND "
                  f"{variable_filter(FINDING_FILTERS)} AND {_ENVIRONMENT}")
INVARIANTS_WHERE = f"{FINDINGS_WHERE} AND Kind = 'invariant'"
RULES_WHERE = f"{FINDINGS_WHERE} AND Kind != 'drift'"
DRIFT_WHERE = f"{FINDINGS_WHERE} AND Kind = 'drift'"

# Stream metrics the drift analyzer watches that `llm_calls` can show as a per-interval mean.
DRIFT_METRIC_SQL = {
    "latency_ms": "avg(Duration) / 1e6",
    "ttft_ms": "avg(TimeToFirstToken) / 1e6",
    "input_tokens": "avg(InputTokens)",
    "output_tokens": "avg(OutputTokens)",
    "cost_usd": "avg(CostUSD)",
    "output_chars": "avgIf(lengthUTF8(OutputText), OutputText != '')",
    "error_rate": "avg(StatusCode = 'Error')",
    "length_finish_rate": "avg(FinishReason = 'length')",
    "tool_call_rate": "avg(ToolCalls > 0)",
}


def _rate_by(dimensions: dict[str, str], order: str) -> str:
    """Invariant violations per call, grouped by rule and the given call dimensions (alias: column)."""
    select = ", ".join(f"{column} AS {alias}" for alias, column in dimensions.items())
    keys = ", ".join(dimensions)
    return (f"SELECT f.rule AS rule, {keys}, f.violations AS violations, c.calls AS calls, "
            f"f.violations / c.calls AS violation_rate FROM "
            f"(SELECT RuleId AS rule, {select}, count() AS violations {INVARIANTS_WHERE} GROUP BY rule, {keys}) AS f "
            f"INNER JOIN (SELECT {select}, count() AS calls {CALLS_WHERE} GROUP BY {keys}) AS c USING ({keys}) "
            f"ORDER BY {order}")


def quality() -> dash.Dashboard:
    grid = Grid()
    violating_calls = f"(SELECT uniqExact(TraceId, SpanId) {INVARIANTS_WHERE})"
    calls = f"(SELECT count() {CALLS_WHERE})"
    grid.add(single_stat("Violating calls", f"SELECT {violating_calls} AS violating_calls", "short"), w=6, h=4)
    grid.add(single_stat("Violation rate", f"SELECT {violating_calls} / greatest({calls}, 1) AS violation_rate",
                         "percentunit", "Share of calls that broke at least one invariant."), w=6, h=4)
    grid.add(single_stat("Rules violated", f"SELECT uniqExact(RuleId) AS rules {RULES_WHERE}", "short"), w=6, h=4)
    grid.add(single_stat("Declared impact", f"SELECT sum(ImpactUSD) AS impact_usd {RULES_WHERE}", "currencyUSD",
                         "Business impact the rules declare for their findings."), w=6, h=4)
    grid.add(time_series("Invariant violation rate by rule", (
        "SELECT f.time AS time, f.rule AS rule, f.violations / c.calls AS violation_rate FROM "
        f"(SELECT $__timeInterval(EventTime) AS time, RuleId AS rule, count() AS violations {INVARIANTS_WHERE} "
        "GROUP BY time, rule) AS f INNER JOIN "
        f"(SELECT $__timeInterval(Timestamp) AS time, count() AS calls {CALLS_WHERE} GROUP BY time) AS c "
        "USING (time) ORDER BY time"), "percentunit",
        "Calls violating each rule, as a share of all calls in the interval."), w=24, h=8)
    for title, alias, column in (("service", "service", "ServiceName"), ("model", "model", "Model"),
                                 ("feature", "feature", "Feature")):
        grid.add(data_table(f"Violation rate by rule and {title}",
                            _rate_by({alias: column}, "violation_rate DESC LIMIT 100")), w=8, h=8)
    grid.add(data_table("Top offenders", (
        "SELECT RuleId AS rule, Kind AS kind, ServiceName AS service, Model AS model, Feature AS feature, "
        "Tenant AS tenant, count() AS findings, sum(Calls) AS calls, sum(CostUSD) AS cost_usd, "
        f"sum(ImpactUSD) AS impact_usd {RULES_WHERE} "
        "GROUP BY rule, kind, service, model, feature, tenant ORDER BY findings DESC LIMIT 25"),
        "Rule and call dimensions with the most findings."), w=24, h=8)
    grid.add(data_table("Recent violations", (
        "SELECT EventTime AS time, Severity AS severity, RuleId AS rule, Kind AS kind, ServiceName AS service, "
        "Model AS model, Feature AS feature, Tenant AS tenant, Observed AS observed, Expected AS expected, "
        f"Message AS message, TraceId AS trace_id {RULES_WHERE} ORDER BY time DESC LIMIT 200"),
        "Click a trace id to open the trace.", trace_column="trace_id"), w=24, h=10)
    return assemble("LLM Quality", QUALITY_UID,
                    "Invariant and limit violations found by the analyzers, with links to the traces.", grid,
                    annotations=[breaker_annotation()])


def drift_metric_variable() -> dash.CustomVariable:
    names = ",".join(DRIFT_METRIC_SQL)
    return (dash.CustomVariable("drift_metric").label("Metric").values(names)
            .current(dm.VariableOption(selected=True, text="latency_ms", value="latency_ms")))


def _drift_annotation(panel_ids: list[int]) -> dash.AnnotationQuery:
    sql = ("SELECT EventTime AS time, concat(RuleId, ': ', Metric, ' of ', ServiceName, '/', Model, '/', "
           "Operation, ' moved from ', toString(round(Expected, 4)), ' to ', toString(round(Observed, 4))) AS text, "
           f"[RuleId, Metric, ServiceName, Model] AS tags {DRIFT_WHERE} AND Metric = {DRIFT_METRIC} "
           "ORDER BY time")
    return (dash.AnnotationQuery().name("Drift").datasource(DATASOURCE_REF).enable(True)
            .icon_color("red").target(target(sql, ref_id="Anno"))  # type: ignore[arg-type]
            .filter(dash.AnnotationPanelFilter().ids(panel_ids)))


def drift() -> dash.Dashboard:
    grid = Grid()
    grid.add(single_stat("Drift findings", f"SELECT count() AS drift_findings {DRIFT_WHERE}", "short"), w=8, h=4)
    grid.add(single_stat("Drifting streams", (
        f"SELECT uniqExact(ServiceName, Model, Operation, Metric) AS streams {DRIFT_WHERE}"), "short",
        "Distinct service/model/operation/metric streams with a drift finding."), w=8, h=4)
    grid.add(single_stat("Spend since drift onset", f"SELECT sum(CostUSD) AS cost_usd {DRIFT_WHERE}", "currencyUSD",
                         "Spend of the drifting streams' calls since each shift began."), w=8, h=4)
    metric = "multiIf(" + ", ".join(f"{DRIFT_METRIC} = '{name}', {expr}"
                                    for name, expr in DRIFT_METRIC_SQL.items()) + ", NULL)"
    chart_id = grid.add(time_series("${drift_metric} by stream", (
        "SELECT $__timeInterval(Timestamp) AS time, concat(ServiceName, '/', Model, '/', Operation) AS stream, "
        f"{metric} AS value {CALLS_WHERE} GROUP BY time, stream ORDER BY time"), "short",
        "Per-interval mean of the chosen metric for each service/model/operation stream; "
        "red marks are drift findings on it."), w=24, h=10)
    grid.add(data_table("What moved", (
        "SELECT EventTime AS since, RuleId AS detector, Metric AS metric, ServiceName AS service, Model AS model, "
        "Operation AS operation, Expected AS before, Observed AS after, "
        "if(Expected != 0, (Observed - Expected) / abs(Expected), NULL) AS change, Confidence AS confidence, "
        f"Calls AS calls, CostUSD AS cost_usd, Message AS message {DRIFT_WHERE} ORDER BY since DESC LIMIT 200"),
        "Each drift finding: the stream, the metric, its mean before and after the shift."), w=24, h=10)
    return assemble("LLM Drift", DRIFT_UID,
                    "Shifts in latency, tokens, cost and rates per stream, found by the drift analyzer.", grid,
                    extra_variables=[drift_metric_variable()],
                    annotations=[_drift_annotation([chart_id]), breaker_annotation()])


def findings_cost_tables() -> list[tuple[str, str]]:
    """(title, sql) tables for the Cost impact dashboard: cost of failures by rule, feature and tenant."""
    tables = []
    for title, select, keys in (
        ("Cost of failures by rule", "RuleId AS rule, Kind AS kind", "rule, kind"),
        ("Cost of failures by feature", "Feature AS feature", "feature"),
        ("Cost of failures by tenant", "Tenant AS tenant", "tenant"),
    ):
        tables.append((title, (
            f"SELECT {select}, count() AS findings, sum(Calls) AS calls, sum(CostUSD) AS cost_usd, "
            f"sum(ImpactUSD) AS impact_usd {RULES_WHERE} GROUP BY {keys} "
            "ORDER BY cost_usd + impact_usd DESC LIMIT 50")))
    return tables
