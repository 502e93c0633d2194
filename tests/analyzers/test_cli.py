"""`llmrel rules check|test`, `llmrel findings`, `llmrel analyze --once` through the real Typer app and store."""

from __future__ import annotations

import json
import textwrap

from typer.testing import CliRunner

from llmrel.cli import app
from llmrel.model import LLM_CALL_COLUMNS

from .helpers import make_call
from .test_tail import _traffic, _write

runner = CliRunner()


def test_rules_check_lists_problems_with_lines(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - id: a\n    kind: bounds\n    field: latency\n")
    result = runner.invoke(app, ["rules", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:4: rule 'a': field must be one of" in result.output
    good = tmp_path / "good.yaml"
    good.write_text("rules:\n  - {id: slow, kind: bounds, field: latency_ms, max: 30000}\n")
    result = runner.invoke(app, ["rules", "check", str(good)])
    assert result.exit_code == 0 and "ok (11 rules" in result.output


def test_rules_test_replays_stored_calls_without_writing(store, settings, tmp_path):
    calls = [make_call(i, output_tokens=40 + i, cost_usd=0.01) for i in range(100)]
    store.insert("llm_calls", calls, column_names=list(LLM_CALL_COLUMNS))
    rules = tmp_path / "r.yaml"
    rules.write_text(textwrap.dedent("""\
        rules:
          - {id: long-answers, kind: bounds, field: output_tokens, max: 119, impact_usd: 0.1}
          - {id: answer-format, kind: regex, pattern: '^A ', must: match}
        """))
    result = runner.invoke(app, ["rules", "test", str(rules), "--since", "2020-01-01", "--json",
                                 "--clickhouse-url", settings.clickhouse_url])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["calls"] == 100
    [row] = data["rules"]
    assert (row["rule_id"], row["findings"], round(row["cost_usd"], 6)) == ("long-answers", 20, 0.2)
    assert round(row["impact_usd"], 6) == 2.0
    assert store.query("SELECT count() FROM llm_findings").result_rows[0][0] == 0


def test_analyze_once_then_findings(store, settings, monkeypatch):
    # The command configures process-wide logging onto the runner's captured stderr; keep the test's own.
    monkeypatch.setattr("llmrel.logging.configure_logging", lambda *args, **kwargs: None)
    _write(store, _traffic(60))
    result = runner.invoke(app, ["analyze", "--once", "--clickhouse-url", settings.clickhouse_url])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["findings", "--since", "2020-01-01", "--kind", "invariant", "--json",
                                 "--clickhouse-url", settings.clickhouse_url])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 6 and {r["rule_id"] for r in rows} == {"call-error"}
    result = runner.invoke(app, ["findings", "--since", "2020-01-01", "--clickhouse-url", settings.clickhouse_url])
    assert result.exit_code == 0 and "6 finding(s)" in result.output


def test_rules_test_accepts_a_file_that_builds_on_default_rules(store, settings, tmp_path):
    calls = [make_call(i, finish_reason="length" if i % 2 else "stop") for i in range(60)]
    store.insert("llm_calls", calls, column_names=list(LLM_CALL_COLUMNS))
    rules = tmp_path / "r.yaml"
    rules.write_text(textwrap.dedent("""\
        disable: [refusal]
        rules:
          - {id: truncation-rate, kind: window_rate, of: output-truncated, window: 10m, threshold: 0.2,
             min_calls: 20, by: [service], severity: error}
        """))
    result = runner.invoke(app, ["rules", "test", str(rules), "--since", "2020-01-01", "--json",
                                 "--clickhouse-url", settings.clickhouse_url])
    assert result.exit_code == 0, result.output
    assert [r["rule_id"] for r in json.loads(result.output)["rules"]] == ["truncation-rate"]
