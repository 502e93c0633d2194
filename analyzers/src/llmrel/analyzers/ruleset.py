"""Rule files: YAML parsed with line marks, validated with every problem listed, merged with the default pack.

A rule file has three optional top-level keys: `rules` (a list of rules), `disable` (ids of
default-pack rules to turn off) and `drift` (overrides of `DriftConfig`, plus `actions` per
metric). A rule or a drift metric may declare an `action` (see `ruleaction`). A user rule with
the id of a default rule replaces it. Problems read `FILE:LINE: message`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from llmrel.analyzers.callfields import SCOPE_KEYS
from llmrel.analyzers.checks import expression_problem, schema_problem
from llmrel.analyzers.drift import METRICS, DriftConfig
from llmrel.analyzers.ruleaction import BreakerAction, parse_action
from llmrel.analyzers.ruleparams import (
    PARAMS,
    Checker,
    as_bool,
    as_count,
    as_non_negative,
    as_number,
    as_str_list,
)
from llmrel.analyzers.yamlmarks import MarkedDict, YamlSyntaxError, load_marked
from llmrel.config import ConfigError
from llmrel.findings import SEVERITIES

PER_CALL_KINDS: tuple[str, ...] = (
    "json_valid", "json_schema", "regex", "no_pii", "not_empty", "no_refusal", "finish_reason", "bounds",
    "model_allowed", "expression", "no_error",
)
STATEFUL_KINDS: tuple[str, ...] = ("trace_limit", "window_rate", "budget")
RULE_KINDS = PER_CALL_KINDS + STATEFUL_KINDS

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_COMMON_KEYS = frozenset({"id", "kind", "severity", "scope", "impact_usd", "description", "action"})


@dataclass(frozen=True)
class Scope:
    """Glob filters on call keys; an empty tuple matches everything."""

    service: tuple[str, ...] = ()
    model: tuple[str, ...] = ()
    operation: tuple[str, ...] = ()
    feature: tuple[str, ...] = ()
    tenant: tuple[str, ...] = ()

    def matches(self, values: tuple[str, ...]) -> bool:
        """`values` in `SCOPE_KEYS` order (see `callfields.scope_values`)."""
        for patterns, value in zip(dataclasses.astuple(self), values, strict=True):
            if patterns and not any(fnmatchcase(value, p) for p in patterns):
                return False
        return True


@dataclass(frozen=True)
class Rule:
    """One validated rule. `params` holds the kind-specific keys with defaults filled in."""

    id: str
    kind: str
    severity: str
    scope: Scope
    impact_usd: float
    params: Mapping[str, Any]
    description: str = ""
    source: str = ""
    line: int = 0
    action: BreakerAction | None = None

    @property
    def fingerprint(self) -> str:
        """Changes when the rule's meaning changes (used to keep or drop its state on restart)."""
        body = json.dumps([self.kind, dataclasses.asdict(self.scope), dict(self.params)], sort_keys=True,
                          default=str)
        return hashlib.blake2b(body.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    drift: DriftConfig
    drift_actions: Mapping[str, BreakerAction] = dataclasses.field(default_factory=dict)

    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}

    def actions(self) -> dict[str, BreakerAction]:
        """Declared actions by the rule id their findings carry (`drift.<metric>` for drift metrics)."""
        declared = {r.id: r.action for r in self.rules if r.action is not None}
        declared.update({f"drift.{metric}": action for metric, action in self.drift_actions.items()})
        return declared


