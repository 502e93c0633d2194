"""Request bytes -> rows ready to insert: parse, decode, then the one span -> call adapter
(`llmrel.calls_ingest`: content policy, normalize, price), and both tables' rows encoded in
ClickHouse's Native format. Pure CPU work with no I/O, so it can run in worker processes
(`llmrel.receiver.workers`) and use every core, leaving the process that owns the store to insert
bytes, acknowledge and analyze.

Small requests (fewer than `PrepareConfig.encode_min_spans` spans) are left unencoded: the group
commit encodes the rows of all its small requests as one Native block (`RowEncoder`). The embedded
engine pays about 1.5 ms per Native block it receives, whatever its size, and encoding has a fixed
cost per call too, so 400 one-span requests cost ~700 ms as 400 blocks and ~100 ms as one.

A failure confined to one span (the content policy raising, a value the encoder refuses) rejects
that span alone through partial success; the rest of the request is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from clickhouse_connect.datatypes.registry import get_from_name
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from llmrel.calls_ingest import CallIngest
from llmrel.model import LLM_CALL_COLUMNS, SPAN_COLUMNS, LlmCall, SpanRecord
from llmrel.native_rows import encode, encode_each
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
_DECODED_BYTES_PER_SPAN = 4096  # memory estimate of a span's Python values (spans from the ClickHouse route)


class RowBlock(NamedTuple):
    """Rows of one request within at most `max_partitions` daily partitions, encoded for insertion, or
    (a small request) left for the group commit to encode with others: `spans`/`calls` then hold the
    rows, the `*_native` fields are empty, and `raw_bytes` estimates the memory the rows hold."""

    days: frozenset[int]
    spans_native: bytes
    calls_native: bytes
    span_count: int
    spans: tuple[SpanRecord, ...] = ()
    calls: tuple[LlmCall, ...] = ()
    raw_bytes: int = 0

    @property
    def encoded(self) -> bool:
        return not self.spans


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
        """Memory these rows hold until committed: the encoded blocks (or the estimate for rows left
        unencoded), and the calls kept for the analyzers."""
        return sum(len(b.spans_native) + 2 * len(b.calls_native) + b.raw_bytes for b in self.blocks)


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
    encode_min_spans: int = 32  # smaller requests are encoded by the group commit, together


class Encoded(NamedTuple):
    spans_native: bytes
    calls_native: bytes
    refused_spans: list[int]  # indexes of the spans left out
    calls: list[LlmCall]  # the calls encoded
    refused_calls: int  # calls the encoder refused (their spans are stored)


class RowEncoder:
    """Encodes `otel_traces` and `llm_calls` rows in the Native format of the store's column types."""

    def __init__(self, span_types: Sequence[str], call_types: Sequence[str]) -> None:
        self._span_types = [get_from_name(t) for t in span_types]
        self._call_types = [get_from_name(t) for t in call_types]

    def spans(self, spans: Sequence[SpanRecord]) -> bytes:
        return encode("otel_traces", SPAN_COLUMNS, self._span_types, spans)

    def calls(self, calls: Sequence[LlmCall]) -> bytes:
        return encode("llm_calls", LLM_CALL_COLUMNS, self._call_types, calls)

    def block(self, spans: Sequence[SpanRecord], calls: Sequence[LlmCall]) -> Encoded:
        """Encode `spans` and their `calls`, leaving out the spans the encoder refuses (and their calls)."""
        spans_native, bad = encode_each("otel_traces", SPAN_COLUMNS, self._span_types, spans)
        if bad:
            refused = {(spans[i].trace_id, spans[i].span_id) for i in bad}
            calls = [c for c in calls if (c.trace_id, c.span_id) not in refused]
        calls_native, encoded_calls, refused_calls = CallIngest.encode(list(calls), self._call_types)
        return Encoded(spans_native, calls_native, bad, encoded_calls, refused_calls)


class Preparer:
    """Turns request bodies into `Prepared` rows with one configuration."""

    def __init__(self, config: PrepareConfig) -> None:
        self._ingest = CallIngest(config.content_policy, config.prices_file)
        self._encoder = RowEncoder(config.span_types, config.call_types)
        self._encode_min_spans = config.encode_min_spans
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
            budget = check_decoded_size(request, len(body), self._max_decoded)
            decoded = decode_request(request, budget)
        except MemoryError:
            out_of_memory = True  # no allocation here: the except block's end frees what the decode built
        request = None  # the parsed message can be as large as the rows: free it before encoding
        if out_of_memory:
            raise RequestTooLarge("the request takes more memory to decode than one request may; "
                                  "send fewer spans, attributes, events or links per request")
        return self._prepared(decoded.spans, decoded.rejections, budget.total)

    def prepare_spans(self, spans: list[SpanRecord]) -> Prepared:
        """Prepare spans another protocol delivered as `otel_traces` rows (the ClickHouse HTTP interface)."""
        return self._prepared(spans, Rejections(), len(spans) * _DECODED_BYTES_PER_SPAN)

    def _prepared(self, spans: list[SpanRecord], rejections: Rejections, decoded_bytes: int) -> Prepared:
        spans = self._ingest.apply_content_policy(spans, rejections.span)
        blocks, calls, failures = [], [], 0
        raw_bytes_per_span = decoded_bytes // max(1, len(spans))
        for days, block_spans in split_by_day(spans, _start, self._day_of, self._max_partitions):
            if len(block_spans) < self._encode_min_spans:
                block_calls, block_failures = self._ingest.calls(block_spans)
                block = RowBlock(days, b"", b"", len(block_spans), tuple(block_spans), tuple(block_calls),
                                 raw_bytes_per_span * len(block_spans))
            else:
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
        prepared = self.prepare(ExportTraceServiceRequest(resource_spans=[ResourceSpans(
            scope_spans=[ScopeSpans(spans=[span])])]).SerializeToString(), False)
        for block in prepared.blocks:
            self._encoder.block(block.spans, block.calls)

    def _encode_block(self, days: frozenset[int], spans: list[SpanRecord],
                      rejections: Rejections) -> tuple[RowBlock, list[LlmCall], int]:
        calls, failures = self._ingest.calls(spans)
        encoded = self._encoder.block(spans, calls)
        for i in encoded.refused_spans:
            rejections.span(spans[i].span_name, "a value cannot be stored")
        block = RowBlock(days, encoded.spans_native, encoded.calls_native, len(spans) - len(encoded.refused_spans))
        return block, encoded.calls, failures + encoded.refused_calls


def _start(span: SpanRecord) -> int:
    return span.timestamp_ns
