"""ClickHouse settings given as URL parameters: an allow-list, clamped to the server's limits.

Every URL parameter that is not one of the interface's own (`query`, `database`, `param_*`, ...)
is a setting, as on ClickHouse. Settings the engine does not know are refused with
UNKNOWN_SETTING; known ones outside the allow-list with SETTING_CONSTRAINT_VIOLATION.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from llmrel.receiver.clickhouse_http.errors import ClickHouseError

# Handled by the interface itself (HTTPHandler's reserved names plus database/format/query).
RESERVED = frozenset({
    "query", "database", "default_format", "compress", "decompress", "user", "password", "quota_key", "query_id",
    "stacktrace", "buffer_size", "wait_end_of_query", "session_id", "session_timeout", "session_check",
    "close_session", "client_protocol_version",
})
# Transport settings clients send: accepted, acted on by the interface (or harmless to ignore).
TRANSPORT = frozenset({
    "enable_http_compression", "http_zlib_compression_level", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "cancel_http_readonly_queries_on_client_close",
    "http_native_compression_disable_checksumming_on_decompress", "async_insert", "wait_for_async_insert",
    "insert_deduplicate", "http_write_exception_in_output_format",
})
# Passed to the engine for the query.
ENGINE = frozenset({
    "max_execution_time", "max_memory_usage", "max_result_rows", "max_result_bytes", "result_overflow_mode",
    "max_rows_to_read", "max_bytes_to_read", "read_overflow_mode", "max_threads", "max_block_size", "limit",
    "offset", "timeout_overflow_mode", "readonly", "date_time_input_format", "date_time_output_format",
    "session_timezone", "join_use_nulls", "additional_table_filters", "cast_string_to_dynamic_use_inference",
    "output_format_json_quote_64bit_integers", "output_format_json_quote_64bit_floats",
    "output_format_json_quote_denormals", "output_format_json_named_tuples_as_objects",
    "output_format_json_quote_decimals", "output_format_arrow_string_as_string",
    "output_format_parquet_string_as_string", "output_format_write_statistics", "extremes",
    "allow_experimental_analyzer", "enable_analyzer", "input_format_null_as_default",
    "input_format_skip_unknown_fields", "input_format_defaults_for_omitted_fields", "use_query_cache",
    "output_format_native_encode_types_in_binary_format", "output_format_pretty_row_numbers",
    "do_not_merge_across_partitions_select_final", "optimize_move_to_prewhere",
})


@dataclass(frozen=True)
class Limits:
    """The server's ceilings on one query; a URL parameter may only lower them."""

    max_execution_time: int
    max_memory_usage: int
    max_result_rows: int
    max_result_bytes: int
    os_thread_priority: int = 10  # query threads yield the CPU to ingest (nice); not settable by clients

    def as_settings(self) -> dict[str, str]:
        return {k: str(v) for k, v in vars(self).items()}


def query_settings(params: Mapping[str, str], known: frozenset[str], limits: Limits) -> tuple[dict[str, str],
                                                                                               dict[str, str]]:
    """(engine settings for the query, transport settings) from the URL parameters.

    Raises:
        ClickHouseError: UNKNOWN_SETTING or SETTING_CONSTRAINT_VIOLATION.
    """
    engine = limits.as_settings()
    transport = {}
    for name, value in params.items():
        if name in RESERVED or name.startswith("param_") or name == "role":
            continue
        if name in TRANSPORT:
            transport[name] = value
        elif name in ENGINE:
            engine[name] = _clamped(name, value, limits)
        elif name in known:
            raise ClickHouseError(452, f"Setting {name} is not allowed over llmrel's HTTP interface")
        else:
            raise ClickHouseError(115, f"Unknown setting '{name}'")
    if "readonly" in params and params["readonly"] not in ("1", "2"):
        raise ClickHouseError(452, "Setting readonly may only be raised to 1 or 2")
    return engine, transport


def _clamped(name: str, value: str, limits: Limits) -> str:
    ceiling = getattr(limits, name, None)
    if ceiling is None:
        return value
    try:
        number = int(float(value))
    except ValueError:
        raise ClickHouseError(72, f"Cannot parse number from {value!r} for setting {name}", "CANNOT_PARSE_NUMBER") \
            from None
    return str(ceiling if number <= 0 or number > ceiling else number)  # 0 means "no limit": keep the ceiling
