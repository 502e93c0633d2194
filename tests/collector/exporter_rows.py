"""Rows as the Collector's ClickHouse exporter writes them into `otel_traces` (contrib v0.161.0).

The exporter (`exporter/clickhouseexporter/exporter_traces.go`) appends one row per span to a
native batch for `internal/sqltemplates/traces_insert.sql`, with these values:
- `Timestamp` the span's start time (nanoseconds), `Duration` end - start in nanoseconds;
- ids as lowercase hex, the empty string when zero (`traceutil.*ToHexOrEmptyString`);
- `SpanKind` / `StatusCode` as pdata `String()`: `Client`, `Server`, ... / `Unset`, `Ok`, `Error`;
- `ServiceName` from the resource attribute `service.name`;
- attribute maps with every value flattened to a string (pdata `Value.AsString()`: ints in
  decimal, doubles shortest form, bools `true`/`false`, slices and maps as JSON);
- events and links as the parallel arrays of the `Events` / `Links` nested columns.
`insert_like_exporter` sends such rows with the exporter's column list over the native protocol.
"""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client

# internal/sqltemplates/traces_insert.sql, in its order.
EXPORTER_INSERT_COLUMNS: tuple[str, ...] = (
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind", "ServiceName",
    "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes", "Duration", "StatusCode",
    "StatusMessage", "Events.Timestamp", "Events.Name", "Events.Attributes", "Links.TraceId", "Links.SpanId",
    "Links.TraceState", "Links.Attributes",
)

_BASE_NS = 1_764_136_800_000_000_000  # 2025-11-26T06:00:00Z
_RESOURCE = {"service.name": "support-bot", "deployment.environment.name": "prod",
             "telemetry.sdk.language": "python", "telemetry.sdk.name": "opentelemetry",
             "telemetry.sdk.version": "1.45.2"}


def exporter_row(index: int, *, trace_id: str, span_id: str, parent_span_id: str = "", name: str,
                 kind: str, attributes: dict[str, str], duration_ns: int, status: str = "Unset",
                 status_message: str = "", events: list[tuple[int, str, dict[str, str]]] = (),
                 links: list[tuple[str, str, str, dict[str, str]]] = ()) -> tuple[Any, ...]:
    """One row in `EXPORTER_INSERT_COLUMNS` order; `events` are (offset ns, name, attributes)."""
    start = _BASE_NS + index * 1_000_000_000
    return (
        start, trace_id, span_id, parent_span_id, "", name, kind, _RESOURCE["service.name"], dict(_RESOURCE),
        "opentelemetry.instrumentation.openai_v2", "2.3b0", attributes, duration_ns, status, status_message,
        [start + offset for offset, _, _ in events], [n for _, n, _ in events], [a for _, _, a in events],
        [link[0] for link in links], [link[1] for link in links], [link[2] for link in links],
        [link[3] for link in links],
    )


def chat_trace(index: int, *, input_tokens: int, output_tokens: int, error_type: str | None = None,
               duration_ms: int = 800) -> list[tuple[Any, ...]]:
    """A request span and its `chat` span, as the exporter stores them (values flattened to strings)."""
    trace_id = f"{index + 1:032x}"
    root_id, chat_id = f"{2 * index + 1:016x}", f"{2 * index + 2:016x}"
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.request.temperature": "0.2",  # a double, flattened
        "gen_ai.request.max_tokens": "256",  # an int, flattened
        "gen_ai.response.finish_reasons": '["stop"]' if error_type is None else "[]",  # a slice, as JSON
        "gen_ai.usage.input_tokens": str(input_tokens),
        "gen_ai.usage.output_tokens": str(output_tokens),
        "server.address": "api.openai.com",
    }
    if error_type:
        attributes["error.type"] = error_type
    root = exporter_row(index, trace_id=trace_id, span_id=root_id, name="POST /support", kind="Server",
                        attributes={"http.request.method": "POST", "http.response.status_code": "200"},
                        duration_ns=(duration_ms + 20) * 1_000_000)
    chat = exporter_row(index, trace_id=trace_id, span_id=chat_id, parent_span_id=root_id,
                        name="chat gpt-4o-mini", kind="Client", attributes=attributes,
                        duration_ns=duration_ms * 1_000_000, status="Error" if error_type else "Unset",
                        status_message=error_type or "",
                        events=[(5_000_000, "gen_ai.client.inference.operation.details",
                                 {"gen_ai.output.type": "text"})],
                        links=[(f"{index + 1000:032x}", f"{index + 1000:016x}", "", {"link.kind": "retry_of"})])
    return [root, chat]


def insert_like_exporter(client: Client, rows: list[tuple[Any, ...]], table: str = "otel_traces") -> None:
    """INSERT the rows with the exporter's column list, over the native format as the exporter does."""
    client.insert(table, rows, column_names=list(EXPORTER_INSERT_COLUMNS))
