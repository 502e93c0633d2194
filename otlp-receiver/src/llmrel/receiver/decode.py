"""OTLP trace requests -> `SpanRecord`s. Pure: no I/O, no clocks, no globals.

Mirrors the Collector's ClickHouse exporter row mapping (REFERENCE §1.2): `Timestamp` is the
span start, `Duration` end-start in ns, ids lowercase hex, `ServiceName` from the resource's
`service.name`, enum names as pdata prints them. Spans that cannot be stored faithfully
(bad ids, end before start, times the store cannot hold) are rejected one by one and reported,
the rest are kept. `check_decoded_size` refuses, before any of that work, a request whose decoded
form would be too large.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llmrel.model import SpanRecord
from llmrel.receiver.flatten import any_value_to_string

SPAN_KINDS: tuple[str, ...] = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES: tuple[str, ...] = ("Unset", "Ok", "Error")
_MAX_ERRORS_REPORTED = 5
_MAX_NAME_REPORTED = 60
_MAX_TIME_NS = 1 << 63  # DateTime64(9) holds signed 64-bit nanoseconds
# Span starts feed toDate()/toDateTime() (partitions, TTL, the trace-id index): DateTime is
# UInt32 seconds, so a start at or after 2106-02-07 06:28:16 UTC would wrap around to 1970.
_MAX_START_NS = (1 << 32) * 1_000_000_000

# Memory that decoding one element costs beyond its wire bytes (upb message, Python objects, both
# tables' Native rows), and how many times the wire bytes are held at once (parsed strings, Python
# strings, Native encoding); measured with benchmarks/decode_inflation.py.
DECODED_BYTES_PER_SPAN = 1536
DECODED_BYTES_PER_ITEM = 192  # an attribute, array or map element, event, link, resource or scope
DECODED_COPIES_OF_WIRE = 6


_DECODE_ERRORS = (ValueError, TypeError, RecursionError)


class InvalidRequest(ValueError):
    """The request as a whole cannot be decoded (maps to INVALID_ARGUMENT / HTTP 400)."""


class RequestTooLarge(Exception):
    """The request would take too much memory to decode (maps to RESOURCE_EXHAUSTED / HTTP 413, not retried)."""


@dataclass
class Rejections:
    """Spans rejected one by one: how many, and the first few reasons (the partial-success message)."""

    count: int = 0
    reasons: list[str] = field(default_factory=list)

    def add(self, reason: str, count: int = 1) -> None:
        self.count += count
        if len(self.reasons) < _MAX_ERRORS_REPORTED:
            self.reasons.append(reason)

    def span(self, name: str, problem: str) -> None:
        shown = name if len(name) <= _MAX_NAME_REPORTED else name[:_MAX_NAME_REPORTED] + "..."
        self.add(f"span {shown!r}: {problem}")

    def summary(self) -> str:
        shown = "; ".join(self.reasons)
        more = self.count - len(self.reasons)
        return f"{shown}; and {more} more" if more > 0 else shown


@dataclass
class DecodeResult:
    """Spans ready to store, plus the spans rejected individually."""

    spans: list[SpanRecord] = field(default_factory=list)
    rejections: Rejections = field(default_factory=Rejections)

    @property
    def rejected(self) -> int:
        return self.rejections.count

    @property
    def errors(self) -> list[str]:
        return self.rejections.reasons


class DecodeBudget:
    """Running estimate of a request's decoded size, refused the moment it passes the limit.

    `check_decoded_size` charges what the parsed message shows at a glance (spans, attributes, events,
    links); `decode_request` charges the elements of array and map values as it renders them.
    """

    def __init__(self, wire_bytes: int, limit: int) -> None:
        self.wire_bytes = wire_bytes
        self.limit = limit
        self.total = DECODED_COPIES_OF_WIRE * wire_bytes

    def charge(self, items: int, size: int = DECODED_BYTES_PER_ITEM) -> None:
        """Add `items` elements of `size` bytes.

        Raises:
            RequestTooLarge: the estimate is now over the limit.
        """
        self.total += items * size
        if self.total > self.limit:
            raise RequestTooLarge(
                f"the request would take more than {self.limit >> 20} MiB to decode ({self.wire_bytes} bytes on "
                "the wire); send fewer spans, attributes, events or links per request (e.g. the collector's "
                "batch send_batch_max_size)")


def check_decoded_size(request: ExportTraceServiceRequest, wire_bytes: int, limit: int) -> DecodeBudget:
    """Estimate the memory decoding `request` takes, refusing it as soon as the estimate passes `limit`.

    Returns:
        The budget, to pass on to `decode_request`.

    Raises:
        RequestTooLarge: the estimate is over `limit`.
    """
    budget = DecodeBudget(wire_bytes, limit)
    per_span, per_item = DECODED_BYTES_PER_SPAN, DECODED_BYTES_PER_ITEM
    budget.charge(len(request.resource_spans))
    for resource_spans in request.resource_spans:
        budget.charge(len(resource_spans.scope_spans) + len(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            spans = scope_spans.spans
            budget.charge(len(spans), per_span)
            budget.charge(len(scope_spans.scope.attributes))
            items = 0  # checked once per span: one addition here, not a call
            for span in spans:
                events, links = span.events, span.links
                items += len(span.attributes) + len(events) + len(links)
                if events or links:
                    budget.charge(items)
                    items = 0
                    if events:
                        budget.charge(sum(len(event.attributes) for event in events))
                    if links:
                        budget.charge(sum(len(link.attributes) for link in links))
                elif items * per_item > limit:
                    budget.charge(items)
            budget.charge(items)
    return budget


def parse_protobuf_request(body: bytes) -> ExportTraceServiceRequest:
    """Parse a binary `ExportTraceServiceRequest`.

    Raises:
        InvalidRequest: not a valid message (including invalid UTF-8 in string fields).
        RequestTooLarge: parsing it needs more memory than the process may use.
    """
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
        return request
    except (DecodeError, ValueError, MemoryError) as exc:
        failure = exc  # no allocation here: memory may be exhausted until the partial message is freed
    del request
    if isinstance(failure, MemoryError) or "alloc failed" in str(failure):
        raise RequestTooLarge(f"the request ({len(body)} bytes) takes more memory to parse than one request may; "
                              "send fewer spans, attributes, events or links per request")
    raise InvalidRequest(f"body is not a valid protobuf ExportTraceServiceRequest: {failure}")


def parse_json_request(body: bytes) -> ExportTraceServiceRequest:
    """Parse an OTLP/JSON request: hex ids, int64 as strings or numbers, unknown fields ignored.

    Raises:
        InvalidRequest: not JSON, not the OTLP shape, or ids that are not hex.
    """
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidRequest("body must be a JSON object (ExportTraceServiceRequest)")
    try:
        _hex_ids_to_base64(document)
        return json_format.ParseDict(document, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise InvalidRequest(f"body is not a valid OTLP/JSON ExportTraceServiceRequest: {exc}") from None


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """OTLP/JSON carries ids as hex; protobuf's JSON mapping expects base64 for bytes."""
    for resource_spans in _dicts(document.get("resourceSpans", document.get("resource_spans"))):
        for scope_spans in _dicts(resource_spans.get("scopeSpans", resource_spans.get("scope_spans"))):
            for span in _dicts(scope_spans.get("spans")):
                _convert_ids(span, "span")
                for link in _dicts(span.get("links")):
                    _convert_ids(link, "link")


