"""OTLP `AnyValue` -> string, exactly as the Collector's pdata `Value.AsString()` renders it.

The ClickHouse exporter's Map schema stores every attribute as a string; matching its
rendering means spans from a collector and from llmrel's receiver normalize identically:
ints in decimal, bools `true`/`false`, doubles ES6-style (`0.7`, `1e-7`, `3`), bytes base64,
arrays and maps as compact JSON with sorted keys and Go's HTML-safe escapes.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from decimal import Decimal

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                             "\u2028": "\\u2028", "\u2029": "\\u2029"})


def format_double(value: float) -> str:
    """Go's ES6-style float formatting (`strconv` 'f' or 'e' with shortest digits)."""
    if math.isnan(value) or math.isinf(value):
        return f"json: unsupported value: {'NaN' if math.isnan(value) else ('+Inf' if value > 0 else '-Inf')}"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        mantissa, _, exponent = repr(value).partition("e")
        if not exponent:
            mantissa, _, exponent = f"{value:e}".partition("e")
        sign = "-" if exponent.startswith("-") else "+"
        digits = exponent.lstrip("+-").lstrip("0") or "0"
        return f"{mantissa.removesuffix('.0')}e{sign}{digits}"
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text.removesuffix(".0") if text.endswith(".0") else text


Charge = Callable[[int], None]


def _json(value: AnyValue, charge: Charge | None) -> str:
    """Compact JSON of a nested value, as Go's encoding/json marshals pdata's `AsRaw()`.

    `charge(n)` is told of every array or map of `n` elements before it is rendered (and may raise).
    """
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return _json_string(value.string_value)
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return format_double(value.double_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "bytes_value":
        return '"' + base64.b64encode(value.bytes_value).decode() + '"'
    if kind == "array_value":
        values = value.array_value.values
        if charge is not None:
            charge(len(values))
        if all(v.WhichOneof("value") == "string_value" for v in values):  # the common case: finish reasons etc.
            return _json_string_list([v.string_value for v in values])
        return "[" + ",".join(_json(v, charge) for v in values) + "]"
    if kind == "kvlist_value":
        pairs = value.kvlist_value.values
        if charge is not None:
            charge(len(pairs))
        items = {kv.key: kv.value for kv in pairs}
        return "{" + ",".join(f"{_json_string(k)}:{_json(items[k], charge)}" for k in sorted(items)) + "}"
    return "null"


# Built once: json.dumps with non-default options builds a new encoder on every call.
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _json_string(text: str) -> str:
    return _ENCODE(text).translate(_GO_ESCAPES)


def _json_string_list(texts: list[str]) -> str:
    return _ENCODE(texts).translate(_GO_ESCAPES)


def any_value_to_string(value: AnyValue, charge: Charge | None = None) -> str:
    """Render one attribute value as the exporter stores it (`charge`: see `_json`)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return str(value.int_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "double_value":
        return format_double(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind in ("array_value", "kvlist_value"):
        return _json(value, charge)
    return ""
