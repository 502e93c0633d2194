"""Output-content drift: a topic switch at constant length is found, paraphrases of the same answers are not."""

from __future__ import annotations

import random

from llmrel.findings import write_findings
from llmrel.intel.content_drift import METRIC, ContentDriftConfig, ContentDriftMonitor
from llmrel.intel.simulate import answer
from tests.intel.helpers import T0, make_call


def _stream(n: int, switch_at: int | None = None, seed: int = 1, text: bool = True):
    rng = random.Random(seed)
    return [make_call(i, output_tokens=40, duration_ns=900_000_000,
                      output_text=(answer(rng, "shipping" if switch_at is not None and i >= switch_at else "refund")
                                   if text else ""))
            for i in range(n)]


def test_topic_switch_is_detected_and_written(store) -> None:
    monitor = ContentDriftMonitor()
    calls = _stream(3000, switch_at=1500)
    findings = monitor.process(calls, now_ns=T0)
    assert len(findings) == 1
    drift = findings[0]
    assert drift.metric == METRIC and drift.kind == "drift" and drift.service_name == "support"
    window = monitor.config.window
    assert calls[1500].timestamp_ns <= drift.event_time_ns + window * 1_000_000_000  # onset within one window
    assert drift.event_time_ns < calls[1500 + window].timestamp_ns
    assert drift.observed is not None and drift.observed >= monitor.config.min_distance
    # Same length before and after: only the content moved.
    assert abs(float(drift.attributes["before.words"]) - float(drift.attributes["after.words"])) < 3
    assert set(drift.attributes["new_terms"].split(",")) & {"tracking", "link", "delivery", "courier", "parcel"}
    write_findings(store, findings)
    stored = store.query("SELECT Metric, Message FROM llm_findings FINAL WHERE FindingId = {id:String}",
                         parameters={"id": drift.finding_id}).result_rows
    assert stored and stored[0][0] == METRIC and "output content changed" in stored[0][1]


def test_paraphrases_of_the_same_answers_raise_no_alarm() -> None:
    monitor = ContentDriftMonitor(ContentDriftConfig())
    findings = monitor.process(_stream(10_000, seed=2), now_ns=T0)
    assert monitor.tests == (10_000 - 400) // 200
    assert findings == []


def test_without_content_the_detector_says_it_is_off() -> None:
    monitor = ContentDriftMonitor()
    assert monitor.process(_stream(500, text=False), now_ns=T0) == []
    status = monitor.status()
    assert status["enabled"] is False and "content capture is off" in str(status["reason"])
    assert status["calls_without_content"] == 500
