"""`action:` on rules and drift metrics: validated like the rest of the rule file (FILE:LINE), carried on each
finding with its scope filled in, and stored with the finding."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from llmrel.analyzers.drift import METRICS
from llmrel.analyzers.engine import Engine
from llmrel.analyzers.ruleset import RuleFileError
from llmrel.analyzers.runtime import Analyzer
from llmrel.findings import FINDING_COLUMNS, BreakerAction

from .helpers import make_call, ruleset_from

RULES = """\
rules:
  - id: support-bot-json
    kind: json_valid
    scope: {service: support-bot, operation: chat}
    action: {breaker: support-bot/chat, trip_after: 5, within: 2m}
  - id: errors
    kind: no_error
    action: {breaker: "{service}/{operation}/{model}"}
drift:
  actions:
    error_rate: {breaker: "{service}", trip_after: 1, within: 10m}
"""


def test_actions_parse_with_defaults(tmp_path) -> None:
    ruleset = ruleset_from(tmp_path, RULES)
    assert ruleset.actions() == {
        "support-bot-json": BreakerAction("support-bot/chat", 5, 120),
        "errors": BreakerAction("{service}/{operation}/{model}", 1, 60),
        "drift.error_rate": BreakerAction("{service}", 1, 600),
    }


def test_findings_carry_the_resolved_action_and_store_it(tmp_path) -> None:
    ruleset = ruleset_from(tmp_path, RULES)
    analyzer = Analyzer(Engine(dataclasses.replace(ruleset, drift=dataclasses.replace(ruleset.drift,
                                                                                      enabled=False))), None)
    bad_json = make_call(1, service_name="support-bot", output_text='{"a": ')
    failed = make_call(2, service_name="checkout", status_code="Error", model="openai/gpt-4o", operation="chat")
    plain = make_call(3, service_name="support-bot")
    by_rule = {f.rule_id: f for f in analyzer.process([bad_json, failed, plain])}
    assert by_rule["support-bot-json"].action == BreakerAction("support-bot/chat", 5, 120)
    assert by_rule["errors"].action == BreakerAction("checkout/chat/openai%2Fgpt-4o", 1, 60)
    row = dict(zip(FINDING_COLUMNS, by_rule["errors"].row(), strict=True))
    assert row["Attributes"] == {**by_rule["errors"].attributes, "action.breaker": "checkout/chat/openai%2Fgpt-4o",
                                 "action.trip_after": "1", "action.within_s": "60"}


def test_an_empty_placeholder_matches_anything(tmp_path) -> None:
    ruleset = ruleset_from(tmp_path, "rules:\n  - {id: e, kind: no_error, action: {breaker: '{service}/{feature}'}}\n")
    (finding,) = Analyzer(Engine(ruleset), None).process([make_call(1, status_code="Error", feature="")])
    assert finding.action.breaker == "support"


@pytest.mark.parametrize(("yaml", "problem"), [
    ("  - {id: r, kind: no_error, action: support-bot}", "action must be a mapping"),
    ("  - {id: r, kind: no_error, action: {trip_after: 2}}", "action.breaker action needs 'breaker'"),
    ("  - {id: r, kind: no_error, action: {breaker: '*/chat'}}", "must name a service"),
    ("  - {id: r, kind: no_error, action: {breaker: '{svc}/chat'}}", "unknown placeholder(s) ['svc']"),
    ("  - {id: r, kind: no_error, action: {breaker: 'a/b/c/d/e'}}", "at most 4"),
    ("  - {id: r, kind: no_error, action: {breaker: x, trip_after: 0}}", "trip_after must be an integer >= 1"),
    ("  - {id: r, kind: no_error, action: {breaker: x, within: soon}}", "action.within expected a duration"),
    ("  - {id: r, kind: no_error, action: {breaker: x, tripafter: 3}}", "unknown key 'tripafter'"),
])
def test_invalid_actions_are_reported_with_file_and_line(tmp_path, yaml: str, problem: str) -> None:
    with pytest.raises(RuleFileError) as error:
        ruleset_from(tmp_path, "rules:\n" + yaml + "\n")
    (line,) = error.value.problems
    assert line.startswith(f"{tmp_path / 'rules.yaml'}:2: rule 'r': ") and problem in line, line


def test_invalid_drift_actions_are_reported_with_their_lines(tmp_path) -> None:
    text = textwrap.dedent("""\
        drift:
          actions:
            latency: {breaker: svc}
            error_rate: {breaker: ''}
        """)
    with pytest.raises(RuleFileError) as error:
        ruleset_from(tmp_path, text)
    where = tmp_path / "rules.yaml"
    assert error.value.problems == [
        f"{where}:3: drift.actions: unknown metric 'latency'; known: {list(METRICS)}",
        f"{where}:4: drift.actions: action.breaker must be a scope like service/operation "
        "(placeholders {service}, {operation}, {model}, {feature})",
    ]
