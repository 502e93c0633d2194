"""One sender's spans cannot fail the others' writes: inserts stay within the store's partition limit.

`otel_traces` and `llm_calls` are partitioned by day, and ClickHouse refuses an insert whose rows
fall in more than `max_partitions_per_insert_block` (100) partitions. A request covering more days
is stored whole, and exports batched with it are unaffected; a request the store refuses for its
data is refused alone, with a status that tells the sender not to retry.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from llmrel.receiver.partitions import day_function, split_by_day
from tests.otlp_builders import chat_span, request
from tests.receiver.conftest import export_raw

DAY_NS = 86_400 * 10**9


def spread_over_days(first: int, days: int, trace: int) -> list:
    """One chat span per day, `days` days in a row."""
    spans = []
    for day in range(days):
        span = chat_span(first + day, trace=trace)
        span.start_time_unix_nano += day * DAY_NS
        span.end_time_unix_nano += day * DAY_NS
        spans.append(span)
    return spans


def test_a_request_covering_150_days_is_stored_whole(receiver, query):
    body = request(spread_over_days(1, 150, trace=7)).SerializeToString()
    response = ExportTraceServiceResponse.FromString(export_raw(receiver.grpc_port, body))
    assert not response.HasField("partial_success")
    assert query("SELECT count(), uniqExact(toDate(Timestamp)) FROM otel_traces") == [(150, 150)]
    assert query("SELECT count() FROM llm_calls") == [(150,)]
    assert query("SELECT count() FROM otel_traces_trace_id_ts") == [(2,)]  # one row per insert block


def test_a_wide_request_does_not_fail_the_exports_batched_with_it(make_receiver, query):
    receiver = make_receiver(batch_max_wait_ms=200)  # long enough for every export below to share a batch
    wide = request(spread_over_days(10_000, 120, trace=99)).SerializeToString()
    others = [request([chat_span(i)]).SerializeToString() for i in range(1, 9)]
    with ThreadPoolExecutor(len(others) + 1) as pool:
        results = list(pool.map(lambda body: export_raw(receiver.grpc_port, body), [wide, *others]))
    assert all(not ExportTraceServiceResponse.FromString(r).HasField("partial_success") for r in results)
    assert query("SELECT count() FROM otel_traces") == [(128,)]
    assert receiver.metrics.insert_failures._value.get() == 0


def test_rows_the_store_refuses_fail_only_their_own_export_and_are_not_retried(make_receiver, query):
    """The store's limit is lowered behind the receiver's back, so one export's rows are refused by
    the real engine; the exports batched with it are committed on their own."""
    receiver = make_receiver(batch_max_wait_ms=300)
    receiver._write_client.set_client_setting("max_partitions_per_insert_block", "3")
    refused = request(spread_over_days(50_000, 10, trace=5)).SerializeToString()
    others = [request([chat_span(i)]).SerializeToString() for i in range(1, 5)]
    outcomes: dict[int, grpc.StatusCode] = {}

    def send(index: int, body: bytes) -> None:
        try:
            export_raw(receiver.grpc_port, body)
            outcomes[index] = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            outcomes[index] = exc.code()

    threads = [threading.Thread(target=send, args=(i, b)) for i, b in enumerate([refused, *others])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == {0: grpc.StatusCode.INVALID_ARGUMENT, 1: grpc.StatusCode.OK, 2: grpc.StatusCode.OK,
                        3: grpc.StatusCode.OK, 4: grpc.StatusCode.OK}
    assert query("SELECT count() FROM otel_traces") == [(4,)]
    assert receiver.metrics.insert_failures._value.get() >= 1


@pytest.mark.parametrize("timezone", ["UTC", "Asia/Kolkata", "America/St_Johns", "Australia/Lord_Howe"])
def test_days_are_the_partitions_the_store_computes(store, timezone):
    rng = random.Random(16)
    stamps = [rng.randrange(0, (1 << 32) * 10**9) for _ in range(2_000)] + [0, (1 << 32) * 10**9 - 1]
    day_of = day_function(timezone)
    expected = store.query(
        "SELECT toUInt32(toDate(fromUnixTimestamp64Nano(ts, {tz:String}))) FROM "
        "(SELECT arrayJoin({stamps:Array(Int64)}) AS ts)",
        parameters={"tz": timezone, "stamps": stamps}).result_rows
    assert [day_of(ts) for ts in stamps] == [row[0] for row in expected]


def test_split_by_day_keeps_blocks_within_the_limit():
    rows = [d * DAY_NS + 5 for d in range(250)] + [3]
    blocks = split_by_day(rows, lambda ts: ts, day_function("UTC"), 100)
    assert [len(days) for days, _ in blocks] == [100, 100, 50]
    assert sorted(r for _, block in blocks for r in block) == sorted(rows)
    assert split_by_day(rows[:5], lambda ts: ts, day_function("UTC"), 100) == [(frozenset(range(5)), rows[:5])]
