"""Agent traces through the real receiver: `llmrel report` counts the LLM calls, not the agent roots.

The repro of the defect, as a user ran it: `benchmarks/otlp_load.py --convention genai --spans-per-trace 4`
(an agent root over three LLM calls per trace, some calls rate-limited and their root marked Error),
then `llmrel report --json`: it said 1,024 calls for 768 LLM spans and counted each failure twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmrel.report import build_report
from llmrel.store import connect
from tests.instrumentation.helpers import clean_env
from tests.instrumentation.serve import LLMREL

LOAD = Path(__file__).resolve().parents[2] / "benchmarks" / "otlp_load.py"


def send_agent_traces(port: int, convention: str) -> dict[str, int]:
    done = subprocess.run([sys.executable, str(LOAD), "--port", str(port), "--convention", convention,
                           "--spans-per-trace", "4", "--traces", "256"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_report_counts_the_llm_calls_of_genai_agent_traces(receiver, settings):
    sent = send_agent_traces(receiver.grpc_port, "genai")
    assert (sent["spans"], sent["llm_spans"]) == (1024, 768) and sent["llm_errors"] > 0
    env = {"LLMREL_CLICKHOUSE_URL": settings.clickhouse_url, "COLUMNS": "200"}
    report = subprocess.run([str(LLMREL), "report", "--json", "--api", f"http://127.0.0.1:{receiver.http_port}"],
                            env=clean_env(env), capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    totals = json.loads(report.stdout)["totals"]
    assert (totals["calls"], totals["errors"]) == (sent["llm_spans"], sent["llm_errors"])


@pytest.mark.parametrize("convention", ["openinference", "openllmetry"])
def test_every_convention_counts_the_same_calls(receiver, settings, convention):
    sent = send_agent_traces(receiver.grpc_port, convention)
    client = connect(settings)
    try:
        report = build_report(client, 0)
        stored_spans = client.query("SELECT count() FROM otel_traces").result_rows[0][0]
    finally:
        client.close()
    assert stored_spans == sent["spans"] == 1024
    totals = report["totals"]
    assert (totals["calls"], totals["errors"]) == (sent["llm_spans"], sent["llm_errors"])
    # Errors are grouped under the model that was asked for, with that model's successes.
    assert all(row["model"] in ("gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet-20241022")
               for row in report["by_service_model"])
