"""The serve-side wiring: output-content drift written through the findings writer, then explained."""

from __future__ import annotations

import random

from llmrel.intel.content_drift import RULE_ID
from llmrel.intel.explain import stored_explanation
from llmrel.intel.runtime import Intel
from llmrel.intel.simulate import answer
from llmrel.store import connect
from tests.intel.helpers import insert_calls, make_call


def test_output_drift_after_a_release_is_written_and_explained(store, settings) -> None:
    rng = random.Random(8)
    calls = [make_call(i, model="gpt-4o", service_version="v2" if i >= 1500 else "v1", output_tokens=40,
                       output_text=answer(rng, "shipping" if i >= 1500 else "refund"), tenant=rng.choice("abcd"))
             for i in range(3000)]
    insert_calls(store, calls)
    intel = Intel(settings, lambda: connect(settings))
    try:
        drifts = [d for offset in range(0, len(calls), 250) for d in intel.handle(calls[offset:offset + 250], [])]
    finally:
        intel.close()
    assert [d.rule_id for d in drifts] == [RULE_ID]
    stored = store.query("SELECT count() FROM llm_findings FINAL WHERE RuleId = {r:String}",
                         parameters={"r": RULE_ID}).result_rows[0][0]
    assert stored == 1
    explanation = stored_explanation(store, drifts[0].finding_id)
    assert explanation is not None and explanation["top_cause"] == "service_version=v2"
    assert intel.status()["content_drift"]["enabled"] is True
