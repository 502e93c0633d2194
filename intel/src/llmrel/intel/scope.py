"""Which calls a finding is about (`target`) and which it is compared with (`baseline`), as SQL over `llm_calls`.

* invariant / trace: the calls that violated the same rule in the same service within `window_ns` of the
  finding, against the service's other calls in that time (the healthy calls beside them).
* window / budget: the stream's calls in the rule's window (the violating ones when the rule they rate
  wrote per-call findings), against the same stream's calls in the three windows before.
* drift: the stream's calls since the onset (for a rate metric, only those with the bad outcome:
  errors, truncations, tool calls, violations, the new response model), against the same stream before
  the onset and the healthy calls after it.

Dimensions that restate the symptom (the error type of an error-rate drift) are left out of the contrast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_NS_PER_MIN = 60_000_000_000
_MIN_DRIFT_SPAN_NS = 15 * _NS_PER_MIN
_MAX_DRIFT_SPAN_NS = 24 * 60 * _NS_PER_MIN
DEFAULT_WINDOW_NS = 60 * _NS_PER_MIN

# Drift metric -> (SQL predicate of a call with the bad outcome, dimensions that restate it).
_OUTCOMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "error_rate": ("StatusCode = 'Error'", ("error_type",)),
    "length_finish_rate": ("FinishReason = 'length'", ("finish_reason",)),
    "tool_call_rate": ("ToolCalls > 0", ("tool",)),
    "model_swap_rate": ("ResponseModel = {to_model:String}", ("response_model",)),
    "violation_rate": ("cityHash64(TraceId, SpanId) IN (SELECT cityHash64(TraceId, SpanId) FROM llm_findings "
                       "WHERE Kind = 'invariant' "
                       "AND ServiceName = {service:String} AND EventTime >= fromUnixTimestamp64Nano({lo:Int64}))",
                       ()),
}


@dataclass(frozen=True)
class FindingRef:
    """The columns of a finding that say what it is about."""

    finding_id: str
    kind: str
    rule_id: str
    service: str
    model: str
    operation: str
    feature: str
    tenant: str
    metric: str
    event_time_ns: int
    detected_at_ns: int
    attributes: dict[str, str] = field(default_factory=dict)


FINDING_REF_SQL = (
    "SELECT FindingId, Kind, RuleId, ServiceName, Model, Operation, Feature, Tenant, Metric, "
    "toUnixTimestamp64Nano(EventTime), toUnixTimestamp64Nano(toDateTime64(DetectedAt, 9)), Attributes "
    "FROM llm_findings FINAL WHERE FindingId = {id:String} LIMIT 1")


@dataclass(frozen=True)
class Scope:
    """`where` selects the calls read; `target` marks the affected ones among them (both SQL, with `params`)."""

    where: str
    target: str
    params: dict[str, Any]
    exclude: frozenset[str]
    description: dict[str, Any]


def _stream(ref: FindingRef, params: dict[str, Any]) -> list[str]:
    where = ["ServiceName = {service:String}"]
    params["service"] = ref.service
    for name, column, value in (("model", "Model", ref.model), ("operation", "Operation", ref.operation),
                                ("feature", "Feature", ref.feature), ("tenant", "Tenant", ref.tenant)):
        if value:
            where.append(f"{column} = {{{name}:String}}")
            params[name] = value
    return where


def _time(where: list[str], lo: int, hi: int, params: dict[str, Any]) -> None:
    params.update(lo=lo, hi=hi)
    where.append("Timestamp >= fromUnixTimestamp64Nano({lo:Int64}) AND Timestamp < fromUnixTimestamp64Nano({hi:Int64})")


def _violations(rule: str, trace_only: bool) -> str:
    # Ids compared as one 64-bit hash: a set of integers is several times faster to probe than string tuples.
    ids = "cityHash64(TraceId)" if trace_only else "cityHash64(TraceId, SpanId)"
    return (f"{ids} IN (SELECT {ids} FROM llm_findings WHERE RuleId = {{rule:String}} "
            "AND ServiceName = {service:String} AND EventTime >= fromUnixTimestamp64Nano({lo:Int64}) "
            "AND EventTime < fromUnixTimestamp64Nano({hi:Int64}))").replace("{" + "rule", "{rule")


def scope_of(ref: FindingRef, window_ns: int = DEFAULT_WINDOW_NS, per_call_findings: int = 0) -> Scope:
    """The target and baseline of `ref`. `per_call_findings`: stored per-call findings of a window rule's `of`."""
    params: dict[str, Any] = {}
    t = ref.event_time_ns
    if ref.kind in ("invariant", "trace"):
        params.update(service=ref.service, rule=ref.rule_id)
        where = ["ServiceName = {service:String}"]
        _time(where, t - window_ns, t + window_ns, params)
        target = _violations(ref.rule_id, ref.kind == "trace")
        what = f"calls violating {ref.rule_id} in {ref.service}, against its other calls"
        return Scope(" AND ".join(where), target, params, frozenset(), _describe(ref, params, what))
    if ref.kind in ("window", "budget"):
        size = int(ref.attributes.get("window_s", "60") or 60) * 1_000_000_000
        start = int(ref.attributes.get("window_start_ns", str(t - t % size)) or t)
        where = _stream(ref, params)
        _time(where, start - 3 * size, start + size, params)
        params["start"] = start
        target = "Timestamp >= fromUnixTimestamp64Nano({start:Int64})"
        of = ref.metric.removeprefix("rate:")
        what = f"the stream's calls in the {size // 1_000_000_000}s window, against the three windows before"
        if ref.kind == "window" and per_call_findings:
            params["rule"] = of
            target = f"{target} AND {_violations(of, False)}"
            what = f"calls violating {of} in the window, against the stream's other calls"
        return Scope(" AND ".join(where), target, params, frozenset(), _describe(ref, params, what))
    # drift (and anything else with an onset): after vs before
    end = max(ref.detected_at_ns, t + _NS_PER_MIN)
    span = min(max(end - t, _MIN_DRIFT_SPAN_NS), _MAX_DRIFT_SPAN_NS)
    where = _stream(ref, params)
    _time(where, t - span, end, params)
    params["onset"] = t
    target = "Timestamp >= fromUnixTimestamp64Nano({onset:Int64})"
    exclude: tuple[str, ...] = ()
    what = f"the stream's calls since the onset of {ref.metric} drift, against the same stream before"
    outcome = _OUTCOMES.get(ref.metric)
    if outcome is not None and (ref.metric != "model_swap_rate" or ref.attributes.get("to_model")):
        predicate, exclude = outcome
        params["to_model"] = ref.attributes.get("to_model", "")
        target = f"{target} AND {predicate}"
        what = f"calls with the bad outcome of {ref.metric} since the onset, against all others"
    return Scope(" AND ".join(where), target, params, frozenset(exclude), _describe(ref, params, what))


def _describe(ref: FindingRef, params: dict[str, Any], what: str) -> dict[str, Any]:
    return {"finding_id": ref.finding_id, "kind": ref.kind, "rule_id": ref.rule_id, "contrast": what,
            "from_ns": params["lo"], "until_ns": params["hi"],
            "stream": {k: params[k] for k in ("service", "model", "operation", "feature", "tenant") if k in params}}
