"""Daily partitions of the span tables, as the store computes them, so no insert exceeds its limit.

`otel_traces` and `llm_calls` are `PARTITION BY toDate(Timestamp)` in the store's time zone, and
ClickHouse refuses an insert whose rows fall in more than `max_partitions_per_insert_block`
partitions (100 by default). One sender's spans covering more days than that must not fail the
group commit it shares with others, and must still be stored: requests are grouped so every
insert stays within the limit (`llmrel.receiver.writer`), and a request wider than the limit is
cut into blocks of at most that many days (`split_by_day`), committed one after another.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

_NS_PER_S = 1_000_000_000
_NS_PER_DAY = 86_400 * _NS_PER_S
_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "GMT", "Etc/GMT", "UCT", "Etc/UCT", "Universal", "Etc/Universal",
                        "Zulu", "Etc/Zulu"})

Row = TypeVar("Row")
DayOf = Callable[[int], int]


def day_function(timezone: str) -> DayOf:
    """`toDate()` of a nanosecond timestamp in `timezone`, as days since 1970-01-01.

    Raises:
        zoneinfo.ZoneInfoNotFoundError: an unknown time zone name.
    """
    if timezone in _UTC_NAMES:
        return lambda ts_ns: ts_ns // _NS_PER_DAY
    zone = ZoneInfo(timezone)

    def day(ts_ns: int) -> int:
        # Date is a UInt16: a local date before 1970 (west of UTC, at the epoch) wraps as the store wraps it.
        return (datetime.fromtimestamp(ts_ns // _NS_PER_S, zone).toordinal() - _EPOCH_ORDINAL) & 0xFFFF

    return day


def split_by_day(rows: Sequence[Row], timestamp: Callable[[Row], int], day_of: DayOf,
                 max_days: int) -> list[tuple[frozenset[int], list[Row]]]:
    """Group `rows` into blocks covering at most `max_days` days each (0: no limit), in day order.

    Returns:
        `(days, rows)` per block; a single block holding every row (in input order) when they
        already fit.
    """
    by_day: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        by_day[day_of(timestamp(row))].append(row)
    if not max_days or len(by_day) <= max_days:
        return [(frozenset(by_day), list(rows))] if rows else []
    days = sorted(by_day)
    blocks = []
    for i in range(0, len(days), max_days):
        chunk = days[i:i + max_days]
        blocks.append((frozenset(chunk), [row for d in chunk for row in by_day[d]]))
    return blocks
