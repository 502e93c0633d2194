"""Explain a finding: aggregate its calls by every stored dimension in ClickHouse, contrast them in polars, store.

One query counts affected and baseline calls per distinct combination of dimension values (the store does
the heavy part; what comes back is one row per combination, as Arrow); `contrast` ranks the causes; the
result is one row of `llm_explanations`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl
from clickhouse_connect.driver.client import Client

from llmrel.intel.contrast import BASELINE, TARGET, Cause, Contrast, ContrastConfig, contrast
from llmrel.intel.scope import DEFAULT_WINDOW_NS, FINDING_REF_SQL, FindingRef, Scope, scope_of

EXPLANATIONS_TABLE = "llm_explanations"

# Dimension name -> SQL over llm_calls (columns of 002 and 007).
DIMENSIONS: dict[str, str] = {
    "model": "Model",
    "response_model": "ResponseModel",
    "provider": "Provider",
    "service_version": "ServiceVersion",
    "environment": "Environment",
    "operation": "Operation",
    "feature": "Feature",
    "tenant": "Tenant",
    "tool": "ToolName",
    "finish_reason": "FinishReason",
    "error_type": "ErrorType",
    "streaming": "toString(IsStreaming)",
    "server": "ServerAddress",
    "input_size": ("multiIf(InputTokens IS NULL, '', InputTokens < 256, '<256', InputTokens < 1024, '256-1k', "
                   "InputTokens < 4096, '1k-4k', InputTokens < 16384, '4k-16k', '>=16k')"),
}
_INTERNAL_KEYS = ("llmrel.normalizer.version", "llmrel.normalize.warnings")
_MAX_ATTRIBUTE_KEYS = 8
_MAX_ATTRIBUTE_VALUES = 200
_KEY_SAMPLE = 100_000
_MAX_COMBINATIONS = 500_000
SAMPLE_ABOVE = 100_000  # larger scopes contrast their affected calls with a uniform sample of the baseline


class FindingNotFoundError(LookupError):
    """No finding has this id."""


@dataclass(frozen=True)
class Explanation:
    """A stored explanation: the contrast, its scope and how long it took."""

    finding_id: str
    service: str
    rule_id: str
    kind: str
    contrast: Contrast
    scope: dict[str, Any]
    elapsed_ms: float
    computed_at_ms: int

    @property
    def summary(self) -> str:
        return self.contrast.summary()

    def as_dict(self) -> dict[str, Any]:
        c = self.contrast
        return {"finding_id": self.finding_id, "service": self.service, "rule_id": self.rule_id,
                "kind": self.kind, "verdict": c.verdict, "summary": self.summary,
                "top_cause": c.causes[0].cause if c.causes else "", "target_calls": c.target_calls,
                "baseline_calls": c.baseline_calls, "dimensions": c.dimensions, "tested": c.tested,
                "causes": [x.as_dict() for x in c.causes], "scope": self.scope,
                "elapsed_ms": round(self.elapsed_ms, 1), "computed_at_ms": self.computed_at_ms}


def finding_ref(client: Client, finding_id: str) -> FindingRef:
    rows = client.query(FINDING_REF_SQL, parameters={"id": finding_id}).result_rows
    if not rows:
        raise FindingNotFoundError(f"no finding {finding_id!r}")
    r = rows[0]
    return FindingRef(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6]), str(r[7]),
                      str(r[8]), int(r[9]), int(r[10]), dict(r[11]))


def _attribute_keys(client: Client, scope: Scope) -> list[str]:
    """The most frequent attribute keys of the scope with few enough values to be a dimension."""
    rows = client.query(
        "SELECT k, count() AS c, uniq(v) AS u FROM (SELECT Attributes FROM llm_calls "
        f"WHERE {scope.where} LIMIT {_KEY_SAMPLE}) ARRAY JOIN mapKeys(Attributes) AS k, mapValues(Attributes) AS v "
        f"GROUP BY k HAVING u <= {_MAX_ATTRIBUTE_VALUES} ORDER BY c DESC, k LIMIT {_MAX_ATTRIBUTE_KEYS + 2}",
        parameters=scope.params).result_rows
    return [str(k) for k, _, _ in rows if k not in _INTERNAL_KEYS][:_MAX_ATTRIBUTE_KEYS]


def combinations_frame(client: Client, scope: Scope, sample_above: int = SAMPLE_ABOVE,
                       ) -> tuple[pl.DataFrame, list[str], int]:
    """Affected and baseline call counts per combination of dimension values, the dimension names, and the
    baseline sampling factor (1: every baseline call counted; k: one in k, chosen by a hash of the span id)."""
    dims = {name: sql for name, sql in DIMENSIONS.items() if name not in scope.exclude}
    params = dict(scope.params)
    for i, key in enumerate(_attribute_keys(client, scope)):
        params[f"attr{i}"] = key
        dims[f"attr:{key}"] = f"Attributes[{{attr{i}:String}}]"
    names = list(dims)
    calls = int(client.query(f"SELECT count() FROM llm_calls WHERE {scope.where}", parameters=params).result_rows[0][0])
    factor = max(1, -(-calls // sample_above))
    sampled = f" AND (cityHash64(SpanId) % {factor} = 0 OR is_target)" if factor > 1 else ""
    select = ", ".join(f"{sql} AS d{i}" for i, sql in enumerate(dims.values()))
    group = ", ".join(f"d{i}" for i in range(len(names)))
    table = client.query_arrow(
        f"SELECT {select}, countIf(is_target) AS {TARGET}, countIf(NOT is_target) AS {BASELINE} "
        f"FROM (SELECT *, ({scope.target}) AS is_target FROM llm_calls WHERE {scope.where}{sampled}) "
        f"GROUP BY {group} LIMIT {_MAX_COMBINATIONS}",
        parameters=params)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    frame = frame.rename({f"d{i}": name for i, name in enumerate(names)})
    # LowCardinality columns arrive as dictionaries: compare them as plain strings.
    frame = frame.with_columns(pl.col(names).cast(pl.Utf8))
    return frame, names, factor


def explain(client: Client, finding_id: str, *, config: ContrastConfig | None = None,
            window_ns: int = DEFAULT_WINDOW_NS, sample_above: int = SAMPLE_ABOVE) -> Explanation:
    """Compute the explanation of one finding (not stored; see `explain_and_store`).

    Raises:
        FindingNotFoundError: no finding has this id.
    """
    started = time.perf_counter()
    ref = finding_ref(client, finding_id)
    per_call = 0
    if ref.kind == "window":
        per_call = int(client.query(
            "SELECT count() FROM llm_findings WHERE RuleId = {r:String} AND ServiceName = {s:String} AND Kind = "
            "'invariant'", parameters={"r": ref.metric.removeprefix("rate:"), "s": ref.service}).result_rows[0][0])
    scope = scope_of(ref, window_ns, per_call)
    frame, names, factor = combinations_frame(client, scope, sample_above)
    result = contrast(frame, names, config, baseline_scale=factor)
    elapsed = (time.perf_counter() - started) * 1000
    return Explanation(ref.finding_id, ref.service, ref.rule_id, ref.kind, result,
                       {**scope.description, "baseline_sampled_1_in": factor}, elapsed, time.time_ns() // 1_000_000)


EXPLANATION_COLUMNS = (
    "FindingId", "ComputedAt", "ServiceName", "RuleId", "Kind", "Verdict", "TopCause", "Summary", "Scope",
    "TargetCalls", "BaselineCalls", "Causes.Cause", "Causes.TargetCalls", "Causes.BaselineCalls",
    "Causes.TargetShare", "Causes.BaselineShare", "Causes.Lift", "Causes.PValue", "Narrative", "NarrativeModel",
    "ElapsedMs",
)


def store_explanation(client: Client, e: Explanation, narrative: str = "", narrative_model: str = "") -> None:
    """Write one `llm_explanations` row (the newest per finding wins)."""
    c = e.contrast
    causes = c.causes
    row = (e.finding_id, e.computed_at_ms, e.service, e.rule_id, e.kind, c.verdict,
           causes[0].cause if causes else "", e.summary, json.dumps(e.scope, sort_keys=True), c.target_calls,
           c.baseline_calls, [x.cause for x in causes], [x.target_calls for x in causes],
           [x.baseline_calls for x in causes], [x.target_share for x in causes], [x.baseline_share for x in causes],
           [x.lift for x in causes], [x.p_value for x in causes], narrative, narrative_model, e.elapsed_ms)
    client.insert(EXPLANATIONS_TABLE, [row], column_names=list(EXPLANATION_COLUMNS))


def explain_and_store(client: Client, finding_id: str, narrator: Callable[[dict[str, Any]], str | None] | None = None,
                      **kwargs: Any) -> Explanation:
    """Explain, optionally narrate (a failed narrative is just absent), store."""
    explanation = explain(client, finding_id, **kwargs)
    narrative = narrator(explanation.as_dict()) if narrator is not None else None
    store_explanation(client, explanation, narrative or "", getattr(narrator, "model", "") if narrative else "")
    return explanation


def stored_explanation(client: Client, finding_id: str) -> dict[str, Any] | None:
    """The stored explanation of a finding as a dict (the shape of `Explanation.as_dict`), or None."""
    rows = client.query(
        "SELECT FindingId, ServiceName, RuleId, Kind, Verdict, Summary, TopCause, TargetCalls, BaselineCalls, "
        "Causes.Cause, Causes.TargetCalls, Causes.BaselineCalls, Causes.TargetShare, Causes.BaselineShare, "
        "Causes.Lift, Causes.PValue, Scope, ElapsedMs, toUnixTimestamp64Milli(ComputedAt), Narrative, NarrativeModel "
        f"FROM {EXPLANATIONS_TABLE} FINAL WHERE FindingId = {{id:String}} LIMIT 1",
        parameters={"id": finding_id}).result_rows
    if not rows:
        return None
    r = rows[0]
    causes = [Cause(*values).as_dict() for values in zip(*r[9:16], strict=True)]
    return {"finding_id": r[0], "service": r[1], "rule_id": r[2], "kind": r[3], "verdict": r[4], "summary": r[5],
            "top_cause": r[6], "target_calls": int(r[7]), "baseline_calls": int(r[8]), "causes": causes,
            "scope": json.loads(r[16] or "{}"), "elapsed_ms": float(r[17]), "computed_at_ms": int(r[18]),
            "narrative": r[19], "narrative_model": r[20]}


def unexplained_findings(client: Client, since_ns: int, limit: int = 50) -> list[str]:
    """Ids of findings since `since_ns` without a stored explanation, newest first."""
    rows = client.query(
        "SELECT FindingId FROM llm_findings FINAL WHERE EventTime >= fromUnixTimestamp64Nano({since:Int64}) "
        f"AND FindingId NOT IN (SELECT FindingId FROM {EXPLANATIONS_TABLE}) "
        "ORDER BY DetectedAt DESC LIMIT {limit:UInt32}", parameters={"since": since_ns, "limit": limit}).result_rows
    return [str(r[0]) for r in rows]
