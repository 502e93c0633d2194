"""The one way spans become `llm_calls` rows, and the one writer of that table.

Spans received over OTLP (the receiver's `prepare` and `writer`) and spans another writer stored in
`otel_traces` (`llmrel analyze`) take the same steps: the content policy (`llmrel.content_policy`),
normalization (`llmrel.normalize`), pricing (`llmrel.pricing`), rows in `LLM_CALL_COLUMNS` order,
and the insert. Repricing stored calls (`reprice`) rewrites them here too. No other module inserts
into `llm_calls` (tests/architecture/test_one_writer.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from clickhouse_connect.driver.client import Client

from llmrel.content_policy import content_transform
from llmrel.model import LLM_CALL_COLUMNS, LlmCall, SpanRecord, call_from_columns
from llmrel.native_rows import encode_each
from llmrel.normalize import normalize_span
from llmrel.price_file import load_price_file
from llmrel.pricing import Pricer
from llmrel.seams import CallPricer, Normalizer

log = structlog.get_logger(__name__)

CALLS_TABLE = "llm_calls"


class CallIngest:
    """Spans -> priced `LlmCall`s under one content policy and one price table. Picklable inputs only,
    so worker processes build their own from the receiver's configuration.

    Args:
        content_policy: `full`, `redacted` or `off` (`llmrel.content_policy`).
        prices_file: custom prices and model aliases (`llmrel.price_file`), or the built-in table.

    Raises:
        ValueError: an unknown content policy.
        PriceFileError: listing every problem in the price file.
    """

    def __init__(self, content_policy: str = "full", prices_file: Path | None = None) -> None:
        self._transform = content_transform(content_policy)
        self._normalize: Normalizer = normalize_span
        self._price: CallPricer = Pricer(load_price_file(prices_file) if prices_file else None).price

    @classmethod
    def from_settings(cls, settings: Any) -> CallIngest:
        """The adapter of `settings.content_policy` and `settings.prices_file`."""
        return cls(settings.content_policy, settings.prices_file)

    def apply_content_policy(self, spans: list[SpanRecord],
                             reject: Callable[[str, str], None]) -> list[SpanRecord]:
        """The content policy on every span about to be stored; a span it fails on is rejected (`reject`
        gets its name and why) rather than stored unredacted."""
        transform = self._transform
        if transform is None:
            return spans
        kept, first_failure = [], None
        for span in spans:
            try:
                kept.append(transform(span))
            except Exception as exc:
                reject(span.span_name, f"content policy failed: {type(exc).__name__}")
                first_failure = first_failure or (span, exc)
        if first_failure is not None:
            failed, error = first_failure
            log.warning("content_policy_failed", spans=len(spans) - len(kept), trace_id=failed.trace_id,
                        span_id=failed.span_id, error=repr(error)[:200])
        return kept

    def calls(self, spans: Sequence[SpanRecord]) -> tuple[list[LlmCall], int]:
        """Normalized, priced calls of spans already under the content policy, and how many spans failed to
        normalize (each is stored without a call; the first failure is logged)."""
        calls, failures, first_failure = [], 0, None
        for span in spans:
            try:
                call = self._normalize(span)
                if call is not None:
                    calls.append(self._price(call))
            except Exception as exc:
                failures += 1
                first_failure = first_failure or (span, exc)
        _log_failures("normalize_failed", failures, first_failure)
        return calls, failures

    def stored_calls(self, spans: Sequence[SpanRecord],
                     keep: Callable[[LlmCall], bool] | None = None) -> list[LlmCall]:
        """Calls of spans another writer stored, as the receiver would have built them: the content policy
        is applied to the span of each call `keep` accepts (spans that are no call are left alone), then
        normalized and priced. A span the policy or the normalizer fails on gives no call (logged), never
        an unredacted one."""
        transform = self._transform
        calls, failures, first_failure = [], 0, None
        for span in spans:
            try:
                call = self._normalize(span)
                if call is None or (keep is not None and not keep(call)):
                    continue
                if transform is not None and (clean := transform(span)) is not span:
                    call = self._normalize(clean)  # the content fields as the policy left them
                    if call is None:
                        continue
                calls.append(self._price(call))
            except Exception as exc:
                failures += 1
                first_failure = first_failure or (span, exc)
        _log_failures("stored_span_not_ingested", failures, first_failure)
        return calls

    @staticmethod
    def encode(calls: list[LlmCall], types: Sequence[Any]) -> tuple[bytes, list[LlmCall], int]:
        """`calls` as Native blocks for `insert_encoded`, the calls encoded, and how many the encoder refused
        (left out and logged; their spans are stored without a call)."""
        native, bad = encode_each(CALLS_TABLE, LLM_CALL_COLUMNS, types, calls)
        if not bad:
            return native, calls, 0
        log.warning("llm_call_not_encodable", calls=len(bad), span_id=calls[bad[0]].span_id)
        refused = set(bad)
        return native, [c for i, c in enumerate(calls) if i not in refused], len(bad)


def _log_failures(event: str, failures: int, first: tuple[SpanRecord, Exception] | None) -> None:
    """One error line for a batch's failed spans, with the first span and its exception."""
    if first is not None:
        span, error = first
        log.error(event, spans=failures, trace_id=span.trace_id, span_id=span.span_id, exc_info=error)


