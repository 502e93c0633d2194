"""`expand_macros` against the expansions of grafana-clickhouse-datasource (`pkg/macros/macros.go`,
`CHDatasource.applyConditionalAll`) and Grafana's template service."""

from __future__ import annotations

import pytest

from tests.grafana.macros import ALL, expand_macros

FROM_MS, TO_MS = 1_764_147_600_123, 1_764_151_200_999  # 2025-11-26 09:00:00.123 .. 10:00:00.999 UTC


@pytest.mark.parametrize(("sql", "expected"), [
    ("$__timeFilter(Timestamp)", "Timestamp >= toDateTime(1764147600) AND Timestamp <= toDateTime(1764151200)"),
    ("$__timeFilter_ms(t)",
     "t >= fromUnixTimestamp64Milli(1764147600123) AND t <= fromUnixTimestamp64Milli(1764151200999)"),
    ("$__dateFilter(d)", "d >= toDate('2025-11-26') AND d <= toDate('2025-11-26')"),
    ("$__dt(d, t)", "(d >= toDate('2025-11-26') AND d <= toDate('2025-11-26')) AND "
                    "(t >= toDateTime(1764147600) AND t <= toDateTime(1764151200))"),
    ("$__fromTime, $__toTime", "toDateTime(1764147600), toDateTime(1764151200)"),
    ("$__fromTime_ms", "fromUnixTimestamp64Milli(1764147600123)"),
    ("$__timeInterval(Timestamp)", "toStartOfInterval(toDateTime(Timestamp), INTERVAL 30 second)"),
    ("$__timeInterval_ms(Timestamp)", "toStartOfInterval(toDateTime64(Timestamp, 3), INTERVAL 30000 millisecond)"),
    ("$__interval_s", "30"),
    ("$__timeInterval(toDateTime(a, 'UTC'))",
     "toStartOfInterval(toDateTime(toDateTime(a, 'UTC')), INTERVAL 30 second)"),
])
def test_backend_macros_expand_like_the_plugin(sql, expected):
    assert expand_macros(sql, FROM_MS, TO_MS, 30, None) == expected


def test_interval_is_at_least_one_second():
    assert expand_macros("$__interval_s", FROM_MS, TO_MS, 0.2, None) == "1"


def test_conditional_all_and_variable_formats():
    sql = ("WHERE $__conditionalAll(s IN (${service:singlequote}), $service) "
           "AND $__conditionalAll(m IN ($model), $model)")
    assert expand_macros(sql, FROM_MS, TO_MS, 30, {"service": ALL, "model": ALL}) == "WHERE 1=1 AND 1=1"
    assert expand_macros(sql, FROM_MS, TO_MS, 30, {"service": ["a", "o'b"], "model": ["x", "y"]}) == (
        "WHERE s IN ('a','o\\'b') AND m IN ('x','y')")
    assert expand_macros("x = ${budget}", FROM_MS, TO_MS, 30, {"budget": "100"}) == "x = 100"


def test_all_outside_conditional_all_is_rejected():
    with pytest.raises(ValueError, match="outside"):
        expand_macros("s IN (${service:singlequote})", FROM_MS, TO_MS, 30, {"service": ALL})


def test_alert_queries_get_no_frontend_expansion():
    with pytest.raises(ValueError, match="conditionalAll"):
        expand_macros("$__conditionalAll(s = 1, $s)", FROM_MS, TO_MS, 30, None)


def test_percentencode_is_encode_uri_component_strict():
    """`encodeURIComponent` plus `!'()*` (Grafana's `encodeURIComponentStrict`); a selection is `{a,b}` encoded."""
    assert expand_macros("${v:percentencode}", FROM_MS, TO_MS, 30, {"v": "a b'()*!~._-\\é"}) == (
        "a%20b%27%28%29%2A%21~._-%5C%C3%A9")
    assert expand_macros("${v:percentencode}", FROM_MS, TO_MS, 30, {"v": ["a", "b,c"]}) == "%7Ba%2Cb%2Cc%7D"


def test_conditional_all_splits_arguments_like_the_plugin_even_inside_quotes():
    """The plugin's `getMacroArgs` counts a comma inside a literal: a condition must not have one at depth 1."""
    sql = "$__conditionalAll(s = 'a,b', $s)"
    with pytest.raises(ValueError, match="2 arguments"):
        expand_macros(sql, FROM_MS, TO_MS, 30, {"s": ["x"]})
