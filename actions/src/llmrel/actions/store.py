"""ClickHouse edges of the breakers: transitions (`llm_breaker_events`), signals, and the inputs read back
from `llm_findings` and `llm_calls`. Every function takes the client explicitly; nothing here decides.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from llmrel.actions.machine import State, Transition
from llmrel.actions.signals import SIGNAL_KINDS, Signal
from llmrel.breaker_scope import BreakerScope

EVENTS_TABLE = "llm_breaker_events"
SIGNALS_TABLE = "llm_breaker_signals"
EVENT_COLUMNS = ("Scope", "Seq", "Time", "ServiceName", "FromState", "ToState", "Cause", "Reason", "FindingIds",
                 "AlertFingerprint", "Actor", "DryRun", "Override", "OpenedBy", "Since", "Term")
SIGNAL_COLUMNS = ("SignalId", "ReceivedAt", "Kind", "Scope", "Payload", "Actor")
# Calls that did not take the primary path: the guard sent them elsewhere.
DIVERTED_DECISIONS = ("fallback", "blocked", "callback")
DECISION_ATTRIBUTE = "llmrel.breaker.decision"
_MS = 1_000_000
_READ = ("Scope, Seq, toUnixTimestamp64Milli(Time), FromState, ToState, Cause, Reason, FindingIds, AlertFingerprint, "
         "Actor, DryRun, Override, OpenedBy, toUnixTimestamp64Milli(Since)")


def _transition(row: Sequence[object]) -> Transition:
    (scope, seq, at_ms, from_state, to_state, cause, reason, finding_ids, alert, actor, dry_run, override,
     opened_by, since_ms) = row
    return Transition(
        scope=str(scope), seq=int(seq), at_ns=int(at_ms) * _MS, from_state=State(from_state), to_state=State(to_state),
        cause=str(cause), reason=str(reason), finding_ids=tuple(finding_ids), alert_fingerprint=str(alert),
        actor=str(actor), dry_run=bool(dry_run), override=str(override), opened_by=str(opened_by),
        since_ns=int(since_ms) * _MS)


def write_transitions(client: Client, transitions: Sequence[Transition], term: int) -> None:
    """One insert for all (a no-op for none)."""
    if not transitions:
        return
    rows = [(t.scope, t.seq, t.at_ns // _MS, BreakerScope.parse(t.scope).service, t.from_state.value,
             t.to_state.value, t.cause, t.reason, list(t.finding_ids), t.alert_fingerprint, t.actor, t.dry_run,
             t.override, t.opened_by, t.since_ns // _MS, term) for t in transitions]
    client.insert(EVENTS_TABLE, rows, column_names=list(EVENT_COLUMNS))


def latest_transitions(client: Client) -> list[Transition]:
    """Each scope's last step (highest Seq; for a step written twice, the newer term's row)."""
    rows = client.query(f"SELECT argMax(tuple({_READ}), (Seq, Term)) FROM {EVENTS_TABLE} GROUP BY Scope").result_rows
    return [_transition(row[0]) for row in rows]


def history(client: Client, scope: str | None = None, per_scope: int = 10) -> list[Transition]:
    """The newest `per_scope` steps of one scope or of every scope, newest first within a scope."""
    where = "WHERE Scope = {scope:String}" if scope is not None else ""
    rows = client.query(f"SELECT {_READ} FROM {EVENTS_TABLE} FINAL {where} ORDER BY Scope, Seq DESC "
                        "LIMIT {n:UInt32} BY Scope", parameters={"scope": scope, "n": per_scope}).result_rows
    return [_transition(row) for row in rows]


def write_signals(client: Client, signals: Sequence[Signal]) -> None:
    if signals:
        client.insert(SIGNALS_TABLE, [(s.signal_id, s.received_ns // _MS, s.kind, s.scope, s.payload_json(), s.actor)
                                      for s in signals], column_names=list(SIGNAL_COLUMNS))


def read_signals(client: Client, after_ns: int) -> list[Signal]:
    """Signals received after `after_ns`, oldest first."""
    rows = client.query(
        f"SELECT SignalId, toUnixTimestamp64Milli(ReceivedAt), Kind, Scope, Payload, Actor FROM {SIGNALS_TABLE} "
        "WHERE ReceivedAt > fromUnixTimestamp64Milli({after:Int64}) ORDER BY ReceivedAt, SignalId",
        parameters={"after": after_ns // _MS}).result_rows
    signals = []
    for signal_id, received_ms, kind, scope, payload, actor in rows:
        try:
            body = json.loads(payload)
        except ValueError:
            continue
        if kind in SIGNAL_KINDS and isinstance(body, dict):
            signals.append(Signal(str(signal_id), int(received_ms) * _MS, kind, str(scope), str(actor), body))
    return signals


def firing_alerts(client: Client) -> dict[str, dict[str, str]]:
    """scope -> {fingerprint: summary} of alerts whose latest notification (kept 7 days) says firing."""
    latest: dict[tuple[str, str], tuple[bool, str]] = {}
    for signal in read_signals(client, 0):
        if signal.kind == "alert":
            key = (signal.scope, str(signal.payload.get("fingerprint", "")))
            latest[key] = (bool(signal.payload.get("firing")), str(signal.payload.get("summary", "")))
    out: dict[str, dict[str, str]] = {}
    for (scope, fingerprint), (firing, summary) in latest.items():
        if firing:
            out.setdefault(scope, {})[fingerprint] = summary
    return out


@dataclass(frozen=True, slots=True)
class ActionFinding:
    """A stored finding whose rule declared a breaker (read back from `llm_findings`)."""

    finding_id: str
    rule_id: str
    scope: str
    detected_ns: int
    trip_after: int
    within_s: int


def action_findings(client: Client, after_ns: int) -> list[ActionFinding]:
    """Findings with an `action.breaker` detected after `after_ns` (any receiver or `llmrel analyze`)."""
    rows = client.query(
        "SELECT FindingId, RuleId, Attributes['action.breaker'], toUnixTimestamp64Milli(DetectedAt), "
        "toUInt32OrZero(Attributes['action.trip_after']), toUInt32OrZero(Attributes['action.within_s']) "
        "FROM llm_findings WHERE DetectedAt > fromUnixTimestamp64Milli({after:Int64}) "
        "AND Attributes['action.breaker'] != '' ORDER BY DetectedAt",
        parameters={"after": after_ns // _MS}).result_rows
    return [ActionFinding(str(fid), str(rule), str(scope), int(ms) * _MS, max(int(trip), 1), max(int(within), 1))
            for fid, rule, scope, ms, trip, within in rows]


def probe_stats(client: Client, scope: str, start_ns: int, end_ns: int) -> tuple[int, int]:
    """(calls, calls with a finding for `scope`) among the scope's primary-path calls ingested in [start, end).

    Primary path: calls the guard did not divert (fallback, blocked, callback), including calls of
    apps without the guard.
    """
    s = BreakerScope.parse(scope)
    sql = f"""
        SELECT count(), countIf(f.n > 0) FROM (
            SELECT SpanId FROM llm_calls
            WHERE Timestamp >= fromUnixTimestamp64Milli({{start:Int64}}) - INTERVAL 1 HOUR
              AND IngestedAt >= fromUnixTimestamp64Milli({{start:Int64}})
              AND IngestedAt < fromUnixTimestamp64Milli({{end:Int64}})
              AND ServiceName = {{service:String}}
              AND ({{operation:String}} = '*' OR Operation = {{operation:String}})
              AND ({{model:String}} = '*' OR if(RequestModel != '', RequestModel, Model) = {{model:String}})
              AND ({{feature:String}} = '*' OR Feature = {{feature:String}})
              AND Attributes['{DECISION_ATTRIBUTE}'] NOT IN {{diverted:Array(String)}}
        ) AS c
        LEFT JOIN (
            SELECT SpanId, count() AS n FROM llm_findings
            WHERE DetectedAt >= fromUnixTimestamp64Milli({{start:Int64}}) - INTERVAL 10 MINUTE
              AND Attributes['action.breaker'] = {{scope:String}}
            GROUP BY SpanId
        ) AS f USING (SpanId)"""
    rows = client.query(sql, parameters={
        "start": start_ns // _MS, "end": end_ns // _MS, "service": s.service, "operation": s.operation,
        "model": s.model, "feature": s.feature, "diverted": list(DIVERTED_DECISIONS), "scope": scope}).result_rows
    calls, failures = rows[0]
    return int(calls), int(failures)
