"""Rows encoded in ClickHouse's Native format ahead of the insert, so encoding can run where the
rows are built (worker processes) and the process that owns the store only inserts bytes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.transform import NativeTransform


def encode(table: str, columns: Sequence[str], types: Sequence[Any], rows: Sequence[tuple[Any, ...]]) -> bytes:
    """`rows` as Native blocks for `raw_insert(table, columns, fmt="Native")`; empty for no rows."""
    if not rows:
        return b""
    context = InsertContext(table, list(columns), list(types), data=rows)
    encoded = b"".join(NativeTransform.build_insert(context))
    return encoded[encoded.index(b"\n") + 1:]  # drop the "INSERT ... FORMAT Native" line of the first block


def encode_each(table: str, columns: Sequence[str], types: Sequence[Any],
                rows: Sequence[tuple[Any, ...]]) -> tuple[bytes, list[int]]:
    """Encode `rows`; rows the encoder refuses are left out and their indexes returned."""
    try:
        return encode(table, columns, types, rows), []
    except Exception:  # find the culprits: rare, so row by row is fine
        bad = []
        for i, row in enumerate(rows):
            try:
                encode(table, columns, types, [row])
            except Exception:
                bad.append(i)
        refused = set(bad)
        return encode(table, columns, types, [r for i, r in enumerate(rows) if i not in refused]), bad
