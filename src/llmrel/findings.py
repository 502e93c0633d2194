"""`Finding`: one row of `llm_findings`, with a stable id so a replay never duplicates it.

A finding is what an analyzer concluded about one or more `LlmCall`s: a per-call invariant
violation, a per-trace limit crossed, a windowed rate or budget exceeded, or a drift in a
stream metric. The id is a hash of what identifies the conclusion (rule, keys, trace/span or
window/onset), never of the detection time, so `llm_findings` (a ReplacingMergeTree ordered by
that id) collapses the same finding written twice after a restart or a replay.

Shared by every area that concludes about calls (the analyzers, the intelligence layer) and by what
acts on findings: `write_findings` is how any of them stores one.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from llmrel.breaker_scope import render_scope
from llmrel.model import LlmCall

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

Kind = Literal["invariant", "trace", "window", "budget", "drift"]
Severity = Literal["info", "warning", "error", "critical"]

KINDS: tuple[str, ...] = ("invariant", "trace", "window", "budget", "drift")
SEVERITIES: tuple[str, ...] = ("info", "warning", "error", "critical")

FINDINGS_TABLE = "llm_findings"
FINDING_COLUMNS: tuple[str, ...] = (
    "FindingId", "Kind", "RuleId", "Severity", "ServiceName", "Model", "Operation", "Feature", "Tenant",
    "Metric", "TraceId", "SpanId", "Observed", "Expected", "Message", "Calls", "CostUSD", "ImpactUSD",
    "Confidence", "EventTime", "DetectedAt", "Attributes",
)


ATTR_BREAKER = "action.breaker"
ATTR_TRIP_AFTER = "action.trip_after"
ATTR_WITHIN_S = "action.within_s"
DEFAULT_WITHIN_S = 60


def finding_id(*parts: object) -> str:
    """A stable 32-hex id from the parts that identify a finding."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Finding:
    """One analyzer conclusion. Times are int nanoseconds; money is USD.

    `cost_usd` is the spend of the calls the finding concerns (the violating call, the trace's
    retried calls, the window's violating calls, the calls since a drift's onset); `impact_usd`
    is the rule's declared business impact for this finding. `action` is the breaker the rule
    declared (`action:`), its scope filled in for this finding; it is stored as `action.*` attributes.
    """

    finding_id: str
    kind: Kind
    rule_id: str
    severity: Severity
    service_name: str
    model: str
    operation: str
    feature: str
    tenant: str
    metric: str
    trace_id: str
    span_id: str
    observed: float | None
    expected: float | None
    message: str
    calls: int
    cost_usd: float
    impact_usd: float
    confidence: float | None
    event_time_ns: int
    detected_at_ns: int
    attributes: dict[str, str] = field(default_factory=dict)
    action: BreakerAction | None = None

    def row(self) -> tuple[object, ...]:
        """The `llm_findings` row, in `FINDING_COLUMNS` order (DetectedAt as milliseconds)."""
        attributes = self.attributes if self.action is None else {**self.attributes, **self.action.attributes()}
        return (
            self.finding_id, self.kind, self.rule_id, self.severity, self.service_name, self.model,
            self.operation, self.feature, self.tenant, self.metric, self.trace_id, self.span_id,
            self.observed, self.expected, self.message, self.calls, self.cost_usd, self.impact_usd,
            self.confidence, self.event_time_ns, self.detected_at_ns // 1_000_000, attributes,
        )

    @classmethod
    def for_call(cls, *, kind: Kind, rule_id: str, severity: Severity, call: LlmCall, metric: str,
                 observed: float | None, expected: float | None, message: str, impact_usd: float,
                 detected_at_ns: int, attributes: dict[str, str] | None = None) -> Finding:
        """A finding about one call: keys, ids and spend taken from the call."""
        return cls(
            finding_id=finding_id(kind, rule_id, call.trace_id, call.span_id),
            kind=kind, rule_id=rule_id, severity=severity, service_name=call.service_name,
            model=call.model, operation=call.operation, feature=call.feature, tenant=call.tenant,
            metric=metric, trace_id=call.trace_id, span_id=call.span_id, observed=observed,
            expected=expected, message=message, calls=1, cost_usd=call.cost_usd or 0.0,
            impact_usd=impact_usd, confidence=None, event_time_ns=call.timestamp_ns,
            detected_at_ns=detected_at_ns, attributes=attributes or {},
        )


@dataclass(frozen=True, slots=True)
class BreakerAction:
    """Trip breaker `breaker` after `trip_after` findings within `within_s` seconds (a rule's `action:`,
    parsed by `llmrel.analyzers.ruleaction`; acted on by the breaker controller, `llmrel.actions`).

    `breaker` is a scope template in a rule; on a finding it is the concrete scope.
    """

    breaker: str
    trip_after: int = 1
    within_s: int = DEFAULT_WITHIN_S

    def attributes(self) -> dict[str, str]:
        """How the action is stored with a finding (`llm_findings.Attributes`)."""
        return {ATTR_BREAKER: self.breaker, ATTR_TRIP_AFTER: str(self.trip_after), ATTR_WITHIN_S: str(self.within_s)}

    def resolve(self, finding: Finding) -> BreakerAction | None:
        """This action for one finding: the template filled from the finding's keys (None if it cannot be)."""
        scope = render_scope(self.breaker, {"service": finding.service_name, "operation": finding.operation,
                                            "model": finding.model, "feature": finding.feature})
        return dataclasses.replace(self, breaker=scope) if scope is not None else None


def write_findings(client: Client, findings: Sequence[Finding]) -> None:
    """One insert of all findings (a no-op for none)."""
    if findings:
        client.insert(FINDINGS_TABLE, [f.row() for f in findings], column_names=list(FINDING_COLUMNS))