def _dicts(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError("expected a list of objects")
    return value


def _convert_ids(obj: dict[str, Any], where: str) -> None:
    for key in ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"):
        value = obj.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise ValueError(f"{where} {key} must be a hex string")
        try:
            obj[key] = base64.b64encode(bytes.fromhex(value)).decode()
        except ValueError:
            raise ValueError(f"{where} {key} is not hex: {value[:40]!r}") from None


def decode_request(request: ExportTraceServiceRequest, budget: DecodeBudget | None = None) -> DecodeResult:
    """Flatten a request into `SpanRecord`s, rejecting individually invalid spans.

    Raises:
        RequestTooLarge: array and map values hold more elements than `budget` allows.
    """
    charge = budget.charge if budget is not None else None

    def _attributes(key_values: Any) -> dict[str, str]:
        return {kv.key: any_value_to_string(kv.value, charge) for kv in key_values}

    result = DecodeResult()
    spans, rejected = result.spans, result.rejections
    hexlify = binascii.hexlify
    for resource_spans in request.resource_spans:
        try:
            resource_attrs = _attributes(resource_spans.resource.attributes)
        except _DECODE_ERRORS as exc:
            count = sum(len(s.spans) for s in resource_spans.scope_spans)
            rejected.add(f"{count} span(s): resource attributes cannot be decoded: {type(exc).__name__}", count)
            continue
        service = resource_attrs.get("service.name", "")
        for scope_spans in resource_spans.scope_spans:
            scope_name = scope_spans.scope.name
            scope_version = scope_spans.scope.version
            for span in scope_spans.spans:
                trace_id, span_id = span.trace_id, span.span_id
                problem = _span_problem(span)
                if problem:
                    rejected.span(span.name, problem)
                    continue
                start = span.start_time_unix_nano
                events = span.events
                links = span.links
                try:
                    record = SpanRecord(
                        start,
                        hexlify(trace_id).decode(),
                        hexlify(span_id).decode(),
                        _hex_id(span.parent_span_id),
                        span.trace_state,
                        span.name,
                        SPAN_KINDS[span.kind] if 0 <= span.kind < len(SPAN_KINDS) else "Unspecified",
                        service,
                        resource_attrs,
                        scope_name,
                        scope_version,
                        _attributes(span.attributes),
                        span.end_time_unix_nano - start,
                        STATUS_CODES[span.status.code] if 0 <= span.status.code < len(STATUS_CODES) else "Unset",
                        span.status.message,
                        [e.time_unix_nano for e in events],
                        [e.name for e in events],
                        [_attributes(e.attributes) for e in events],
                        [_hex_id(link.trace_id) for link in links],
                        [_hex_id(link.span_id) for link in links],
                        [link.trace_state for link in links],
                        [_attributes(link.attributes) for link in links],
                    )
                except _DECODE_ERRORS as exc:
                    rejected.span(span.name, f"cannot be decoded: {type(exc).__name__}")
                    continue
                spans.append(record)
    return result


def _hex_id(raw: bytes) -> str:
    return raw.hex() if raw.strip(b"\0") else ""


def _span_problem(span: Span) -> str:
    trace_id, span_id, parent_id = span.trace_id, span.span_id, span.parent_span_id
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if len(trace_id) != 16 or not trace_id.strip(b"\0"):
        return f"trace_id must be 16 non-zero bytes, got {len(trace_id)} bytes"
    if len(span_id) != 8 or not span_id.strip(b"\0"):
        return f"span_id must be 8 non-zero bytes, got {len(span_id)} bytes"
    if parent_id and len(parent_id) != 8:
        return f"parent_span_id must be empty or 8 bytes, got {len(parent_id)} bytes"
    if start == 0:
        return "start_time_unix_nano is missing"
    if end < start:
        return "end_time_unix_nano is before start_time_unix_nano"
    if start >= _MAX_START_NS:
        return "start_time_unix_nano is after 2106-02-07 06:28:15 UTC (the range of the store's DateTime)"
    if end >= _MAX_TIME_NS or any(e.time_unix_nano >= _MAX_TIME_NS for e in span.events):
        return "a timestamp is beyond year 2262 (the DateTime64(9) range)"
    return ""
