"""Root-cause contrast on the real embedded store: planted causes come out on top, noise gives none."""

from __future__ import annotations

import random

import pytest

from llmrel.findings import Finding, finding_id, write_findings
from llmrel.intel.explain import (
    FindingNotFoundError,
    explain,
    explain_and_store,
    stored_explanation,
    unexplained_findings,
)
from tests.intel.helpers import T0, insert_calls, make_call

PROMPT_KEY = "llmrel.prompt.version"
TENANTS = ("acme", "globex", "initech", "umbrella")
VERSIONS = ("v5", "v6", "v7")


def _calls(n: int, seed: int = 7, **overrides):
    rng = random.Random(seed)
    calls = []
    for i in range(n):
        calls.append(make_call(
            i, tenant=rng.choice(TENANTS), model=rng.choice(("gpt-4o", "gpt-4o-mini")),
            attributes={PROMPT_KEY: rng.choice(VERSIONS), "region": rng.choice(("eu", "us"))}, **overrides))
    return calls


def _violations(calls, rule: str = "json_valid"):
    return [Finding.for_call(kind="invariant", rule_id=rule, severity="error", call=c, metric="json_valid",
                             observed=None, expected=None, message="output is not valid JSON", impact_usd=0.0,
                             detected_at_ns=c.timestamp_ns + 1_000_000) for c in calls]


def test_prompt_version_in_one_tenant_is_the_top_cause(store) -> None:
    calls = _calls(3000)
    insert_calls(store, calls)
    bad = [c for c in calls if c.attributes[PROMPT_KEY] == "v7" and c.tenant == "globex"]
    write_findings(store, _violations(bad))
    explanation = explain_and_store(store, _violations(bad[:1])[0].finding_id)
    assert explanation.contrast.verdict == "explained"
    top = explanation.contrast.causes[0]
    assert set(top.cause.split(" & ")) == {f"attr:{PROMPT_KEY}=v7", "tenant=globex"}
    assert top.target_calls == len(bad) and top.baseline_calls == 0
    stored = stored_explanation(store, explanation.finding_id)
    assert stored is not None and stored["top_cause"] == top.cause and stored["verdict"] == "explained"
    assert "likely cause" in stored["summary"] and stored["causes"][0]["target_calls"] == len(bad)


def test_model_swap_on_one_service_version_points_at_that_version(store) -> None:
    rng = random.Random(3)
    onset = 2000
    calls = []
    for i in range(4000):
        version = "v2" if i >= onset and rng.random() < 0.5 else "v1"
        response = "gpt-4o-mini-2024-07-18" if version == "v2" else "gpt-4o-2024-08-06"
        calls.append(make_call(i, service_version=version, response_model=response, tenant=rng.choice(TENANTS),
                               model="gpt-4o"))
    insert_calls(store, calls)
    drift = Finding(
        finding_id=finding_id("drift", "model_swap_rate", "support", "gpt-4o", "chat", T0), kind="drift",
        rule_id="drift.model_swap_rate", severity="error", service_name="support", model="gpt-4o",
        operation="chat", feature="", tenant="", metric="model_swap_rate", trace_id="", span_id="",
        observed=0.5, expected=0.0, message="response model changed", calls=2000, cost_usd=0.0, impact_usd=0.0,
        confidence=0.99, event_time_ns=calls[onset].timestamp_ns, detected_at_ns=calls[-1].timestamp_ns,
        attributes={"to_model": "gpt-4o-mini-2024-07-18", "from_models": "gpt-4o-2024-08-06"})
    write_findings(store, [drift])
    contrast = explain(store, drift.finding_id).contrast
    assert contrast.verdict == "explained"
    assert contrast.causes[0].cause == "service_version=v2"
    assert all("response_model" not in c.cause for c in contrast.causes)  # the symptom itself is left out


def test_noise_gets_no_cause(store) -> None:
    calls = _calls(3000, seed=11)
    insert_calls(store, calls)
    rng = random.Random(5)
    bad = [c for c in calls if rng.random() < 0.05]
    write_findings(store, _violations(bad))
    explanation = explain_and_store(store, _violations(bad[:1])[0].finding_id)
    assert explanation.contrast.verdict == "unexplained"
    assert explanation.contrast.causes == ()
    assert explanation.summary.startswith("no single dimension explains it")
    assert unexplained_findings(store, T0) and explanation.finding_id not in unexplained_findings(store, T0)


def test_too_few_calls_say_so_and_unknown_finding_raises(store) -> None:
    calls = _calls(5)
    insert_calls(store, calls)
    write_findings(store, _violations(calls[:2]))
    assert explain(store, _violations(calls[:1])[0].finding_id).contrast.verdict == "insufficient"
    with pytest.raises(FindingNotFoundError):
        explain(store, "0" * 32)


def test_findings_list_carries_the_likely_cause(store) -> None:
    from llmrel.findings_summary import recent_findings

    calls = _calls(2000)
    insert_calls(store, calls)
    bad = [c for c in calls if c.attributes[PROMPT_KEY] == "v7" and c.tenant == "globex"]
    findings = _violations(bad)
    write_findings(store, findings)
    assert {r["likely_cause"] for r in recent_findings(store, T0, limit=1000)} == {""}
    explanation = explain_and_store(store, findings[0].finding_id)
    rows = {r["finding_id"]: r for r in recent_findings(store, T0, limit=1000)}
    assert rows[findings[0].finding_id]["likely_cause"] == explanation.contrast.causes[0].cause


def test_a_sampled_baseline_finds_the_same_cause(store) -> None:
    calls = _calls(3000)
    insert_calls(store, calls)
    bad = [c for c in calls if c.attributes[PROMPT_KEY] == "v7" and c.tenant == "globex"]
    write_findings(store, _violations(bad))
    full = explain(store, _violations(bad[:1])[0].finding_id)
    sampled = explain(store, _violations(bad[:1])[0].finding_id, sample_above=500)
    assert sampled.scope["baseline_sampled_1_in"] == 6 and full.scope["baseline_sampled_1_in"] == 1
    assert sampled.contrast.causes[0].cause == full.contrast.causes[0].cause
    assert sampled.contrast.target_calls == full.contrast.target_calls == len(bad)
    assert abs(sampled.contrast.baseline_calls - full.contrast.baseline_calls) < 0.15 * full.contrast.baseline_calls
