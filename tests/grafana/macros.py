"""Expand a panel or alert query the way Grafana and the ClickHouse datasource do before it runs.

Two stages, in the plugin's order:

1. Frontend (dashboards only): `$__conditionalAll(condition, $var)` becomes `1=1` when the
   variable is `$__all` or empty, else `condition` (`CHDatasource.applyConditionalAll`, applied
   last occurrence first; its argument split counts parentheses and commas even inside quotes);
   then Grafana's template service replaces `$var`, `${var}` and `${var:format}` for the formats
   `percentencode`, `singlequote`, `sqlstring`, `raw`, `csv` (`formatRegistry.ts` of Grafana and
   grafana/scenes). Alert rules skip this stage, so alert SQL must contain neither.
2. Backend (`pkg/macros/macros.go` of grafana-clickhouse-datasource): the time-range macros.
   Times are whole seconds (`time.Unix()`, truncating), `$__interval_s` is at least 1.

Used by the tests to run every committed query against a real store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import quote

ALL = "$__all"

_CONDITIONAL_ALL = "$__conditionalAll("
_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")
_BACKEND_MACRO = re.compile(r"\$__(\w+)")

VariableValue = str | Sequence[str]


def _macro_args(sql: str, open_paren: int, quotes: bool = True) -> tuple[list[str], int]:
    """Comma-separated arguments of a macro call whose `(` is at `open_paren`, and the index after `)`.

    With `quotes=False`, parentheses and commas inside string literals count too, as in the
    plugin's frontend `getMacroArgs`.
    """
    depth, args, start = 0, [], open_paren + 1
    quote_char: str | None = None
    for i in range(open_paren, len(sql)):
        char = sql[i]
        if quote_char:
            if char == quote_char and sql[i - 1] != "\\":
                quote_char = None
            continue
        if quotes and char in "'\"`":
            quote_char = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i].strip())
                return args, i + 1
        elif char == "," and depth == 1:
            args.append(sql[start:i].strip())
            start = i + 1
    raise ValueError(f"unbalanced macro call at {open_paren}: {sql[open_paren:open_paren + 60]!r}")


def _is_all(value: VariableValue) -> bool:
    values = [value] if isinstance(value, str) else list(value)
    return not values or values in ([ALL], [""])


def apply_conditional_all(sql: str, variables: Mapping[str, VariableValue]) -> str:
    """The plugin's frontend `$__conditionalAll` step."""
    index = sql.rfind(_CONDITIONAL_ALL)
    while index != -1:
        args, end = _macro_args(sql, index + len(_CONDITIONAL_ALL) - 1, quotes=False)
        if len(args) != 2:
            raise ValueError(f"$__conditionalAll takes 2 arguments, got {args}")
        condition, variable = args
        value = variables.get(variable.lstrip("$").strip("{}"), "")
        sql = sql[:index] + ("1=1" if _is_all(value) else condition) + sql[end:]
        index = sql.rfind(_CONDITIONAL_ALL)
    return sql


def _format_value(name: str, value: VariableValue, fmt: str | None) -> str:
    values = [value] if isinstance(value, str) else list(value)
    if _is_all(value):
        raise ValueError(f"variable ${name} is 'All' outside $__conditionalAll: its expansion depends on options")
    if fmt == "percentencode":  # encodeURIComponent + `!'()*`: RFC 3986 unreserved characters only
        return quote("{" + ",".join(values) + "}" if not isinstance(value, str) else value, safe="")
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "sqlstring":
        return ",".join("'" + v.replace("'", "''").replace('"', '\\"') + "'" for v in values)
    if fmt is None and not isinstance(value, str):
        # The datasource's own formatter quotes multi-value selections: 'a','b'.
        return "'" + "','".join(values) + "'"
    if fmt in (None, "raw", "csv"):
        return ",".join(values)
    raise ValueError(f"unsupported variable format {fmt!r}")


def interpolate_variables(sql: str, variables: Mapping[str, VariableValue]) -> str:
    """Grafana's template service for the formats our dashboards use; macros (`$__x`) are kept."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name.startswith("__") or name not in variables:
            return match.group(0)
        return _format_value(name, variables[name], match.group(2))

    return _VARIABLE.sub(replace, sql)


def _date(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")


def expand_backend_macros(sql: str, from_ms: int, to_ms: int, interval_s: float) -> str:
    """The datasource backend's macros, text-identical to `pkg/macros/macros.go`."""
    from_s, to_s = from_ms // 1000, to_ms // 1000
    seconds = int(max(interval_s, 1))
    millis = int(max(interval_s * 1000, 1))

    def between(col: str, low: str, high: str) -> str:
        return f"{col} >= {low} AND {col} <= {high}"

    with_args: dict[str, Callable[[list[str]], str]] = {
        "timeFilter": lambda a: between(a[0], f"toDateTime({from_s})", f"toDateTime({to_s})"),
        "timeFilter_ms": lambda a: between(a[0], f"fromUnixTimestamp64Milli({from_ms})",
                                           f"fromUnixTimestamp64Milli({to_ms})"),
        "dateFilter": lambda a: between(a[0], f"toDate('{_date(from_s)}')", f"toDate('{_date(to_s)}')"),
        "dateTimeFilter": lambda a: (f"({between(a[0], f'toDate({_date(from_s)!r})', f'toDate({_date(to_s)!r})')})"
                                     f" AND ({between(a[1], f'toDateTime({from_s})', f'toDateTime({to_s})')})"),
        "timeInterval": lambda a: f"toStartOfInterval(toDateTime({a[0]}), INTERVAL {seconds} second)",
        "timeInterval_ms": lambda a: f"toStartOfInterval(toDateTime64({a[0]}, 3), INTERVAL {millis} millisecond)",
    }
    with_args["dt"] = with_args["dateTimeFilter"]
    constants = {
        "fromTime": f"toDateTime({from_s})", "toTime": f"toDateTime({to_s})",
        "fromTime_ms": f"fromUnixTimestamp64Milli({from_ms})", "toTime_ms": f"fromUnixTimestamp64Milli({to_ms})",
        "interval_s": str(seconds),
    }
    out, pos = [], 0
    for match in _BACKEND_MACRO.finditer(sql):
        if match.start() < pos:
            continue
        name = match.group(1)
        if name in with_args:
            if match.end() >= len(sql) or sql[match.end()] != "(":
                raise ValueError(f"macro $__{name} needs arguments")
            args, end = _macro_args(sql, match.end())
            out.append(sql[pos:match.start()] + with_args[name](args))
            pos = end
        elif name in constants:
            out.append(sql[pos:match.start()] + constants[name])
            pos = match.end()
        else:
            raise ValueError(f"macro $__{name} is not expanded by the ClickHouse datasource backend")
    out.append(sql[pos:])
    return "".join(out)


def expand_macros(sql: str, from_ms: int, to_ms: int, interval_s: float,
                  variables: Mapping[str, VariableValue] | None = None) -> str:
    """Frontend then backend expansion of a query.

    Args:
        sql: The stored `rawSql`.
        from_ms: Start of the time range, epoch milliseconds.
        to_ms: End of the time range, epoch milliseconds.
        interval_s: The panel's interval in seconds (`$__interval_s`, `$__timeInterval`).
        variables: Dashboard variable values, a string or list of strings; `ALL` selects All.
            `None` means an alert rule: no frontend stage at all.

    Returns:
        The SQL the ClickHouse server receives.
    """
    if variables is not None:
        sql = interpolate_variables(apply_conditional_all(sql, variables), variables)
    return expand_backend_macros(sql, from_ms, to_ms, interval_s)