def insert_encoded(client: Client, blocks: Sequence[bytes]) -> None:
    """One insert of calls encoded by `CallIngest.encode` (a no-op for none). `llm_calls` is a
    ReplacingMergeTree keyed by (TraceId, SpanId): a retried batch collapses."""
    body = b"".join(blocks)
    if body:
        client.raw_insert(CALLS_TABLE, list(LLM_CALL_COLUMNS), insert_block=body, fmt="Native")


class StoredSpanCalls:
    """`llmrel.seams.StoredSpanIngest` on one store: the adapter for spans another writer stored in
    `otel_traces`, with the lookup that keeps a call from being inserted twice."""

    def __init__(self, client: Client, ingest: CallIngest) -> None:
        self._client = client
        self._ingest = ingest

    def calls(self, spans: Sequence[SpanRecord], keep: Callable[[LlmCall], bool] | None = None) -> list[LlmCall]:
        return self._ingest.stored_calls(spans, keep)

    def stored(self, calls: Sequence[LlmCall]) -> set[tuple[str, str]]:
        """(TraceId, SpanId) of those of `calls` that `llm_calls` already holds."""
        if not calls:
            return set()
        rows = self._client.query(
            "SELECT TraceId, SpanId FROM llm_calls WHERE Timestamp BETWEEN fromUnixTimestamp64Nano({low:Int64}) "
            "AND fromUnixTimestamp64Nano({high:Int64}) AND TraceId IN {traces:Array(String)}",
            parameters={"low": min(c.timestamp_ns for c in calls), "high": max(c.timestamp_ns for c in calls),
                        "traces": sorted({c.trace_id for c in calls})}).result_rows
        return {(t, s) for t, s in rows}

    def store(self, calls: Sequence[LlmCall]) -> None:
        """One insert of `calls` (a no-op for none); the caller leaves out those `stored` found."""
        if calls:
            self._client.insert(CALLS_TABLE, list(calls), column_names=list(LLM_CALL_COLUMNS))


def reprice(client: Client, pricer: Pricer, since_ns: int, until_ns: int | None = None) -> int:
    """Recompute the cost of stored `llm_calls` with `since_ns <= Timestamp < until_ns`.

    `llm_calls` is a ReplacingMergeTree on `IngestedAt`, so a changed row is re-inserted with a
    newer `IngestedAt` and replaces the old one at merge time. Each touched daily partition is
    then merged with `OPTIMIZE ... FINAL`, so queries without `FINAL` (the dashboards') see only
    the new costs right away: repricing is an occasional admin task, and rewriting the touched
    days is an acceptable price for that. Rows are read one hour at a time to bound memory.

    Returns:
        Number of rows whose cost or cost status changed.
    """
    window = "Timestamp >= fromUnixTimestamp64Nano(toInt64(%(since)s))"
    params: dict[str, object] = {"since": since_ns}
    if until_ns is not None:
        window += " AND Timestamp < fromUnixTimestamp64Nano(toInt64(%(until)s))"
        params["until"] = until_ns
    hours = client.query(
        f"SELECT _partition_id, toUnixTimestamp(toStartOfHour(Timestamp)) AS hour FROM llm_calls "
        f"WHERE {window} GROUP BY _partition_id, hour ORDER BY hour", parameters=params).result_rows
    select = ", ".join(_READ_EXPRESSIONS)
    touched: set[str] = set()
    changed_total = 0
    for partition, hour in hours:
        rows = client.query(
            f"SELECT {select}, toUnixTimestamp64Milli(IngestedAt) AS IngestedAtMs FROM llm_calls FINAL "
            f"WHERE _partition_id = %(partition)s AND toUnixTimestamp(toStartOfHour(Timestamp)) = %(hour)s "
            f"AND {window}",
            parameters={**params, "partition": partition, "hour": hour}).named_results()
        changed = _repriced_rows(pricer, rows)
        if changed:
            client.insert(CALLS_TABLE, changed, column_names=[*LLM_CALL_COLUMNS, "IngestedAt"])
            touched.add(partition)
            changed_total += len(changed)
    for partition in sorted(touched):
        client.command(f"OPTIMIZE TABLE llm_calls PARTITION ID '{_partition_literal(partition)}' FINAL")
    return changed_total


def _repriced_rows(pricer: Pricer, rows: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows (`llm_calls` columns + `IngestedAtMs`) whose cost changes, with a newer `IngestedAt`."""
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    changed = []
    for row in rows:
        call = call_from_columns({**row, "Timestamp": row["TimestampNs"]})
        repriced = pricer.price(call)
        if (repriced.cost_usd, repriced.cost_status) != (call.cost_usd, call.cost_status):
            ingested_ms = max(now_ms, row["IngestedAtMs"] + 1)
            changed.append((*repriced, datetime.fromtimestamp(ingested_ms / 1000, UTC)))
    return changed


_READ_EXPRESSIONS = tuple("toUnixTimestamp64Nano(Timestamp) AS TimestampNs" if c == "Timestamp" else f"`{c}`"
                          for c in LLM_CALL_COLUMNS)


def _partition_literal(partition: str) -> str:
    if not partition.replace("-", "").isalnum():
        raise ValueError(f"unexpected partition id {partition!r}")
    return partition
