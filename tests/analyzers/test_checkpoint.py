"""Checkpoints are data only: hostile or malformed rows in `llm_analyzer_state` are rejected, never run.

Real embedded ClickHouse store; the rows are inserted as anyone with INSERT on the table could.
"""

from __future__ import annotations

import base64
import json
import pickle
import time
import zlib
from pathlib import Path

import pytest

from llmrel.analyzers.engine import Engine
from llmrel.analyzers.ruleset import load_ruleset
from llmrel.analyzers.runtime import Analyzer
from llmrel.analyzers.sink import STATE_COLUMNS, STATE_TABLE
from llmrel.analyzers.testing import SCENARIOS, Traffic, generate

from .helpers import T0, make_call


class _Exploit:
    """Unpickling this creates the file named by `path` (what an attacker's payload would do)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _insert_row(store, analyzer_id: str, blob: str, version: int | None = None) -> None:
    row = (analyzer_id, version or time.time_ns() * 10, 0, "", "", blob)  # far-future version: always "latest"
    store.insert(STATE_TABLE, [row], column_names=list(STATE_COLUMNS))


def _rejected(analyzer: Analyzer) -> float:
    return analyzer.metrics.registry.get_sample_value("llmrel_analyzer_checkpoints_rejected_total") or 0.0


@pytest.mark.parametrize("analyzer_id", ["serve", "analyze-0-of-1"])
def test_a_pickled_checkpoint_row_is_never_unpickled(store, settings, tmp_path, analyzer_id):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"version": 1, "streams": _Exploit(marker)})
    _insert_row(store, analyzer_id, base64.b64encode(zlib.compress(payload)).decode())
    _insert_row(store, analyzer_id, base64.b64encode(payload).decode(), version=time.time_ns() * 10 + 1)
    _insert_row(store, f"{analyzer_id}/stream/x", payload.decode("latin-1"))

    analyzer = Analyzer.from_settings(settings, store, analyzer_id=analyzer_id)

    assert not marker.exists()
    assert _rejected(analyzer) >= 1
    assert analyzer.engine.calls_seen == 0 and not analyzer.engine.streams
    assert [f.rule_id for f in analyzer.on_commit([make_call(1, status_code="Error")])] == ["call-error"]
    analyzer.close()  # its own checkpoint now supersedes the hostile rows
    assert Analyzer.from_settings(settings, store, analyzer_id=analyzer_id).engine.calls_seen == 1


@pytest.mark.parametrize("blob", [
    "{}", "[]", "null", "not json", '{"format": 3, "rules": {}}',
    '{"format": 3, "config": "x", "rules": {"r": {"fingerprint": 7}}, "newest_ns": 0, "calls_seen": 0}',
    '{"format": 3, "config": "x", "rules": {}, "newest_ns": "soon", "calls_seen": -1}',
    '{"format": 3, "config": "x", "rules": {}, "newest_ns": 0, "calls_seen": 0, "exec": "os.system"}',
], ids=["empty", "list", "null", "text", "future-version", "wrong-type", "bad-values", "extra-field"])
def test_a_malformed_checkpoint_is_logged_counted_and_ignored(store, settings, blob):
    _insert_row(store, "serve", blob)
    analyzer = Analyzer.from_settings(settings, store)
    assert _rejected(analyzer) == 1
    assert analyzer.engine.calls_seen == 0
    assert analyzer.on_commit([make_call(1)]) == []
    analyzer.close()


def test_a_malformed_stream_row_drops_that_stream_only(store, settings):
    first = Analyzer.from_settings(settings, store)
    first.on_commit([make_call(i) for i in range(40)] + [make_call(100 + i, service_name="other") for i in range(40)])
    first.close()
    _insert_row(store, "serve/stream/support\x1fgpt-4o\x1fchat", '{"format": 3, "key": ["a"], "monitors": 1}')
    second = Analyzer.from_settings(settings, store)
    assert _rejected(second) == 1
    assert set(second.engine.streams) == {("other", "gpt-4o", "chat")}
    assert second.engine.calls_seen == 80


def test_round_trip_restores_detection_exactly(store, settings):
    calls = list(generate(Traffic(), 4000, seed=21, shift=SCENARIOS[1], start_ns=T0))
    reference = Engine(load_ruleset())
    for i in range(0, 2950, 150):
        reference.process(calls[i:min(i + 150, 2950)], now_ns=1)
    first = Analyzer.from_settings(settings, store)
    for i in range(0, 2950, 150):
        first.process(calls[i:min(i + 150, 2950)], now_ns=1)
    first.checkpoint()
    second = Analyzer.from_settings(settings, store)
    def states(engine: Engine) -> dict:
        return {k: json.dumps(s.state(), sort_keys=True) for k, s in (*engine.streams.items(), *engine.pooled.items())}

    assert states(second.engine) == states(reference)
    expected = [f.finding_id for i in range(2950, 4000, 150) for f in reference.process(calls[i:i + 150], now_ns=1)]
    found = [f.finding_id for i in range(2950, 4000, 150) for f in second.process(calls[i:i + 150], now_ns=1)]
    assert found == expected and any(f for f in found)


def test_thousands_of_model_names_from_one_sender_stay_under_the_cap(store, settings, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("drift:\n  max_streams: 200\n")
    analyzer = Analyzer.from_settings(settings.model_copy(update={"rules_file": rules}), store)
    for batch in range(5):
        analyzer.on_commit([make_call(i, request_model=f"junk-{i}", model=f"junk-{i}")
                            for i in range(batch * 1000, (batch + 1) * 1000)])
    assert len(analyzer.engine.streams) == 200
    assert analyzer.metrics.registry.get_sample_value("llmrel_drift_streams_evicted_total") == 4800
    analyzer.checkpoint()
    # idle streams are not written again: the next checkpoint holds only the streams used since
    analyzer.on_commit([make_call(10_000, request_model="junk-4999", model="junk-4999")])
    assert len(analyzer.engine.stream_rows()) == 3  # the stream, its service and the root
    analyzer.checkpoint()
    restarted = Analyzer.from_settings(settings.model_copy(update={"rules_file": rules}), store)
    assert len(restarted.engine.streams) == 200
    assert ("support", "junk-4999", "chat") in restarted.engine.streams
