"""`llmrel explain` and `llmrel recommend` through the real Typer app and embedded store."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from llmrel.cli import app
from llmrel.findings import write_findings
from tests.intel.helpers import insert_calls, make_call
from tests.intel.test_explain import PROMPT_KEY, _calls, _violations

runner = CliRunner()


def test_explain_prints_the_planted_cause(store, settings) -> None:
    calls = _calls(2000)
    insert_calls(store, calls)
    bad = [c for c in calls if c.attributes[PROMPT_KEY] == "v7" and c.tenant == "globex"]
    findings = _violations(bad)
    write_findings(store, findings)
    url = ["--clickhouse-url", settings.clickhouse_url]
    result = runner.invoke(app, ["explain", findings[0].finding_id, *url])
    assert result.exit_code == 0, result.output
    assert "likely cause" in result.output and "tenant=globex" in result.output
    result = runner.invoke(app, ["explain", findings[0].finding_id, "--json", *url])
    data = json.loads(result.output)
    assert set(data["top_cause"].split(" & ")) == {f"attr:{PROMPT_KEY}=v7", "tenant=globex"}
    result = runner.invoke(app, ["explain", "f" * 32, *url])
    assert result.exit_code == 1 and "no finding" in result.output


def test_recommend_prints_the_cheaper_model(store, settings) -> None:
    calls = [make_call(i, model=m, request_model=m, cost_usd=c, status_code="Error" if i % 50 == 0 else "Ok",
                       trace_id=f"{m}-{i}".ljust(32, "0")[:32])
             for m, c, n in (("gpt-4o", 0.01, 1000), ("gpt-4o-mini", 0.001, 600)) for i in range(n)]
    insert_calls(store, calls)
    url = ["--clickhouse-url", settings.clickhouse_url, "--since", "2020-01-01"]
    result = runner.invoke(app, ["recommend", *url])
    assert result.exit_code == 0, result.output
    assert "switch gpt-4o -> gpt-4o-mini" in result.output
    groups = json.loads(runner.invoke(app, ["recommend", "--json", *url]).output)
    assert groups[0]["recommendation"]["to_model"] == "gpt-4o-mini"
    assert runner.invoke(app, ["recommend", "--since", "whenever"]).exit_code == 2
