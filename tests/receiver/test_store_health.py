"""Store health: the free-space reserve refuses commits and pauses merges, readiness says why,
detached parts are reported at start. (The real full disk is in `test_disk_full.py`.)"""

from __future__ import annotations

import os
import time

import grpc
import httpx
import pytest

from llmrel.receiver.metrics import ReceiverMetrics
from llmrel.receiver.storehealth import DiskGuard, StoreHealth, StoreUnavailable
from llmrel.store import connect
from tests.otlp_builders import chat_span, request
from tests.receiver.conftest import export_raw

_MIB = 1024 * 1024


class Volume:
    """A volume whose free space the test sets; counts how often it was measured."""

    def __init__(self, free_mib: int) -> None:
        self.free = free_mib * _MIB
        self.measured = 0

    def __call__(self, _path) -> int:
        self.measured += 1
        return self.free


def _merges_stopped(client) -> bool:
    # With merges stopped, a real OPTIMIZE is cancelled (ABORTED).
    try:
        client.command("OPTIMIZE TABLE llm_calls FINAL")
    except Exception as exc:
        return "ABORTED" in str(exc) or "Cancelled" in str(exc)
    return False


def test_reserve_refuses_commits_pauses_merges_and_resumes_with_margin(settings, store, tmp_path):
    volume = Volume(100)
    metrics = ReceiverMetrics()
    guard = DiskGuard(tmp_path, 32 * _MIB, connect(settings), metrics, free_bytes=volume, interval_s=3600)
    health = StoreHealth(guard)
    try:
        health.before_commit()
        assert health.problem() is None
        store.insert("llm_calls", [("2025-01-01 00:00:00", "t", "s")], column_names=["Timestamp", "TraceId", "SpanId"])
        store.insert("llm_calls", [("2025-01-01 00:00:01", "t", "s2")], column_names=["Timestamp", "TraceId", "SpanId"])
        volume.free = 20 * _MIB
        with pytest.raises(StoreUnavailable, match="below the reserve of 32 MiB"):
            health.before_commit()
        assert "below the reserve" in (health.problem() or "")
        assert metrics.store_disk_low._value.get() == 1
        assert _merges_stopped(store)
        volume.free = 40 * _MIB  # above the reserve but within the margin: still paused (no flapping)
        guard.check()
        assert guard.low
        volume.free = 60 * _MIB
        guard.check()  # the guard's round verifies the parts written since the incident, then resumes
        assert not guard.low
        health.before_commit()
        assert health.problem() is None
        assert not _merges_stopped(store)
    finally:
        health.close()


def test_commit_refused_below_reserve_is_unavailable_and_readyz_says_why(make_receiver, query):
    receiver = make_receiver(min_free_disk_mib=1)
    port = receiver.http_port
    assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
    receiver._health.guard._reserve = 1 << 60  # no volume has this much free space
    receiver._health.guard._resume_at = 1 << 61
    with pytest.raises(grpc.RpcError) as caught:
        export_raw(receiver.grpc_port, request([chat_span(1)]).SerializeToString())
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "below the reserve" in caught.value.details()
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
    assert ready.status_code == 503 and "below the reserve" in ready.json()["reason"]
    assert query("SELECT count() FROM otel_traces") == [(0,)]
    assert query("SELECT count() FROM llm_calls") == [(0,)]


def test_engine_out_of_space_starts_an_incident_and_a_broken_part_is_recovered(settings, store, tmp_path):
    """Without a reserve, the engine's NOT_ENOUGH_SPACE starts the incident; on recovery a part whose data file
    is empty (what a merge caught by a full disk commits) is set aside and the parts it replaced come back."""
    store.command("CREATE TABLE merged (a UInt64, s String) ENGINE = MergeTree ORDER BY a "
                  "SETTINGS old_parts_lifetime = 480")
    for i in range(4):
        store.command(f"INSERT INTO merged SELECT number + {i * 1000}, toString(number) FROM numbers(1000)")
    store.command("OPTIMIZE TABLE merged FINAL")
    path = store.query("SELECT path FROM system.parts WHERE database = currentDatabase() AND table = 'merged' "
                       "AND active").result_rows[0][0]
    metrics = ReceiverMetrics()
    guard = DiskGuard(tmp_path, 0, connect(settings), metrics, free_bytes=Volume(1000), interval_s=3600)
    health = StoreHealth(guard)
    try:
        health.failed(OSError("Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. "
                              "(NOT_ENOUGH_SPACE)"))
        assert guard.low
        with pytest.raises(StoreUnavailable):
            health.before_commit()
        os.truncate(os.path.join(path, "data.bin"), 0)  # the merge's output lost its data on the full disk
        guard.check()
        assert not guard.low
        assert metrics.store_tables_reloaded._value.get() == 1
        assert store.query("SELECT count(), uniqExact(a) FROM merged").result_rows == [(4000, 4000)]
        assert store.query("SELECT sum(a) FROM merged").result_rows == [(sum(range(4000)),)]
        assert store.query("SELECT reason FROM system.detached_parts WHERE database = currentDatabase() "
                           "AND table = 'merged'").result_rows == [("broken-on-start",)]
    finally:
        health.close()


def test_guard_rests_while_space_is_plentiful_and_watches_closely_during_an_incident(settings, store, tmp_path):
    """At rest with plenty of space the guard's thread does not measure; a commit refused below the reserve
    wakes it, and it then watches closely enough to resume on its own as soon as space is back."""
    volume = Volume(1000)
    guard = DiskGuard(tmp_path, 32 * _MIB, connect(settings), ReceiverMetrics(), free_bytes=volume,
                      interval_s=0.05, relaxed_interval_s=3600)
    try:
        time.sleep(0.5)
        assert volume.measured == 1  # the check at start only
        volume.free = 20 * _MIB
        assert not guard.writable()  # the writer's check before a commit starts the incident
        volume.free = 1000 * _MIB
        deadline = time.monotonic() + 10
        while guard.low and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not guard.low  # recovered by the guard's own rounds, nobody called check()
        measured = volume.measured
        time.sleep(0.5)
        assert volume.measured == measured  # plenty of space again: back to resting
    finally:
        guard.close()


def test_a_failing_commit_makes_the_store_not_ready_until_one_succeeds():
    health = StoreHealth()
    health.failed(OSError("Code: 243. NOT_ENOUGH_SPACE"))
    assert "NOT_ENOUGH_SPACE" in (health.problem() or "")
    health.committed()
    assert health.problem() is None


def test_detached_parts_are_reported_at_start(settings, store, make_receiver, caplog):
    store.insert("llm_calls", [("2025-01-01 00:00:00", "t", "s")], column_names=["Timestamp", "TraceId", "SpanId"])
    part = store.query("SELECT name FROM system.parts WHERE database = currentDatabase() AND table = 'llm_calls' "
                       "AND active").result_rows[0][0]
    store.command(f"ALTER TABLE llm_calls DETACH PART '{part}'")
    receiver = make_receiver()
    metrics = httpx.get(f"http://127.0.0.1:{receiver.http_port}/metrics").text
    assert 'llmrel_store_detached_parts{reason="detached",table="llm_calls"} 1.0' in metrics


def test_tables_are_durable_and_guarded_by_the_engine(store, settings):
    create = store.query("SHOW CREATE TABLE llm_calls").result_rows[0][0]
    for setting in ("fsync_after_insert = 1", "fsync_part_directory = 1",
                    "min_compressed_bytes_to_fsync_after_merge = 1",
                    f"min_free_disk_bytes_to_perform_insert = {settings.min_free_disk_mib * _MIB}"):
        assert setting in create, setting
