"""The Actions dashboard over `llm_breaker_events` (breaker state and transitions), and the breaker
annotation other dashboards carry so a transition shows next to the metrics that caused it.

`llm_breaker_events` is a ReplacingMergeTree keyed by (Scope, Seq): reads use `FINAL`, and a scope's
current state is its row with the highest (Seq, Term). Only the service variable applies here.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common, statetimeline
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from llmrel.grafana.panels import Grid, assemble, data_table, single_stat, target, variable_filter
from llmrel.grafana.query import DATASOURCE_REF, Format

ACTIONS_UID = "llmrel-actions"
_SERVICE = variable_filter({"service": "ServiceName"})
EVENTS_WHERE = f"FROM llm_breaker_events FINAL WHERE $__timeFilter(Time) AND {_SERVICE}"
_STATE_NUMBER = "multiIf(ToState = 'open', 2, ToState = 'half_open', 1, 0)"
# Each scope's last recorded step (its current state), whatever the time range.
_CURRENT = ("(SELECT Scope, argMax(tuple(ToState, Since, DryRun, Override, Cause, Reason, Actor, Time), (Seq, Term)) "
            f"AS last FROM llm_breaker_events WHERE {_SERVICE} GROUP BY Scope)")
_STATES = {"0": ("closed", "green"), "1": ("half_open", "yellow"), "2": ("open", "red")}


def breaker_annotation() -> dash.AnnotationQuery:
    """Breaker transitions as annotations on every panel of a dashboard."""
    sql = ("SELECT Time AS time, concat(Scope, ': ', FromState, ' → ', ToState, ' (', Cause, if(DryRun, ', dry run', "
           "''), ') ', Reason, ' by ', Actor) AS text, [Scope, ToState, Cause] AS tags "
           f"{EVENTS_WHERE} AND FromState != ToState ORDER BY time")
    return (dash.AnnotationQuery().name("Breakers").datasource(DATASOURCE_REF).enable(True)
            .icon_color("orange").target(target(sql, ref_id="Breakers")))  # type: ignore[arg-type]


def _state_timeline() -> statetimeline.Panel:
    sql = ("SELECT time, scope, state FROM ("
           "SELECT toDateTime64($__fromTime, 3) AS time, Scope AS scope, "
           f"argMax({_STATE_NUMBER}, (Seq, Term)) AS state "
           f"FROM llm_breaker_events WHERE Time < $__fromTime AND {_SERVICE} GROUP BY Scope "
           f"UNION ALL SELECT Time AS time, Scope AS scope, {_STATE_NUMBER} AS state {EVENTS_WHERE}"
           ") ORDER BY time")
    mapping = dm.ValueMap(options={value: dm.ValueMappingResult(text=text, color=color, index=int(value))
                                   for value, (text, color) in _STATES.items()})
    return (statetimeline.Panel().title("Breaker state").datasource(DATASOURCE_REF)
            .description("State of each breaker scope over time (the state before the range is carried in).")
            .with_target(target(sql, Format.TIME_SERIES)).mappings([mapping])
            .show_value(cm.VisibilityMode.AUTO).merge_values(True).row_height(0.8).line_width(0).fill_opacity(80)
            .legend(common.VizLegendOptions().display_mode(cm.LegendDisplayMode.LIST)
                    .placement(cm.LegendPlacement.BOTTOM).show_legend(False).calcs([])))


def actions() -> dash.Dashboard:
    grid = Grid()
    now = f"FROM {_CURRENT}"
    grid.add(single_stat("Open breakers", f"SELECT countIf(last.1 = 'open') AS open {now}", "short",
                         "Scopes whose breaker is open now (dry runs included)."), w=6, h=4)
    grid.add(single_stat("Half-open breakers", f"SELECT countIf(last.1 = 'half_open') AS half_open {now}", "short",
                         "Scopes probing the primary path with a fraction of their calls."), w=6, h=4)
    grid.add(single_stat("State changes", f"SELECT countIf(FromState != ToState) AS transitions {EVENTS_WHERE}",
                         "short", "State changes in the time range."), w=6, h=4)
    grid.add(single_stat("Pinned or dry run", f"SELECT countIf(last.4 != '' OR last.3) AS manual {now}", "short",
                         "Scopes a person pinned open or closed, or in dry run (recorded, not enforced)."), w=6, h=4)
    grid.add(_state_timeline(), w=24, h=8)
    grid.add(data_table("Breakers now", (
        "SELECT Scope AS scope, last.1 AS state, last.2 AS since, "
        "multiIf(last.3, 'dry run', last.4 != '', concat('pinned ', last.4), 'auto') AS mode, last.5 AS cause, "
        f"last.6 AS reason, last.7 AS actor {now} ORDER BY state = 'closed', scope"),
        "Each scope's current state and the step that put it there."), w=24, h=8)
    grid.add(data_table("Transitions", (
        "SELECT Time AS time, Scope AS scope, FromState AS from_state, ToState AS to_state, Cause AS cause, "
        "Reason AS reason, length(FindingIds) AS findings, AlertFingerprint AS alert, Actor AS actor, "
        f"DryRun AS dry_run, Override AS override {EVENTS_WHERE} ORDER BY time DESC LIMIT 500"),
        "The audit log: every transition, override and dry-run change, with its cause."), w=24, h=10)
    return assemble("LLM Actions", ACTIONS_UID,
                    "Circuit breakers: which scopes are open, why, and every transition.", grid,
                    annotations=[breaker_annotation()])
