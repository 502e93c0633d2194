"""Every rule kind with passing and failing calls, and rule files validated with line numbers."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from llmrel.analyzers.engine import Engine
from llmrel.analyzers.ruleset import RuleFileError, check_rule_file, load_ruleset

from .helpers import make_call, ruleset_from


def _engine(tmp_path, rule_yaml: str) -> Engine:
    ruleset = ruleset_from(tmp_path, "rules:\n" + textwrap.indent(textwrap.dedent(rule_yaml), "  "))
    return Engine(dataclasses.replace(ruleset, drift=dataclasses.replace(ruleset.drift, enabled=False)))


def _fired(engine: Engine, call) -> list[str]:
    return [f.message for f in engine.process([call])]


CASES = [
    ("json_valid", "- {id: r, kind: json_valid}",
     {"output_text": '{"a": 1}'}, {"output_text": '{"a": 1'}),
    ("json_valid fenced", "- {id: r, kind: json_valid}",
     {"output_text": '```json\n{"a": 1}\n```'}, {"output_text": "```json\n{\"a\": \n```"}),
    ("json_schema", """
     - id: r
       kind: json_schema
       schema: {type: object, required: [answer], properties: {answer: {type: string}}}
     """, {"output_text": '{"answer": "yes"}'}, {"output_text": '{"answer": 3}'}),
    ("regex must not match", "- {id: r, kind: regex, pattern: 'lorem ipsum', ignore_case: true}",
     {"output_text": "fine"}, {"output_text": "Lorem Ipsum dolor"}),
    ("regex must match", "- {id: r, kind: regex, pattern: '^ORDER-\\d+$', must: match}",
     {"output_text": "ORDER-42"}, {"output_text": "order 42"}),
    ("no_pii", "- {id: r, kind: no_pii}",
     {"output_text": "Call us any time."}, {"output_text": "Mail jane.doe@example.com for help."}),
    ("not_empty", "- {id: r, kind: not_empty}",
     {"output_text": "ok"}, {"output_text": "   "}),
    ("no_refusal", "- {id: r, kind: no_refusal}",
     {"output_text": "Sure, here it is."}, {"output_text": "I'm sorry, but I can't help with that."}),
    ("finish_reason", "- {id: r, kind: finish_reason, not_in: [length, content_filter]}",
     {"finish_reason": "stop"}, {"finish_reason": "length"}),
    ("bounds latency", "- {id: r, kind: bounds, field: latency_ms, max: 5000}",
     {"duration_ns": 4_000_000_000}, {"duration_ns": 6_000_000_000}),
    ("bounds tokens min", "- {id: r, kind: bounds, field: output_tokens, min: 5}",
     {"output_tokens": 5}, {"output_tokens": 2}),
    ("bounds cost", "- {id: r, kind: bounds, field: cost_usd, max: 0.05}",
     {"cost_usd": 0.01}, {"cost_usd": 0.2}),
    ("bounds ttft", "- {id: r, kind: bounds, field: ttft_ms, max: 1000}",
     {"time_to_first_token_ns": 500_000_000}, {"time_to_first_token_ns": 1_500_000_000}),
    ("model_allowed", "- {id: r, kind: model_allowed, models: ['gpt-4o-2024-*']}",
     {"response_model": "gpt-4o-2024-08-06"}, {"response_model": "gpt-4o-mini-2024-07-18"}),
    ("expression", "- {id: r, kind: expression, expr: \"output_tokens <= 2 * input_tokens and not is_error\"}",
     {"output_tokens": 50}, {"output_tokens": 500}),
    ("no_error", "- {id: r, kind: no_error}",
     {"status_code": "Ok"}, {"status_code": "Error", "error_type": "RateLimitError"}),
]


@pytest.mark.parametrize(("rule_yaml", "passing", "failing"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_kind_passes_and_fails(tmp_path, rule_yaml, passing, failing):
    engine = _engine(tmp_path, rule_yaml)
    assert _fired(engine, make_call(1, **passing)) == []
    findings = engine.process([make_call(2, **failing)])
    assert len(findings) == 1
    finding = findings[0]
    assert (finding.kind, finding.rule_id, finding.trace_id) == ("invariant", "r", f"{2:032x}")
    assert finding.cost_usd == make_call(2, **failing).cost_usd


@pytest.mark.parametrize("kind", ["json_valid", "no_pii", "no_refusal", "regex"])
def test_content_rules_skip_calls_without_captured_output(tmp_path, kind):
    extra = ", pattern: x, must: match" if kind == "regex" else ""
    engine = _engine(tmp_path, f"- {{id: r, kind: {kind}{extra}}}")
    assert _fired(engine, make_call(1, output_text="", input_text="")) == []


def test_not_empty_needs_evidence_that_content_was_captured(tmp_path):
    engine = _engine(tmp_path, "- {id: r, kind: not_empty}")
    assert _fired(engine, make_call(1, output_text="", input_text="")) == []  # capture off
    assert _fired(engine, make_call(2, output_text="", input_text="", output_tokens=0)) == ["output is empty"]
    assert _fired(engine, make_call(3, output_text="", tool_calls=2)) == []  # a tool-call-only answer


def test_json_valid_looks_like_mode_ignores_prose(tmp_path):
    engine = _engine(tmp_path, "- {id: r, kind: json_valid, mode: looks_like}")
    assert _fired(engine, make_call(1, output_text="plain prose")) == []
    assert _fired(engine, make_call(2, output_text='{"cut": "of')) == ["output is not valid JSON"]


def test_scope_filters_and_impact(tmp_path):
    engine = _engine(tmp_path, """
        - id: r
          kind: no_error
          impact_usd: 2.5
          scope: {service: [checkout-*], tenant: acme}
        """)
    assert engine.process([make_call(1, status_code="Error", service_name="support")]) == []
    assert engine.process([make_call(2, status_code="Error", service_name="checkout-api", tenant="other")]) == []
    [finding] = engine.process([make_call(3, status_code="Error", service_name="checkout-api")])
    assert finding.impact_usd == 2.5 and finding.service_name == "checkout-api"


def test_expression_is_sandboxed(tmp_path):
    with pytest.raises(RuleFileError) as err:
        ruleset_from(tmp_path, "rules:\n  - {id: r, kind: expression, expr: \"__import__('os').getcwd()\"}")
    assert "rules.yaml:2:" in err.value.problems[0]


def test_default_pack_loads_and_covers_the_failure_modes():
    ruleset = load_ruleset()
    kinds = {r.kind for r in ruleset.rules}
    assert {"no_error", "finish_reason", "no_pii", "json_valid", "trace_limit", "window_rate"} <= kinds
    assert ruleset.drift.enabled


def test_user_file_replaces_disables_and_tunes(tmp_path):
    path = tmp_path / "user.yaml"
    path.write_text(textwrap.dedent("""\
        disable: [refusal]
        rules:
          - {id: call-error, kind: no_error, severity: critical, impact_usd: 1}
          - {id: tokens, kind: bounds, field: total_tokens, max: 10000}
        drift:
          warmup: 500
          by_feature: true
        """))
    ruleset = load_ruleset(path)
    by_id = ruleset.by_id()
    assert "refusal" not in by_id and "tokens" in by_id
    assert by_id["call-error"].severity == "critical"
    assert (ruleset.drift.warmup, ruleset.drift.by_feature) == (500, True)


def test_every_problem_is_reported_with_its_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent("""\
        rules:
          - id: ok-rule
            kind: no_error
          - id: Bad Id
            kind: no_error
          - id: unknown-kind
            kind: sentiment
          - id: bounds-without-limits
            kind: bounds
            field: latency_ms
          - id: bad-regex
            kind: regex
            pattern: "(unclosed"
          - id: ok-rule
            kind: no_error
          - id: rate
            kind: window_rate
            of: missing-rule
            window: 10 minutes
            threshold: 5
          - id: scoped
            kind: no_error
            scope: {region: eu}
            severity: urgent
        drift:
          warmup: -1
          colour: red
        """))
    problems = check_rule_file(path)
    lines = {int(p.split(":")[1]) for p in problems}
    assert {4, 7, 8, 13, 14, 19, 20, 23, 24, 26, 27} <= lines, problems
    assert any("window must" not in p and "duration" in p for p in problems)
    assert all(p.startswith(f"{path}:") for p in problems)


def test_yaml_syntax_error_has_its_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("rules:\n  - id: a\n    kind: no_error\n  - id: [b\n")
    [problem] = check_rule_file(path)
    assert problem.startswith(f"{path}:") and "YAML syntax" in problem
    assert int(problem.split(":")[1]) in (4, 5)


def test_window_rate_must_reference_a_per_call_rule(tmp_path):
    with pytest.raises(RuleFileError) as err:
        ruleset_from(tmp_path, textwrap.dedent("""\
            rules:
              - {id: b, kind: budget, window: 1h, max: 10}
              - {id: w, kind: window_rate, of: b, window: 10m, threshold: 0.1}
            """))
    where = tmp_path / "rules.yaml"
    assert err.value.problems == [f"{where}:3: rule 'w': of 'b' must name a per-call rule (one of [])"]


@pytest.mark.parametrize("expr, problem", [
    ("9**3999999 > 1", "exponent above"),
    ("[x for x in output_text] == []", "ListComp"),
    ("attributes.clear() or True", "clear"),
])
def test_expressions_cannot_burn_cpu_or_change_the_call(expr, problem):
    from llmrel.analyzers.checks import expression_problem

    assert problem in (expression_problem(expr) or "")


@pytest.mark.parametrize("expr", ["attributes['tier'] != 'free'", "output_text[0] == '{'", "1 / tool_calls > 0"])
def test_expressions_that_need_a_real_call_are_accepted_at_load(expr):
    from llmrel.analyzers.checks import expression_problem

    assert expression_problem(expr) is None