class RuleFileError(ConfigError, ValueError):
    """Every problem found in one or more rule files, one `FILE:LINE: message` per entry.

    A `ConfigError`, so start-up reports it like any other invalid setting.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _kind_problems(kind: str, params: dict[str, Any]) -> list[str]:
    """Checks that need more than one parameter or a library (schema, expression)."""
    if kind == "bounds" and params.get("min") is None and params.get("max") is None:
        return ["bounds needs min, max or both"]
    if kind == "json_schema":
        problem = schema_problem(params["schema"])
        return [f"schema: {problem}"] if problem else []
    if kind == "expression":
        problem = expression_problem(params["expr"])
        return [f"expr: {problem}"] if problem else []
    return []


def _parse_rule(raw: Any, line: int, where: str, problems: list[str]) -> Rule | None:
    def report(at: int, message: str) -> None:
        problems.append(f"{where}:{at}: {rule_name}{message}")

    rule_name = ""
    if not isinstance(raw, MarkedDict):
        problems.append(f"{where}:{line}: a rule must be a mapping")
        return None
    rule_id, kind = raw.get("id"), raw.get("kind")
    rule_name = f"rule {rule_id!r}: " if isinstance(rule_id, str) else ""
    before = len(problems)
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        report(raw.line_of("id"), "id must match [a-z0-9][a-z0-9_.-]* (at most 64 characters)")
    if kind not in RULE_KINDS:
        report(raw.line_of("kind"), f"kind must be one of {list(RULE_KINDS)}")
        return None
    severity = raw.get("severity", "warning")
    if severity not in SEVERITIES:
        report(raw.line_of("severity"), f"severity must be one of {list(SEVERITIES)}")
    impact, problem = as_non_negative(raw.get("impact_usd", 0.0))
    if problem:
        report(raw.line_of("impact_usd"), f"impact_usd {problem}")
    scope = _parse_scope(raw.get("scope"), raw, report)
    action = parse_action(raw["action"], raw.line_of("action"), report) if "action" in raw else None
    spec = PARAMS[kind]
    for key in raw:
        if key not in spec and key not in _COMMON_KEYS:
            report(raw.line_of(key), f"unknown key {key!r} for kind {kind}; allowed: {sorted(spec)}")
    params: dict[str, Any] = {}
    for key, (check, required, default) in spec.items():
        if key not in raw:
            if required:
                report(raw.line, f"{kind} needs {key!r}")
            params[key] = default
            continue
        params[key], problem = check(raw[key])
        if problem:
            report(raw.line_of(key), f"{key} {problem}")
    if len(problems) > before:
        return None
    for problem in _kind_problems(kind, params):
        report(raw.line, problem)
    if len(problems) > before:
        return None
    description = raw.get("description", "")
    return Rule(id=rule_id, kind=kind, severity=severity, scope=scope, impact_usd=impact, params=params,
                description=str(description), source=where, line=raw.line, action=action)


def _parse_scope(raw: Any, rule: MarkedDict, report: Callable[[int, str], None]) -> Scope:
    if raw is None:
        return Scope()
    if not isinstance(raw, MarkedDict):
        report(rule.line_of("scope"), "scope must be a mapping of " + ", ".join(SCOPE_KEYS))
        return Scope()
    values: dict[str, tuple[str, ...]] = {}
    for key, value in raw.items():
        if key not in SCOPE_KEYS:
            report(raw.line_of(key), f"unknown scope key {key!r}; allowed: {list(SCOPE_KEYS)}")
            continue
        converted, problem = as_str_list(value)
        if problem:
            report(raw.line_of(key), f"scope.{key} {problem}")
        else:
            values[key] = converted
    return Scope(**values)


_DRIFT_TYPES: dict[str, Checker] = {
    "enabled": as_bool, "by_feature": as_bool, "metrics": as_str_list, "false_alarm_calls": as_number,
    "warmup": as_count, "prior_calls": as_count, "cooldown": as_count, "min_effect": as_number,
    "min_rate_change": as_number, "min_rate_ratio": as_number, "model_share": as_number, "max_streams": as_count,
    "history_hours": as_number, "history_calls": as_count,
}


def _parse_drift_actions(raw: Any, line: int, where: str, problems: list[str]) -> dict[str, BreakerAction]:
    """`drift.actions`: metric -> action."""
    def report(at: int, message: str) -> None:
        problems.append(f"{where}:{at}: drift.actions: {message}")

    if not isinstance(raw, MarkedDict):
        report(line, "must be a mapping of metric -> {breaker, trip_after, within}")
        return {}
    actions = {}
    for metric, value in raw.items():
        if metric not in METRICS:
            report(raw.line_of(metric), f"unknown metric {metric!r}; known: {list(METRICS)}")
            continue
        action = parse_action(value, raw.line_of(metric), report)
        if action is not None:
            actions[metric] = action
    return actions


def _parse_drift(raw: Any, where: str, problems: list[str],
                 actions: dict[str, BreakerAction] | None = None) -> dict[str, Any]:
    if not isinstance(raw, MarkedDict):
        problems.append(f"{where}:{getattr(raw, 'line', 1)}: drift must be a mapping")
        return {}
    overrides: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "actions":
            parsed = _parse_drift_actions(value, raw.line_of(key), where, problems)
            if actions is not None:
                actions.update(parsed)
            continue
        check = _DRIFT_TYPES.get(key)
        if check is None:
            problems.append(f"{where}:{raw.line_of(key)}: drift: unknown key {key!r}; "
                            f"allowed: {sorted([*_DRIFT_TYPES, 'actions'])}")
            continue
        converted, problem = check(value)
        if problem:
            problems.append(f"{where}:{raw.line_of(key)}: drift.{key} {problem}")
            continue
        counts = ("warmup", "prior_calls", "cooldown", "max_streams", "history_calls")
        overrides[key] = int(converted) if key in counts else converted
    for problem in dataclasses.replace(DriftConfig(), **overrides).validate():
        key = problem.split(":")[0].removeprefix("drift.")
        problems.append(f"{where}:{raw.line_of(key)}: {problem}")
    return overrides


@dataclass
class ParsedFile:
    rules: list[Rule]
    disable: list[str]
    drift: dict[str, Any]
    disable_line: int = 0
    drift_actions: dict[str, BreakerAction] = dataclasses.field(default_factory=dict)


def parse_rule_file(text: str, where: str) -> tuple[ParsedFile, list[str]]:
    """Parse and validate one rule file's text. Returns what parsed and every problem found."""
    problems: list[str] = []
    parsed = ParsedFile([], [], {})
    try:
        doc = load_marked(text)
    except YamlSyntaxError as exc:
        return parsed, [f"{where}:{exc.line}: YAML syntax: {exc}"]
    if doc is None:
        return parsed, []
    if not isinstance(doc, MarkedDict):
        return parsed, [f"{where}:1: a rule file must be a mapping with rules, disable, drift"]
    for key in doc:
        if key not in ("rules", "disable", "drift", "version"):
            problems.append(f"{where}:{doc.line_of(key)}: unknown top-level key {key!r}; "
                            "allowed: rules, disable, drift")
    raw_rules = doc.get("rules") or []
    if not isinstance(raw_rules, list):
        problems.append(f"{where}:{doc.line_of('rules')}: rules must be a list")
        raw_rules = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_rules):
        line = raw_rules.item_lines[index] if hasattr(raw_rules, "item_lines") else doc.line_of("rules")
        rule = _parse_rule(raw, line, where, problems)
        if rule is None:
            continue
        if rule.id in seen:
            problems.append(f"{where}:{rule.line}: rule {rule.id!r}: duplicate id (first at line {seen[rule.id]})")
            continue
        seen[rule.id] = rule.line
        parsed.rules.append(rule)
    if "disable" in doc:
        ids, problem = as_str_list(doc["disable"])
        if problem:
            problems.append(f"{where}:{doc.line_of('disable')}: disable {problem}")
        else:
            parsed.disable, parsed.disable_line = list(ids), doc.line_of("disable")
    if "drift" in doc:
        parsed.drift = _parse_drift(doc["drift"], where, problems, parsed.drift_actions)
    return parsed, problems


