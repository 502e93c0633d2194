"""Rule files cannot make one evaluation expensive: expressions allocate little, regexes match in linear time."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from llmrel.analyzers.checks import CallFacts, compile_check, expression_problem
from llmrel.analyzers.ruleset import RuleFileError
from llmrel.analyzers.userregex import MAX_PATTERN_CHARS

from .helpers import make_call, ruleset_from


@pytest.mark.parametrize("expr", [
    "'a'.ljust(10**8) == 'a'",
    "output_text.center(10**8) == ''",
    "output_text.replace('a', 'b' * 99999) == ''",
    "'x'.zfill(10**8) == ''",
    "(10**64)**64 > 1",
    "'{}'.format(output_text) == ''",
])
def test_expressions_that_allocate_are_rejected_at_load(expr):
    assert expression_problem(expr) is not None


def test_a_rejected_expression_costs_nothing_at_run_time():
    """Even if one reached the engine (not through a rule file), it is skipped without allocating."""
    check = compile_check("expression", {"expr": "'a'.ljust(10**8) == 'a'"})
    call = make_call(1, output_text="hello")
    tracemalloc.start()
    check(call, CallFacts(call))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1 << 20


def test_reading_methods_still_work():
    check = compile_check("expression", {"expr": "output_text.lower().startswith('ok') and "
                                                 "attributes.get('tier', 'free') == 'free'"})
    call = make_call(1, output_text="OK, done")
    assert check(call, CallFacts(call)) is None


def test_long_expressions_are_rejected(tmp_path):
    with pytest.raises(RuleFileError, match="longer than"):
        ruleset_from(tmp_path, "rules:\n  - {id: r, kind: expression, expr: \"" + " + ".join(["1"] * 1500) + " > 0\"}")


@pytest.mark.parametrize("pattern, problem", [
    ("(?<=a)b", "RE2"),
    ("(a)\\\\1", "RE2"),
    ("a" * (MAX_PATTERN_CHARS + 1), "longer than"),
])
def test_regex_rules_must_be_linear_time_patterns(tmp_path, pattern, problem):
    with pytest.raises(RuleFileError, match=problem):
        ruleset_from(tmp_path, f"rules:\n  - {{id: r, kind: regex, pattern: \"{pattern}\"}}")


def test_a_catastrophic_pattern_runs_in_linear_time():
    """`(a+)+$` backtracks exponentially in Python's `re`; RE2 answers at once."""
    check = compile_check("regex", {"pattern": "(a+)+$", "must": "match", "field": "output_text",
                                    "ignore_case": False})
    call = make_call(1, output_text="a" * 100_000 + "!")
    start = time.perf_counter()
    violation = check(call, CallFacts(call))
    assert time.perf_counter() - start < 1.0 and violation is not None


def test_regex_ignore_case_and_refusal_pattern():
    check = compile_check("regex", {"pattern": "forbidden", "must": "not_match", "field": "output_text",
                                    "ignore_case": True})
    call = make_call(1, output_text="A FORBIDDEN word")
    assert check(call, CallFacts(call)) is not None
    refusal = compile_check("no_refusal", {"pattern": "as a bot"})
    call = make_call(2, output_text="As a bot I will not")
    assert refusal(call, CallFacts(call)) is not None
