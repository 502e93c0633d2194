"""PII and secret detection: checksums keep digit runs that are not cards or IBANs out."""

from __future__ import annotations

import pytest

from llmrel.analyzers.pii import compile_scanner, iban_valid, luhn_valid

scan = compile_scanner()


@pytest.mark.parametrize(("text", "kinds"), [
    ("Write to jane.doe+support@example.co.uk today.", ["email"]),
    ("Call +1 415-555-0132 or (020) 7946 0958.", ["phone"]),
    ("Card 4111 1111 1111 1111 exp 12/29", ["card"]),
    ("IBAN GB82 WEST 1234 5698 7654 32 please", ["iban"]),
    ("key sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234 in config", ["api_key"]),
    ("aws AKIAIOSFODNN7EXAMPLE", ["api_key"]),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abcdefghijklmnop", ["bearer"]),
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


def test_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")


def test_kinds_can_be_selected_and_unknown_kinds_rejected():
    assert compile_scanner(["email"])("4111 1111 1111 1111 a@b.io") == ["email"]
    with pytest.raises(ValueError, match="unknown PII kinds"):
        compile_scanner(["ssn"])
