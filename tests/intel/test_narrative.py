"""The optional narrative against the local OpenAI-compatible simulator; an endpoint down never blocks."""

from __future__ import annotations

import json
import socket

from llmrel.demo import Simulator, SimulatorConfig
from llmrel.findings import write_findings
from llmrel.intel.explain import explain_and_store, stored_explanation
from llmrel.intel.narrative import Narrator
from tests.intel.helpers import insert_calls
from tests.intel.test_explain import PROMPT_KEY, _calls, _violations

FAST = SimulatorConfig(seed=7, latency_median_s=0.0, ttft_median_s=0.0, rate_limit_rate=0.0, server_error_rate=0.0)


def _planted(store) -> str:
    calls = _calls(1500)
    insert_calls(store, calls)
    bad = [c for c in calls if c.attributes[PROMPT_KEY] == "v7" and c.tenant == "globex"]
    findings = _violations(bad)
    write_findings(store, findings)
    return findings[0].finding_id


def test_narrative_is_generated_from_the_numbers_and_stored(store) -> None:
    finding_id = _planted(store)
    with Simulator(FAST).run() as sim:
        narrator = Narrator(sim.base_url, "gpt-4o-mini", "test-key", timeout_s=10)
        explanation = explain_and_store(store, finding_id, narrator)
    facts = narrator.facts(explanation.as_dict())
    assert set(facts) == {"finding", "verdict", "affected_calls", "baseline_calls", "causes"}
    given = json.dumps(facts)
    assert "helpful answer" not in given and "question" not in given  # numbers only, never a call's content
    stored = stored_explanation(store, finding_id)
    assert stored is not None and stored["narrative"] and stored["narrative_model"] == "gpt-4o-mini"
    assert stored["verdict"] == "explained"


def test_endpoint_down_stores_the_explanation_without_narrative(store) -> None:
    finding_id = _planted(store)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    explanation = explain_and_store(store, finding_id, Narrator(f"http://127.0.0.1:{port}/v1", "m", timeout_s=2))
    stored = stored_explanation(store, finding_id)
    assert stored is not None and stored["narrative"] == "" and stored["narrative_model"] == ""
    assert stored["top_cause"] == explanation.contrast.causes[0].cause
