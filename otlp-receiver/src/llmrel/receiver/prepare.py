"""Request bytes -> rows ready to insert: parse, decode, content policy, normalize, price, and
encode both tables' rows in ClickHouse's Native format. Pure CPU work with no I/O, so it can run
in worker processes (`llmrel.receiver.workers`) and use every core, leaving the process that owns
the store to insert bytes, acknowledge and analyze.

A failure confined to one span (the content policy raising, a value the encoder refuses) rejects
that span alone through partial success; the rest of the request is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import structlog
from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.transform import NativeTransform
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from llmrel.model import LLM_CALL_COLUMNS, SPAN_COLUMNS, LlmCall, SpanRecord
from llmrel.receiver.content import content_transform
from llmrel.receiver.decode import (
    Rejections,
    RequestTooLarge,
    check_decoded_size,
    decode_request,
    parse_json_request,
    parse_protobuf_request,
)
from llmrel.receiver.partitions import day_function, split_by_day

log = structlog.get_logger(__name__)

_MIB = 1024 * 1024


class RowBlock(NamedTuple):
    """Rows of one request within at most `max_partitions` daily partitions, encoded for insertion."""

    days: frozenset[int]
    spans_native: bytes
    calls_native: bytes
    span_count: int


class Prepared(NamedTuple):
    """One request's rows, encoded for insertion, plus what the ack and the analyzers need.

    `blocks` holds one block unless the request's spans cover more days than one insert may.
    """

    blocks: tuple[RowBlock, ...]
    span_count: int
    calls: list[LlmCall]
    rejected: int
    message: str  # why spans were rejected (the partial-success message)
    normalize_errors: int

    @property
    def days(self) -> frozenset[int]:
        return frozenset().union(*(b.days for b in self.blocks))

    @property
    def held_bytes(self) -> int:
        """Memory these rows hold until committed: the encoded blocks, and the calls kept for the analyzers."""
        return sum(len(b.spans_native) + 2 * len(b.calls_native) for b in self.blocks)


@dataclass(frozen=True)
class PrepareConfig:
    """Everything a worker needs; picklable. Column types are ClickHouse type names in column order.

    `timezone` and `max_partitions` are the store's (`timezone()`, `max_partitions_per_insert_block`).
    """

    content_policy: str
    prices_file: Path | None
    span_types: tuple[str, ...]
    call_types: tuple[str, ...]
    timezone: str = "UTC"
    max_partitions: int = 100
    max_decoded_bytes: int = 512 * _MIB


def _encode(table: str, columns: Sequence[str], types: Sequence[Any], rows: Sequence[tuple]) -> bytes:
    if not rows:
        return b""
    context = InsertContext(table, list(columns), list(types), data=rows)
    encoded = b"".join(NativeTransform.build_insert(context))
    return encoded[encoded.index(b"\n") + 1:]  # drop the "INSERT ... FORMAT Native" line of the first block


def _encode_each(table: str, columns: Sequence[str], types: Sequence[Any],
                 rows: Sequence[tuple]) -> tuple[bytes, list[int]]:
    """Encode `rows`; rows the encoder refuses are left out and their indexes returned."""
    try:
        return _encode(table, columns, types, rows), []
    except Exception:  # find the culprits: rare, so row by row is fine
        bad = []
        for i, row in enumerate(rows):
            try:
                _encode(table, columns, types, [row])
            except Exception:
                bad.append(i)
        refused = set(bad)
        return _encode(table, columns, types, [r for i, r in enumerate(rows) if i not in refused]), bad


class Preparer:
    """Turns request bodies into `Prepared` rows with one configuration."""

    def __init__(self, config: PrepareConfig) -> None:
        from llmrel.normalize import normalize_span
        from llmrel.price_file import load_price_file
        from llmrel.pricing import Pricer

        self._normalize: Callable[[SpanRecord], LlmCall | None] = normalize_span
        self._price = Pricer(load_price_file(config.prices_file) if config.prices_file else None).price
        self._span_transform = content_transform(config.content_policy)
        self._span_types = [get_from_name(t) for t in config.span_types]
        self._call_types = [get_from_name(t) for t in config.call_types]
        self._day_of = day_function(config.timezone)
        self._max_partitions = config.max_partitions
        self._max_decoded = config.max_decoded_bytes

    def prepare(self, body: bytes, is_json: bool) -> Prepared:
        """Prepare one request body.

        Raises:
            InvalidRequest: the body is not a valid OTLP trace request.
            RequestTooLarge: decoding it would take more memory than one request may.
        """
        out_of_memory = False
        request = parse_json_request(body) if is_json else parse_protobuf_request(body)
        try:
            decoded = decode_request(request, check_decoded_size(request, len(body), self._max_decoded))
        except MemoryError:
            out_of_memory = True  # no allocation here: the except block's end frees what the decode built
        request = None  # the parsed message can be as large as the rows: free it before encoding
        if out_of_memory:
            raise RequestTooLarge("the request takes more memory to decode than one request may; "
                                  "send fewer spans, attributes, events or links per request")
        return self._prepared(decoded.spans, decoded.rejections)

    def prepare_spans(self, spans: list[SpanRecord]) -> Prepared:
        """Prepare spans another protocol delivered as `otel_traces` rows (the ClickHouse HTTP interface)."""
        return self._prepared(spans, Rejections())

    def _prepared(self, spans: list[SpanRecord], rejections: Rejections) -> Prepared:
        spans = self._apply_content_policy(spans, rejections)
        blocks, calls, failures = [], [], 0
        for days, block_spans in split_by_day(spans, _start, self._day_of, self._max_partitions):
            block, block_calls, block_failures = self._encode_block(days, block_spans, rejections)
            if block.span_count:
                blocks.append(block)
            calls.extend(block_calls)
            failures += block_failures
        return Prepared(tuple(blocks), sum(b.span_count for b in blocks), calls, rejections.count,
                        rejections.summary(), failures)

    def warm_up(self) -> None:
        """Prepare one LLM span, so every module and encoder preparation uses is loaded now."""
        span = Span(trace_id=b"\x01" * 16, span_id=b"\x01" * 8, name="chat warm-up", start_time_unix_nano=1,
                    end_time_unix_nano=2, attributes=[
                        KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")),
                        KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="gpt-4o-mini")),
                        KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=1))])
        self.prepare(ExportTraceServiceRequest(resource_spans=[ResourceSpans(
            scope_spans=[ScopeSpans(spans=[span])])]).SerializeToString(), False)

    def _apply_content_policy(self, spans: list[SpanRecord], rejections: Rejections) -> list[SpanRecord]:
        """The content policy on every span; a span it fails on is rejected rather than stored unredacted."""
        transform = self._span_transform
        if transform is None:
            return spans
        kept, first_failure = [], None
        for span in spans:
            try:
                kept.append(transform(span))
            except Exception as exc:
                rejections.span(span.span_name, f"content policy failed: {type(exc).__name__}")
                first_failure = first_failure or (span, exc)
        if first_failure is not None:
            span, exc = first_failure
            log.warning("content_policy_failed", spans=len(spans) - len(kept), trace_id=span.trace_id,
                        span_id=span.span_id, error=repr(exc)[:200])
        return kept

    def _encode_block(self, days: frozenset[int], spans: list[SpanRecord],
                      rejections: Rejections) -> tuple[RowBlock, list[LlmCall], int]:
        spans_native, bad = _encode_each("otel_traces", SPAN_COLUMNS, self._span_types, spans)
        if bad:
            for i in bad:
                rejections.span(spans[i].span_name, "a value cannot be stored")
            refused = set(bad)
            spans = [s for i, s in enumerate(spans) if i not in refused]
        calls, failures = self._calls(spans)
        calls_native, bad_calls = _encode_each("llm_calls", LLM_CALL_COLUMNS, self._call_types, calls)
        if bad_calls:
            log.warning("llm_call_not_encodable", calls=len(bad_calls), span_id=calls[bad_calls[0]].span_id)
            refused = set(bad_calls)
            calls = [c for i, c in enumerate(calls) if i not in refused]
        return RowBlock(days, spans_native, calls_native, len(spans)), calls, failures + len(bad_calls)

    def _calls(self, spans: list[SpanRecord]) -> tuple[list[LlmCall], int]:
        """Normalized, priced calls of the LLM spans; a span whose normalization fails is stored without one."""
        calls, failures, first_failure = [], 0, None
        for span in spans:
            try:
                call = self._normalize(span)
                if call is not None:
                    calls.append(self._price(call))
            except Exception as exc:
                failures += 1
                first_failure = first_failure or (span, exc)
        if first_failure is not None:
            span, exc = first_failure
            log.error("normalize_failed", spans=failures, trace_id=span.trace_id, span_id=span.span_id,
                      exc_info=exc)
        return calls, failures


def _start(span: SpanRecord) -> int:
    return span.timestamp_ns
