"""The Explanations dashboard: each finding with its likely cause (`llm_explanations`), the causes of one
finding, output-content drift, and the models of each feature compared on cost and quality.

A finding id cell links to this dashboard with that finding selected (the `finding_id` text box).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as dm

from llmrel.grafana.dashboards_calls import CALLS_WHERE
from llmrel.grafana.dashboards_findings import FINDINGS_WHERE
from llmrel.grafana.panels import Grid, assemble, data_table, single_stat, sql_string

EXPLANATIONS_UID = "llmrel-explanations"
FINDING_ID = f"lower(trimBoth({sql_string('finding_id')}))"
_EXPLAINED = ("FROM (SELECT FindingId, EventTime, Severity, RuleId, Kind, ServiceName, Model, Message "
              f"{FINDINGS_WHERE}) AS f INNER JOIN (SELECT * FROM llm_explanations FINAL) AS e USING (FindingId)")


def _finding_link() -> dm.DynamicConfigValue:
    url = f"/d/{EXPLANATIONS_UID}?var-finding_id=${{__value.raw}}&${{__url_time_range}}"
    return dm.DynamicConfigValue(id_val="links", value=[{"title": "Explain this finding", "url": url}])


def explanations() -> dash.Dashboard:
    grid = Grid()
    grid.add(single_stat("Findings explained", f"SELECT count() AS explained {_EXPLAINED}", "short"), w=8, h=4)
    grid.add(single_stat("With a likely cause", (
        f"SELECT countIf(e.Verdict = 'explained') / greatest(count(), 1) AS share {_EXPLAINED}"), "percentunit",
        "Share of explained findings whose affected calls share a dimension the baseline lacks."), w=8, h=4)
    grid.add(single_stat("Explanation time p95", f"SELECT quantile(0.95)(e.ElapsedMs) AS ms {_EXPLAINED}", "ms",
                         "Time to compute one explanation over the stored calls."), w=8, h=4)
    findings = data_table("Findings and their likely cause", (
        "SELECT f.EventTime AS time, f.Severity AS severity, f.RuleId AS rule, f.Kind AS kind, "
        "f.ServiceName AS service, f.Model AS model, e.Verdict AS verdict, e.TopCause AS likely_cause, "
        "e.Summary AS explanation, f.Message AS message, FindingId AS finding_id "
        f"{_EXPLAINED} ORDER BY time DESC LIMIT 200"),
        "Click a finding id to see all its causes below.")
    findings.override_by_name("finding_id", [_finding_link()])
    grid.add(findings, w=24, h=10)
    grid.add(data_table("Causes of the selected finding", (
        "SELECT FindingId AS finding_id, cause, target_calls AS affected_calls, baseline_calls, "
        "target_share AS affected_share, baseline_share, lift, p_value FROM llm_explanations FINAL "
        "ARRAY JOIN Causes.Cause AS cause, Causes.TargetCalls AS target_calls, Causes.BaselineCalls AS baseline_calls, "
        "Causes.TargetShare AS target_share, Causes.BaselineShare AS baseline_share, Causes.Lift AS lift, "
        f"Causes.PValue AS p_value WHERE FindingId = {FINDING_ID} ORDER BY target_share - baseline_share DESC"),
        "Each dimension=value (or pair) the affected calls share: share among them and in the baseline, lift, "
        "and the one-sided Fisher p-value corrected for the comparisons made."), w=24, h=8)
    grid.add(data_table("Most frequent causes", (
        "SELECT e.TopCause AS likely_cause, count() AS findings, uniqExact(f.RuleId) AS rules, "
        f"groupUniqArray(5)(f.RuleId) AS some_rules {_EXPLAINED} WHERE e.Verdict = 'explained' "
        "GROUP BY likely_cause ORDER BY findings DESC LIMIT 25"),
        "The causes that explain the most findings in the time range."), w=12, h=8)
    grid.add(data_table("Output content drift", (
        "SELECT EventTime AS since, ServiceName AS service, Model AS model, Operation AS operation, "
        "Observed AS distance, Confidence AS confidence, Attributes['new_terms'] AS rising_words, "
        f"Message AS message, FindingId AS finding_id {FINDINGS_WHERE} AND Kind = 'drift' "
        "AND Metric = 'output_content' ORDER BY since DESC LIMIT 100"),
        "Changes in what the model says (hashed word n-grams of stored output text), with the words that rose."),
        w=12, h=8)
    grid.add(data_table("Models compared on cost and quality", (
        "SELECT ServiceName AS service, Operation AS operation, Feature AS feature, Model AS model, "
        "count() AS calls, avg(StatusCode = 'Error') AS error_rate, "
        "quantile(0.95)(Duration) / 1e6 AS latency_p95_ms, avg(OutputTokens) AS output_tokens, "
        "sum(CostUSD) / greatest(countIf(StatusCode != 'Error'), 1) AS cost_per_success_usd "
        f"{CALLS_WHERE} AND Operation NOT IN ('execute_tool', 'invoke_agent', 'create_agent') "
        "GROUP BY service, operation, feature, model ORDER BY service, operation, feature, calls DESC LIMIT 200"),
        "Every model each feature used; `llmrel recommend` tests which cheaper one is not worse."), w=24, h=8)
    finding_id = dash.TextBoxVariable("finding_id").label("Finding ID")
    return assemble("LLM Explanations", EXPLANATIONS_UID,
                    "Why findings happened: what their calls share, output-content drift, cheaper models.", grid,
                    extra_variables=[finding_id])
