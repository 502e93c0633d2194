"""`no_pii` reports what the shared redaction rules find: one rule set, two callers."""

from __future__ import annotations

import pytest

from llmrel.analyzers.callfields import empty_call
from llmrel.analyzers.checks import CallFacts, compile_check
from llmrel.analyzers.pii import PII_KINDS, compile_scanner
from llmrel_core.redaction import KINDS, redact
from tests.core.corpus import NEGATIVES, POSITIVES

scan = compile_scanner()


@pytest.mark.parametrize(("text", "kinds"), [
    ("Write to jane.doe+support@example.co.uk today.", ["email"]),
    ("Call +1 415-555-0132 or (020) 7946 0958.", ["phone"]),
    ("Card 4111 1111 1111 1111 exp 12/29", ["card"]),
    ("IBAN GB82 WEST 1234 5698 7654 32 please", ["iban"]),
    ("key sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234 in config", ["api_key"]),
    ("aws AKIAIOSFODNN7EXAMPLE", ["api_key"]),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abcdefghijklmnop", ["bearer"]),
    ("Your SSN 536-90-4399 is on file", ["ssn"]),
    ("Use sk_live_4eC39HqLyjWDarjtT1zdp7dc", ["api_key"]),
    ("connect to postgres://app:pw1234@127.0.0.1/db", ["credential"]),
])
def test_each_kind_is_found(text, kinds):
    assert scan(text) == kinds


@pytest.mark.parametrize("text", [
    "Your order 4111 1111 1111 1112 shipped.",  # fails Luhn
    "Reference GB82 WEST 1234 5698 7654 33",  # fails mod-97
    "Version 2.1.0 released on 2026-11-26 with 3 fixes.",
    "The answer is 42.",
    "Bearer of good news.",
    "A plain answer without anything sensitive.",
])
def test_look_alikes_are_not_flagged(text):
    assert scan(text) == []


def test_no_pii_and_redact_share_one_rule_set():
    """Whatever `redact` removes, `no_pii` reports, and the reverse, over the whole corpus."""
    assert PII_KINDS == KINDS
    for text, kind, _ in POSITIVES:
        assert kind in scan(text) and redact(text)[1] >= 1, text
    for _, text in NEGATIVES:
        assert scan(text) == [] and redact(text)[1] == 0, text


def test_kinds_can_be_selected_and_unknown_kinds_rejected():
    assert compile_scanner(["email"])("4111 1111 1111 1111 a@b.io") == ["email"]
    with pytest.raises(ValueError, match="unknown PII kinds"):
        compile_scanner(["passport"])


def test_the_check_reports_kinds_not_the_matched_text():
    check = compile_check("no_pii", {"kinds": PII_KINDS})
    call = empty_call(output_text="Sure: password=hunter2, card 4111 1111 1111 1111", status_code="Ok")
    violation = check(call, CallFacts(call))
    assert violation.attributes == {"pii": "card,credential"} and "hunter2" not in violation.message
