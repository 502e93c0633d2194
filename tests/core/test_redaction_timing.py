"""Every redaction pattern runs in time linear in its input, on inputs built to make regexes backtrack.

Each case repeats an adversarial unit (a pattern's prefix that almost matches) to n characters,
n grown until one run takes 20 ms (or n reaches 128 Ki), then to 4n: the time ratio must stay well
under the 16x of a quadratic pattern (best of three runs, so a busy machine does not fail it).
The issue's repros (repeated PEM headers, runs of `(`, a long e-mail-like output) also get a
generous absolute bound at 1 MiB.
"""

from __future__ import annotations

import time

import pytest

from llmrel.analyzers.callfields import empty_call
from llmrel.analyzers.checks import CallFacts, compile_check
from llmrel_core.redaction import RULES, redact
from llmrel_core.redaction.engine import apply_rule

START_N, MAX_N = 16_000, 1 << 17
MAX_RATIO = 10.0  # 4x the input: linear takes 4x the time (plus allocator noise), quadratic 16x
FAST_PER_CHAR = 500e-9  # below this at 4n, timer noise dominates the ratio (quadratic: ~100 µs/char at 64k)

# Per rule label: units that drive its pattern into as much work as possible.
ADVERSARIAL: dict[str, list[str]] = {
    "PRIVATE_KEY": ["-----BEGIN RSA PRIVATE KEY-----\n", "-----BEGIN A A A ", "-----BEGIN PRIVATE KEY-----\nAAAA \n",
                    "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: x\n", "\\nAAAA"],
    "PASSWORD": ["a://b:", "://:", "x://a:b", "password=", "password: ", "token=", "a:b@"],
    "BEARER_TOKEN": ["bearer ", "Bearer a", "bearer\t"],
    "AUTHORIZATION": ["authorization: basic ", "Authorization:", "authorization=x "],
    "API_KEY": ["sk-", "sk_live_", "ghp_", "xoxb-", "api_key=", "x-api-key: ", "AIza"],
    "AWS_ACCESS_KEY": ["AKIA", "AKIAAAAA"],
    "AWS_SECRET_KEY": ["aB1/", "A/", "aws_secret_access_key=", "a"],
    "JWT": ["eyJ", "eyJ-", "eyJa.", "eyJaaaaa.eyJ"],
    "EMAIL": ["a@", "a.", "@a.", "a@a.", "a@a-", "@", "x@" + "a." * 9],
    "IBAN": ["de89 ", "DE89", "de89aaaa", "ab12 abcd "],
    "CARD": ["4111 ", "4.", "1", "1 ", "1-", "0  "],
    "SSN": ["123-45-", "ssn ", "1-1-", "social security "],
    "PHONE": ["(", "+1 ", "+(", "+33 6 ", "06 ", "0", "(0", "(1", ") ", "1/", "0 ", "1.", "+"],
}


def _best_of_three(fn, text: str) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        fn(text)
        best = min(best, time.perf_counter() - start)
    return best


def _repeat(unit: str, n: int) -> str:
    return (unit * (n // len(unit) + 1))[:n]


def _scaling(fn, unit: str) -> tuple[float, float]:
    """(time at 4n / time at n, seconds per character at 4n), n chosen so that the time at n is measurable."""
    n = START_N
    t_small = _best_of_three(fn, _repeat(unit, n))
    while t_small < 0.02 and n < MAX_N:
        n *= 2
        t_small = _best_of_three(fn, _repeat(unit, n))
    t_large = _best_of_three(fn, _repeat(unit, 4 * n))
    return t_large / max(t_small, 1e-4), t_large / (4 * n)


def test_every_rule_has_adversarial_cases():
    assert {rule.label for rule in RULES} == set(ADVERSARIAL)


@pytest.mark.parametrize("label", sorted(ADVERSARIAL))
def test_each_pattern_scales_linearly(label):
    """The pattern alone (gate bypassed), on every adversarial unit of its rule."""
    rules = [rule for rule in RULES if rule.label == label]
    for unit in ADVERSARIAL[label]:
        for rule in rules:
            ratio, per_char = _scaling(lambda text, rule=rule: apply_rule(rule, text), unit)
            assert ratio < MAX_RATIO or per_char < FAST_PER_CHAR, (label, unit, ratio, per_char)


@pytest.mark.parametrize("unit", sorted({u for units in ADVERSARIAL.values() for u in units}))
def test_redact_scales_linearly(unit):
    """The whole rule set, gates included, as the exporter and the receiver call it."""
    ratio, per_char = _scaling(redact, unit)
    assert ratio < MAX_RATIO or per_char < FAST_PER_CHAR, (unit, ratio, per_char)


@pytest.mark.parametrize("text", [
    pytest.param("-----BEGIN RSA PRIVATE KEY-----\n" * 33_000, id="repeated-pem-headers"),
    pytest.param("(" * (1 << 20), id="run-of-parentheses"),
    pytest.param("a" * (1 << 20) + "@", id="email-like"),
    pytest.param("1 " * (1 << 19), id="digit-groups"),
])
def test_issue_repros_finish_fast_at_one_mebibyte(text):
    """16 KB of repeated headers took 2.9 s and 1 MB over 10 min; now 1 MiB is a bounded, linear pass."""
    start = time.perf_counter()
    redact(text)
    assert time.perf_counter() - start < 10.0


def test_no_pii_on_a_long_email_like_output_is_fast():
    """The analyzer's e-mail check scanned 200k characters quadratically (a 60 KB output: 6 s)."""
    check = compile_check("no_pii", {"kinds": ("email", "phone", "card", "iban", "api_key", "bearer")})
    call = empty_call(output_text="a" * 60_000 + " x@y", status_code="Ok")
    start = time.perf_counter()
    check(call, CallFacts(call))
    assert time.perf_counter() - start < 1.0
