"""Request bytes -> rows ready to insert: parse, decode, then the one span -> call adapter
(`llmrel.calls_ingest`: content policy, normalize, price), and both tables' rows encoded in
ClickHouse's Native format. Pure CPU work with no I/O, so it can run in worker processes
(`llmrel.receiver.workers`) and use every core, leaving the process that owns the store to insert
bytes, acknowledge and analyze.

A failure confined to one span (the content policy raising, a value the encoder refuses) rejects
that span alone through partial success; the rest of the request is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from clickhouse_connect.datatypes.registry import get_from_name
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from llmrel.calls_ingest import CallIngest
from llmrel.model import SPAN_COLUMNS, LlmCall, SpanRecord
from llmrel.native_rows import encode_each
from llmrel.receiver.decode import (
    Rejections,
    RequestTooLarge,
    check_decoded_size,
    decode_request,
    parse_json_request,
    parse_protobuf_request,
)
from llmrel.receiver.partitions import day_function, split_by_day

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


class Preparer:
    """Turns request bodies into `Prepared` rows with one configuration."""

    def __init__(self, config: PrepareConfig) -> None:
        self._ingest = CallIngest(config.content_policy, config.prices_file)
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
        spans = self._ingest.apply_content_policy(spans, rejections.span)
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

    def _encode_block(self, days: frozenset[int], spans: list[SpanRecord],
                      rejections: Rejections) -> tuple[RowBlock, list[LlmCall], int]:
        spans_native, bad = encode_each("otel_traces", SPAN_COLUMNS, self._span_types, spans)
        if bad:
            for i in bad:
                rejections.span(spans[i].span_name, "a value cannot be stored")
            refused = set(bad)
            spans = [s for i, s in enumerate(spans) if i not in refused]
        calls, failures = self._ingest.calls(spans)
        calls_native, calls, refused_calls = self._ingest.encode(calls, self._call_types)
        return RowBlock(days, spans_native, calls_native, len(spans)), calls, failures + refused_calls


def _start(span: SpanRecord) -> int:
    return span.timestamp_ns
