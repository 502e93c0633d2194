"""Seeded mutations of OTLP trace requests, in protobuf and in OTLP/JSON, for fuzzing the receiver.

Three kinds of case: bytes flipped, inserted, cut or spliced in a valid protobuf body; a valid
request with fields set to the values that have broken receivers (boundary times, ids of every
length, deep or wide attribute values, spans over many days); and OTLP/JSON documents whose nodes
are replaced by values of other types, then sometimes corrupted as text. Everything derives from
one `random.Random`, so a seed replays a run exactly.
"""

from __future__ import annotations

import base64
import copy
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.otlp_builders import T0, chat_span, key_values, plain_span, request

DAY_NS = 86_400 * 10**9
BOUNDARY_TIMES = (0, 1, T0, (1 << 32) * 10**9 - 1, (1 << 32) * 10**9, (1 << 63) - 1, 1 << 63, (1 << 64) - 1)
_ID_KEYS = ("traceId", "spanId", "parentSpanId")


@dataclass(frozen=True)
class Case:
    """One fuzzed request: its body, how it is sent, and how it was made (for the failure message)."""

    body: bytes
    is_json: bool
    how: str


def seed_requests() -> list[ExportTraceServiceRequest]:
    """Valid requests covering every part of the message: resources, scopes, events, links, value types."""
    rich = chat_span(3, extra={"gen_ai.input.messages": '[{"role":"user","content":"hi"}]',
                               "gen_ai.request.temperature": 0.2, "flag": True, "blob": b"\x00\xff",
                               "list": [1, 2.5, "x", False]})
    rich.events.add(time_unix_nano=T0 + 5, name="gen_ai.content.prompt",
                    attributes=key_values({"gen_ai.prompt": "hello", "n": 3}))
    rich.links.add(trace_id=b"\x07" * 16, span_id=b"\x08" * 8, trace_state="k=v", attributes=key_values({"l": 1}))
    nested = AnyValue(kvlist_value=KeyValueList(values=[
        KeyValue(key="inner", value=AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1)])))]))
    rich.attributes.append(KeyValue(key="nested", value=nested))
    two_resources = request([chat_span(10), plain_span(11)], service="a")
    two_resources.resource_spans.extend(request([chat_span(12, model="claude-3-5-sonnet")], service="b").resource_spans)
    return [request([chat_span(1), plain_span(2)]), request([rich]), two_resources,
            request([chat_span(20 + i) for i in range(20)], **{"deployment.environment": "prod"})]


def to_otlp_json(message: ExportTraceServiceRequest) -> dict[str, Any]:
    """The request as OTLP/JSON: protobuf's JSON mapping with ids in hex, as the OTLP spec asks."""
    document = json_format.MessageToDict(message)

    def hexify(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _ID_KEYS and isinstance(value, str):
                    node[key] = base64.b64decode(value).hex()
                else:
                    hexify(value)
        elif isinstance(node, list):
            for item in node:
                hexify(item)

    hexify(document)
    return document


def _mutate_bytes(rng: random.Random, body: bytes, corpus: list[bytes]) -> tuple[bytes, str]:
    data = bytearray(body)
    kind = rng.choice(("flip", "set", "insert", "delete", "truncate", "repeat", "splice"))
    if not data:
        return bytes(rng.randbytes(rng.randrange(1, 64))), "random"
    position = rng.randrange(len(data))
    if kind == "flip":
        for _ in range(rng.randrange(1, 9)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "set":
        data[position] = rng.choice((0x00, 0x7F, 0x80, 0xFF, rng.randrange(256)))
    elif kind == "insert":
        data[position:position] = rng.randbytes(rng.randrange(1, 16))
    elif kind == "delete":
        del data[position:position + rng.randrange(1, 32)]
    elif kind == "truncate":
        del data[position:]
    elif kind == "repeat":
        end = min(len(data), position + rng.randrange(1, 64))
        data[position:position] = data[position:end] * rng.randrange(1, 8)
    else:
        other = rng.choice(corpus)
        data = data[:position] + other[rng.randrange(len(other)):]
    return bytes(data), kind


def _deep_value(depth: int) -> AnyValue:
    """An attribute value nested `depth` times (at most about 30: the protobuf library's own depth limit)."""
    value = AnyValue(string_value="leaf")
    for level in range(depth):
        if level % 2:
            value = AnyValue(array_value=ArrayValue(values=[value]))
        else:
            value = AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="k", value=value)]))
    return value


