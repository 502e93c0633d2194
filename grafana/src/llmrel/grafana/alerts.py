"""Grafana-managed alert rules over the llmrel tables, built with the foundation SDK.

Every rule is query `A` (ClickHouse SQL, table format: label columns + one number per row, so
each row becomes its own alert instance labelled by its string columns), `B` = reduce(last) and
`C` = threshold. Alert queries run in Grafana's backend, which expands the datasource's time
macros but never `$__conditionalAll` or dashboard variables, so the SQL here uses neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from grafana_foundation_sdk.builders import alerting, expr
from grafana_foundation_sdk.models import alerting as am
from grafana_foundation_sdk.models import dashboard as dm

from llmrel.grafana.dashboards_calls import COST_UID, OVERVIEW_UID
from llmrel.grafana.dashboards_findings import DRIFT_UID, QUALITY_UID
from llmrel.grafana.query import DATASOURCE_UID, ClickHouseQueryBuilder, Format

EXPR_UID = "__expr__"
EXPR_REF = dm.DataSourceRef(type_val=EXPR_UID, uid=EXPR_UID)
ORG_ID = 1
Comparison = Literal["gt", "lt"]


@dataclass(frozen=True)
class AlertSettings:
    """Thresholds and placement of the alert rules; the defaults are what the committed files hold."""

    folder_uid: str = "llmrel"
    folder_title: str = "llmrel"
    error_rate: float = 0.05
    violation_rate: float = 0.05
    latency_p99_slo_ms: float = 10_000.0
    daily_budget_usd: float = 100.0
    min_calls: int = 20
    ingestion_window_s: int = 900
    runbook_url: str = "https://github.com/llmrel/llmrel/blob/main/grafana/README.md"


@dataclass(frozen=True)
class AlertSpec:
    """One rule before it is rendered: the query, its window and threshold, and where it points."""

    uid: str
    title: str
    group: str
    sql: str
    window_s: int
    comparison: Comparison
    threshold: float
    pending: str
    severity: str
    summary: str
    description: str
    runbook_anchor: str
    dashboard_uid: str
    panel_title: str
    no_data_state: Literal["Alerting", "NoData", "OK"] = "OK"
    exec_err_state: Literal["OK", "Alerting", "Error"] = "Error"


GROUP_INTERVALS_S = {"llmrel-quality": 60, "llmrel-service": 60, "llmrel-cost": 300}

def label(name: str) -> str:
    """A query label in an annotation template, its control characters replaced by spaces.

    Label values are service, model and rule names that senders choose; a line break in one
    could forge lines (`Runbook: …`) in every message. Slack-significant characters are escaped
    by the Slack message template (`notifications.py`).
    """
    return f'{{{{ reReplaceAll "[[:cntrl:]]+" " " $labels.{name} }}}}'


_CALLS = "FROM llm_calls FINAL WHERE $__timeFilter(Timestamp)"
_FINDINGS = "FROM llm_findings FINAL WHERE $__timeFilter(EventTime)"


def alert_specs(s: AlertSettings) -> list[AlertSpec]:
    """The rule set, thresholds taken from `s`."""
    return [
        AlertSpec(
            "llmrel-invariant-violation-rate", "Invariant violation rate", "llmrel-quality",
            ("SELECT f.rule AS rule, f.service AS service, f.violations / c.calls AS violation_rate FROM "
             f"(SELECT RuleId AS rule, ServiceName AS service, count() AS violations {_FINDINGS} "
             "AND Kind = 'invariant' GROUP BY rule, service) AS f INNER JOIN "
             f"(SELECT ServiceName AS service, count() AS calls {_CALLS} GROUP BY service "
             f"HAVING calls >= {s.min_calls}) AS c USING (service)"),
            900, "gt", s.violation_rate, "5m", "warning",
            f"{label('rule')} violated by {{{{ humanizePercentage $values.B.Value }}}} of {label('service')} calls",
            f"More than {s.violation_rate:.0%} of the service's LLM calls in the last 15 minutes broke the rule.",
            "alert-invariant-violation-rate", QUALITY_UID, "Invariant violation rate by rule"),
        AlertSpec(
            "llmrel-drift-detected", "New drift finding", "llmrel-quality",
            ("SELECT ServiceName AS service, Model AS model, Operation AS operation, Metric AS metric, "
             f"count() AS drift_findings {_FINDINGS} AND Kind = 'drift' GROUP BY service, model, operation, metric"),
            600, "gt", 0, "0s", "warning",
            f"{label('metric')} drifted for {label('service')}/{label('model')}/{label('operation')}",
            "The drift analyzer found a lasting shift of this metric in the last 10 minutes.",
            "alert-drift-detected", DRIFT_UID, "What moved"),
        AlertSpec(
            "llmrel-error-rate", "LLM error rate", "llmrel-service",
            (f"SELECT ServiceName AS service, countIf(StatusCode = 'Error') / count() AS error_rate {_CALLS} "
             f"GROUP BY service HAVING count() >= {s.min_calls}"),
            600, "gt", s.error_rate, "5m", "critical",
            f"{label('service')}: {{{{ humanizePercentage $values.B.Value }}}} of LLM calls fail",
            f"More than {s.error_rate:.0%} of the service's LLM calls ended in an error over 10 minutes.",
            "alert-error-rate", OVERVIEW_UID, "Error rate by service"),
        AlertSpec(
            "llmrel-latency-p99-slo", "LLM latency p99 above SLO", "llmrel-service",
            (f"SELECT ServiceName AS service, Model AS model, quantile(0.99)(Duration) / 1e6 AS p99_ms {_CALLS} "
             f"GROUP BY service, model HAVING count() >= {s.min_calls}"),
            900, "gt", s.latency_p99_slo_ms, "10m", "warning",
            f"{label('service')}/{label('model')} p99 latency {{{{ humanize $values.B.Value }}}} ms",
            f"The 99th percentile of LLM call latency over 15 minutes is above the {s.latency_p99_slo_ms:g} ms SLO.",
            "alert-latency-p99-slo", OVERVIEW_UID, "Latency p50 / p95 / p99"),
        AlertSpec(
            "llmrel-ingestion-stalled", "LLM ingestion stalled", "llmrel-service",
            ("SELECT count() AS calls_ingested FROM llm_calls "
             "WHERE Timestamp >= $__fromTime - INTERVAL 1 DAY AND $__timeFilter(IngestedAt)"),
            s.ingestion_window_s, "lt", 1, "5m", "critical",
            f"No LLM calls ingested in the last {s.ingestion_window_s // 60} minutes",
            "llm_calls received no row in the window: the receiver, the collector or the apps stopped sending.",
            "alert-ingestion-stalled", OVERVIEW_UID, "Calls by service", no_data_state="Alerting",
            exec_err_state="Alerting"),
        AlertSpec(
            "llmrel-cost-burn", "LLM cost burn rate", "llmrel-cost",
            f"SELECT sum(ifNull(CostUSD, 0)) * 24 AS projected_daily_usd {_CALLS}",
            3600, "gt", s.daily_budget_usd, "15m", "warning",
            "Spend rate projects to {{ humanize $values.B.Value }} USD/day",
            f"The last hour's LLM spend, kept up for 24 hours, exceeds the {s.daily_budget_usd:g} USD daily budget.",
            "alert-cost-burn", COST_UID, "Spend by service"),
        AlertSpec(
            "llmrel-budget-exceeded", "LLM daily budget exceeded", "llmrel-cost",
            (f"SELECT sum(ifNull(CostUSD, 0)) AS spend_today_usd {_CALLS} "
             "AND Timestamp >= toStartOfDay($__toTime, 'UTC')"),
            86400, "gt", s.daily_budget_usd, "0s", "critical",
            "LLM spend today is {{ humanize $values.B.Value }} USD",
            f"Spend since 00:00 UTC is above the {s.daily_budget_usd:g} USD daily budget.",
            "alert-budget-exceeded", COST_UID, "Cumulative spend against the daily budget"),
        AlertSpec(
            "llmrel-unpriced-spend", "Unpriced LLM calls", "llmrel-cost",
            (f"SELECT Model AS model, count() AS unpriced_calls {_CALLS} AND CostStatus = 'unpriced' "
             "GROUP BY model"),
            3600, "gt", 0, "15m", "warning",
            f"{{{{ $values.B.Value }}}} calls to {label('model')} have no price",
            "Calls to this model carry tokens but no cost: spend figures and budget alerts undercount.",
            "alert-unpriced-spend", OVERVIEW_UID, "Calls of unknown cost by model"),
    ]


def _queries(spec: AlertSpec) -> list[alerting.Query]:
    source = (alerting.Query("A").datasource_uid(DATASOURCE_UID)
              .relative_time_range(am.RelativeTimeRange(from_val=spec.window_s, to=0))
              .model(ClickHouseQueryBuilder(spec.sql).format(Format.TABLE).ref_id("A")))
    reduce = (alerting.Query("B").datasource_uid(EXPR_UID)
              .model(expr.TypeReduce().datasource(EXPR_REF).ref_id("B").expression("A").reducer("last")
                     .settings(expr.ExprTypeReduceSettings().mode("dropNN"))))
    threshold = (alerting.Query("C").datasource_uid(EXPR_UID)
                 .model(expr.TypeThreshold().datasource(EXPR_REF).ref_id("C").expression("B").conditions([
                     expr.ExprTypeThresholdConditions().evaluator(
                         expr.ExprTypeThresholdConditionsEvaluator().type(spec.comparison).params([spec.threshold]))])))
    return [source, reduce, threshold]


def build_rule(spec: AlertSpec, s: AlertSettings, panel_id: int) -> alerting.Rule:
    """The SDK rule for `spec`, linked to its dashboard panel and runbook."""
    return (alerting.Rule(spec.title).uid(spec.uid).org_id(ORG_ID).folder_uid(s.folder_uid)
            .rule_group(spec.group).condition("C").queries(_queries(spec)).for_val(spec.pending)
            .no_data_state(spec.no_data_state).exec_err_state(spec.exec_err_state).is_paused(False)
            .labels({"severity": spec.severity, "product": "llmrel"})
            .annotations({
                "summary": spec.summary,
                "description": spec.description,
                "runbook_url": f"{s.runbook_url}#{spec.runbook_anchor}",
                "__dashboardUid__": spec.dashboard_uid,
                "__panelId__": str(panel_id),
            }))


def rule_groups(s: AlertSettings, panel_ids: dict[tuple[str, str], int]) -> list[am.RuleGroup]:
    """Rules grouped as Grafana evaluates them; `panel_ids` maps (dashboard uid, panel title) to the panel id."""
    groups: dict[str, alerting.RuleGroup] = {}
    for spec in alert_specs(s):
        group = groups.setdefault(spec.group, alerting.RuleGroup(spec.group).folder_uid(s.folder_uid)
                                  .interval(GROUP_INTERVALS_S[spec.group]))
        group.with_rule(build_rule(spec, s, panel_ids[(spec.dashboard_uid, spec.panel_title)]))
    return [group.build() for group in groups.values()]
