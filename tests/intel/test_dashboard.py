"""The Explanations dashboard's panels read what `explain` stored (queries expanded like Grafana does)."""

from __future__ import annotations

from llmrel.findings import write_findings
from llmrel.grafana.provisioning import build_bundle
from llmrel.intel.explain import explain_and_store
from tests.grafana.conftest import dashboard_queries
from tests.grafana.macros import ALL, expand_macros
from tests.intel.helpers import T0, insert_calls
from tests.intel.test_explain import PROMPT_KEY, _calls, _violations

QUERIES = {q.title: q.sql for q in dashboard_queries(build_bundle()) if q.dashboard == "llmrel-explanations"}


def _run(store, title: str, finding: str) -> list[tuple]:
    variables = {"environment": ALL, "service": ALL, "model": ALL, "feature": ALL, "tenant": ALL,
                 "finding_id": finding}
    sql = expand_macros(QUERIES[title], T0 // 1_000_000 - 3_600_000, T0 // 1_000_000 + 7_200_000, 60, variables)
    return store.query(sql).result_rows


def test_findings_show_their_likely_cause_and_causes(store) -> None:
    calls = _calls(2000)
    insert_calls(store, calls)
    bad = [c for c in calls if c.attributes[PROMPT_KEY] == "v7" and c.tenant == "globex"]
    findings = _violations(bad)
    write_findings(store, findings)
    explanation = explain_and_store(store, findings[0].finding_id)
    rows = _run(store, "Findings and their likely cause", "")
    assert len(rows) == 1 and rows[0][6] == "explained" and rows[0][7] == explanation.contrast.causes[0].cause
    causes = _run(store, "Causes of the selected finding", findings[0].finding_id.upper())
    assert causes[0][1] == explanation.contrast.causes[0].cause and causes[0][2] == len(bad)
    assert _run(store, "Causes of the selected finding", "x') OR 1=1 --") == []