def varint(value: int) -> bytes:
    """Protobuf's base-128 varint encoding of a non-negative integer."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, written by hand."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def deep_request(depth: int) -> bytes:
    """A one-span request whose attribute value nests `depth` arrays: deeper than any parser allows."""
    value = field(1, b"leaf")  # AnyValue.string_value
    for _ in range(depth):
        value = field(5, field(1, value))  # AnyValue.array_value -> ArrayValue.values
    span = (field(1, b"\x01" * 16) + field(2, b"\x02" * 8) + field(5, b"deep")
            + b"\x39" + T0.to_bytes(8, "little") + b"\x41" + (T0 + 1).to_bytes(8, "little")
            + field(9, field(1, b"deep") + field(2, value)))
    return field(1, field(2, field(2, span)))


def _span_edits(rng: random.Random) -> list[tuple[str, Callable[[Span], None]]]:
    def times(span: Span) -> None:
        span.start_time_unix_nano = rng.choice(BOUNDARY_TIMES)
        span.end_time_unix_nano = rng.choice((*BOUNDARY_TIMES, span.start_time_unix_nano))

    def ids(span: Span) -> None:
        field = rng.choice(("trace_id", "span_id", "parent_span_id"))
        setattr(span, field, rng.randbytes(rng.choice((0, 1, 7, 8, 9, 15, 16, 17, 32))))

    def enums(span: Span) -> None:
        span.kind = rng.choice((-1, 0, 6, 2**31 - 1))
        span.status.code = rng.choice((-5, 3, 99))

    def deep(span: Span) -> None:
        span.attributes.append(KeyValue(key="deep", value=_deep_value(rng.randrange(1, 30))))

    def wide(span: Span) -> None:
        span.attributes.extend(KeyValue(key=f"k{i}", value=AnyValue(int_value=i)) for i in range(rng.randrange(500)))
        span.events.extend(Span.Event(name="e") for _ in range(rng.randrange(500)))

    def strings(span: Span) -> None:
        text = rng.choice(("", "\u0000", "\U0001f600" * 100, "[" * 3000, "{" * 3000, "x" * 20_000, "é\u2028<>&"))
        span.name = text
        span.attributes.append(KeyValue(key=text[:100] or "empty", value=AnyValue(string_value=text)))
        span.attributes.append(KeyValue(key="gen_ai.input.messages", value=AnyValue(string_value=text)))

    def numbers(span: Span) -> None:
        value = rng.choice((float("nan"), float("inf"), -0.0, 1e308, 5e-324, -(2**63), 2**63 - 1))
        key = rng.choice(("gen_ai.usage.input_tokens", "gen_ai.request.temperature", "gen_ai.usage.output_tokens"))
        any_value = AnyValue(double_value=value) if isinstance(value, float) else AnyValue(int_value=value)
        span.attributes.append(KeyValue(key=key, value=any_value))

    def many_days(span: Span) -> None:
        span.start_time_unix_nano = T0 + rng.randrange(-3, 4) * DAY_NS
        span.end_time_unix_nano = span.start_time_unix_nano + 1

    return [("times", times), ("ids", ids), ("enums", enums), ("deep", deep), ("wide", wide),
            ("strings", strings), ("numbers", numbers), ("many_days", many_days)]


def _mutate_fields(rng: random.Random, message: ExportTraceServiceRequest) -> tuple[ExportTraceServiceRequest, str]:
    mutated = ExportTraceServiceRequest()
    mutated.CopyFrom(message)
    spans = [s for rs in mutated.resource_spans for ss in rs.scope_spans for s in ss.spans]
    edits = _span_edits(rng)
    names = []
    for _ in range(rng.randrange(1, 4)):
        name, edit = rng.choice(edits)
        for span in rng.sample(spans, rng.randrange(1, len(spans) + 1)):
            edit(span)
        names.append(name)
    if rng.random() < 0.01:  # the same spans over many days: more partitions than one insert may hold
        scope = mutated.resource_spans[0].scope_spans[0]
        for day in range(rng.randrange(90, 130)):
            span = scope.spans.add()
            span.CopyFrom(spans[0])
            span.span_id = rng.randbytes(8)
            span.start_time_unix_nano = T0 + day * DAY_NS
            span.end_time_unix_nano = span.start_time_unix_nano + 1
        names.append("days")
    return mutated, "+".join(names)


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice((True, False))
    if kind == 2:
        return rng.choice((0, -1, 2**63, 2**64 + 1, -(2**70), 10**400))
    if kind == 3:
        return rng.choice((0.5, -1e308, 1e-320, 3.0))
    if kind == 4:
        return rng.choice(("", "abc", "123", "-7", "1e3", "zz", "00" * 16, "\ud83d\ude00", "0x10"))
    if kind == 5:
        return "[" * rng.randrange(1, 50)
    if kind == 6:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 7:
        return {rng.choice(("value", "stringValue", "intValue", "arrayValue", "values", "key", "x")):
                _random_json(rng, depth + 1) for _ in range(rng.randrange(4))}
    return [[[[[]]]]]


def _nodes(node: Any, path: tuple = ()) -> list[tuple]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_nodes(value, (*path, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_nodes(value, (*path, index)))
    return found


def _mutate_json(rng: random.Random, document: dict[str, Any]) -> tuple[dict[str, Any] | Any, str]:
    document = copy.deepcopy(document)
    names = []
    for _ in range(rng.randrange(1, 4)):
        path = rng.choice(_nodes(document))
        if not path:
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        action = rng.choice(("replace", "replace", "delete", "duplicate", "rename", "stringify"))
        last = path[-1]
        if action == "delete":
            del parent[last]
        elif action == "duplicate" and isinstance(parent, list):
            parent.insert(last, copy.deepcopy(parent[last]))
        elif action == "rename" and isinstance(parent, dict):
            parent[rng.choice(("trace_id", "span_id", "startTimeUnixNano", "start_time_unix_nano", "kind",
                               "attributes", "resourceSpans", "unknownField"))] = parent.pop(last)
        elif action == "stringify":
            parent[last] = json.dumps(parent[last]) if rng.random() < 0.5 else str(parent[last])
        else:
            parent[last] = _random_json(rng)
        names.append(action)
    return document, "json-" + "+".join(names)


class Fuzzer:
    """Makes cases from the seed requests: `case()` draws the next one."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.messages = seed_requests()
        self.bodies = [m.SerializeToString() for m in self.messages]
        self.documents = [to_otlp_json(m) for m in self.messages]

    def case(self) -> Case:
        rng = self.rng
        roll = rng.random()
        if roll < 0.35:
            body, how = _mutate_bytes(rng, rng.choice(self.bodies), self.bodies)
            return Case(body, False, f"bytes-{how}")
        if roll < 0.37:
            depth = rng.randrange(20, 400)
            return Case(deep_request(depth), False, f"deep-{depth}")
        if roll < 0.65:
            message, how = _mutate_fields(rng, rng.choice(self.messages))
            return Case(message.SerializeToString(), False, f"fields-{how}")
        document, how = _mutate_json(rng, rng.choice(self.documents))
        text = json.dumps(document).encode()
        if rng.random() < 0.25:
            text, kind = _mutate_bytes(rng, text, [json.dumps(d).encode() for d in self.documents])
            how += f"+text-{kind}"
        return Case(text, True, how)