def default_rules_path() -> Path:
    """The shipped default pack."""
    return Path(__file__).parent / "rules" / "default.yaml"


def _cross_problems(rules: list[Rule]) -> list[str]:
    per_call = {r.id for r in rules if r.kind in PER_CALL_KINDS}
    return [f"{r.source}:{r.line}: rule {r.id!r}: of {r.params['of']!r} must name a per-call rule "
            f"(one of {sorted(per_call)})"
            for r in rules if r.kind == "window_rate" and r.params["of"] not in per_call]


def load_ruleset(user_file: Path | None = None, *, include_default: bool = True) -> RuleSet:
    """The default pack merged with a user file (user rules replace defaults with the same id).

    Raises:
        RuleFileError: listing every problem of every file.
    """
    sources = ([default_rules_path()] if include_default else []) + ([Path(user_file)] if user_file else [])
    rules: dict[str, Rule] = {}
    drift: dict[str, Any] = {}
    drift_actions: dict[str, BreakerAction] = {}
    problems: list[str] = []
    for path in sources:
        try:
            text = path.read_text()
        except OSError as exc:
            problems.append(f"{path}:0: cannot read: {exc.strerror or exc}")
            continue
        parsed, file_problems = parse_rule_file(text, str(path))
        problems += sorted(file_problems, key=lambda p: _problem_line(p, str(path)))
        for rule_id in parsed.disable:
            if rule_id not in rules:
                problems.append(f"{path}:{parsed.disable_line}: disable: no default rule {rule_id!r}")
            rules.pop(rule_id, None)
        rules.update({r.id: r for r in parsed.rules})
        drift.update(parsed.drift)
        drift_actions.update(parsed.drift_actions)
    merged = list(rules.values())
    problems += _cross_problems(merged)
    if problems:
        raise RuleFileError(problems)
    return RuleSet(rules=tuple(merged), drift=dataclasses.replace(DriftConfig(), **_drift_values(drift)),
                   drift_actions=drift_actions)


def _problem_line(problem: str, where: str) -> int:
    """The line of a `WHERE:LINE: message` problem."""
    line = problem[len(where) + 1:].split(":", 1)[0]
    return int(line) if line.isdigit() else 0


def _drift_values(overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if k == "metrics" else v for k, v in overrides.items()}


def check_rule_file(path: Path) -> list[str]:
    """Problems of a user rule file checked together with the default pack (empty when valid)."""
    try:
        load_ruleset(path)
    except RuleFileError as exc:
        return exc.problems
    return []
