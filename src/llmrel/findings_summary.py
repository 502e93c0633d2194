"""Reading findings back: recent findings (CLI, REST API) and the findings + cost-of-failures report section."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client
from rich.console import Console
from rich.table import Table

_FINDING_FIELDS: tuple[tuple[str, str], ...] = (
    ("finding_id", "FindingId"), ("kind", "Kind"), ("rule_id", "RuleId"), ("severity", "Severity"),
    ("service", "ServiceName"), ("model", "Model"), ("operation", "Operation"), ("feature", "Feature"),
    ("tenant", "Tenant"), ("metric", "Metric"), ("trace_id", "TraceId"), ("span_id", "SpanId"),
    ("observed", "Observed"), ("expected", "Expected"), ("message", "Message"), ("calls", "Calls"),
    ("cost_usd", "CostUSD"), ("impact_usd", "ImpactUSD"), ("confidence", "Confidence"),
    ("event_time_ns", "toUnixTimestamp64Nano(EventTime)"),
    ("detected_at_ns", "toUnixTimestamp64Nano(toDateTime64(DetectedAt, 9))"),
    ("likely_cause", "e.TopCause"),
)
# The top cause stored by the intelligence layer (`llm_explanations`, schema 009), '' until explained.
_EXPLANATIONS = ("LEFT JOIN (SELECT FindingId, argMax(TopCause, ComputedAt) AS TopCause FROM llm_explanations "
                 "GROUP BY FindingId) AS e USING (FindingId)")
_FILTERS = {"kind": "Kind", "service": "ServiceName", "rule": "RuleId", "severity": "Severity",
            "model": "Model", "tenant": "Tenant", "feature": "Feature"}


_TIME_COLUMNS = {"detected": "DetectedAt", "event": "EventTime"}


def recent_findings(client: Client, since_ns: int, *, limit: int = 100, by: str = "detected",
                    **filters: str | None) -> list[dict[str, Any]]:
    """Findings detected (`by="detected"`) or whose event/onset time is (`by="event"`) since `since_ns`,
    newest first, optionally filtered. Polling clients want detection time: a drift is found minutes
    after its onset.

    Args:
        filters: any of kind, service, rule, severity, model, tenant, feature (exact match).
    """
    unknown = set(filters) - set(_FILTERS)
    if unknown:
        raise ValueError(f"unknown filters {sorted(unknown)}")
    if by not in _TIME_COLUMNS:
        raise ValueError(f"by must be one of {sorted(_TIME_COLUMNS)}")
    time_column = _TIME_COLUMNS[by]
    where = [f"{time_column} >= fromUnixTimestamp64Nano({{since:Int64}})"]
    params: dict[str, Any] = {"since": since_ns, "limit": limit}
    for name, value in filters.items():
        if value:
            where.append(f"{_FILTERS[name]} = {{{name}:String}}")
            params[name] = value
    columns = ", ".join(expr for _, expr in _FINDING_FIELDS)
    rows = client.query(
        f"SELECT {columns} FROM llm_findings FINAL {_EXPLANATIONS} WHERE {' AND '.join(where)} "
        f"ORDER BY {time_column} DESC, FindingId LIMIT {{limit:UInt32}}", parameters=params).result_rows
    return [dict(zip((k for k, _ in _FINDING_FIELDS), row, strict=True)) for row in rows]


def findings_summary(client: Client, since_ns: int, *, top: int = 20) -> dict[str, Any]:
    """Counts by kind and severity, cost of failures per service/model/feature/rule, and recent drifts."""
    params = {"since": since_ns, "top": top}
    since = "EventTime >= fromUnixTimestamp64Nano({since:Int64})"
    totals_row = client.query(
        f"SELECT count(), sum(Calls), sum(CostUSD), sum(ImpactUSD) FROM llm_findings FINAL WHERE {since}",
        parameters=params).result_rows[0]
    by = {
        column: dict(client.query(f"SELECT {column}, count() FROM llm_findings FINAL WHERE {since} "
                                  f"GROUP BY {column} ORDER BY {column}", parameters=params).result_rows)
        for column in ("Kind", "Severity")
    }
    keys = ("service", "model", "feature", "kind", "rule_id", "severity", "findings", "calls", "cost_usd",
            "impact_usd", "total_usd")
    cost_rows = client.query(
        "SELECT ServiceName, Model, Feature, Kind, RuleId, any(Severity), count(), sum(Calls), sum(CostUSD), "
        f"sum(ImpactUSD), sum(CostUSD + ImpactUSD) AS total FROM llm_findings FINAL WHERE {since} "
        "GROUP BY ServiceName, Model, Feature, Kind, RuleId ORDER BY total DESC, count() DESC LIMIT {top:UInt32}",
        parameters=params).result_rows
    return {
        "since_ns": since_ns,
        "totals": {"findings": int(totals_row[0]), "calls": int(totals_row[1] or 0),
                   "cost_usd": round(float(totals_row[2] or 0.0), 6),
                   "impact_usd": round(float(totals_row[3] or 0.0), 6),
                   "by_kind": {k: int(v) for k, v in by["Kind"].items()},
                   "by_severity": {k: int(v) for k, v in by["Severity"].items()}},
        "cost_of_failures": [dict(zip(keys, row, strict=True)) for row in cost_rows],
        "recent_drifts": recent_findings(client, since_ns, limit=10, kind="drift"),
    }


def render_findings_summary(console: Console, summary: dict[str, Any]) -> None:
    """The findings section of `llmrel report` (console)."""
    totals = summary["totals"]
    kinds = ", ".join(f"{k} {v}" for k, v in totals["by_kind"].items()) or "none"
    console.print(f"[bold]Findings[/bold]: {totals['findings']} ({kinds}); spend of failing calls "
                  f"${totals['cost_usd']:.4f}, declared impact ${totals['impact_usd']:.2f}")
    if summary["cost_of_failures"]:
        table = Table(title="Cost of failures", show_lines=False)
        for header in ("service", "model", "feature", "kind", "rule", "severity", "findings", "calls",
                       "spend $", "impact $", "total $"):
            table.add_column(header, justify="right" if header.endswith("$") or header in ("findings", "calls")
                             else "left")
        for r in summary["cost_of_failures"]:
            table.add_row(r["service"], r["model"], r["feature"], r["kind"], r["rule_id"], r["severity"],
                          str(r["findings"]), str(r["calls"]), f"{r['cost_usd']:.4f}", f"{r['impact_usd']:.2f}",
                          f"{r['total_usd']:.4f}")
        console.print(table)
    for drift in summary["recent_drifts"]:
        console.print(f"  drift {drift['service']}/{drift['model']}/{drift['operation']}: {drift['message']}")
