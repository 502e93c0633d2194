"""The shared rule set: what it catches, what it leaves alone, JSON handling, hostile shapes."""

from __future__ import annotations

import json

import pytest

from llmrel_core.checksums import card_valid, iban_valid, luhn_valid, ssn_valid
from llmrel_core.redaction import KINDS, MAX_TEXT_CHARS, is_secret_field, redact, redact_counts, scan
from tests.core.corpus import NEGATIVES, POSITIVES


@pytest.mark.parametrize(("text", "kind", "secret"), POSITIVES, ids=[f"{k}-{i}" for i, (_, k, _) in
                                                                      enumerate(POSITIVES)])
def test_positive_is_redacted_and_reported(text, kind, secret):
    redacted, count = redact(text)
    assert secret not in redacted and count >= 1, redacted
    assert kind in scan(text)


@pytest.mark.parametrize(("category", "text"), NEGATIVES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(NEGATIVES)])
def test_look_alike_is_kept(category, text):
    assert redact(text) == (text, 0)
    assert scan(text) == []


def test_corpus_covers_every_kind():
    assert {kind for _, kind, _ in POSITIVES} == set(KINDS)


def test_json_stays_valid_and_secret_fields_are_blanked_whatever_their_value():
    document = [{"role": "user", "content": "I am bob@example.com, call\n415-555-2671"},
                {"token": "abc", "password": 1234, "apiKey": 5.5, "max_tokens": 100, "ok": True,
                 "credentials": {"user": "bob", "secret": "s"}}]
    redacted, counts = redact_counts(json.dumps(document))
    out = json.loads(redacted)
    assert out[0]["content"] == "I am [REDACTED:EMAIL], call\n[REDACTED:PHONE]"
    assert out[1] == {"token": "[REDACTED:SECRET]", "password": "[REDACTED:SECRET]", "apiKey": "[REDACTED:SECRET]",
                      "max_tokens": 100, "ok": True, "credentials": {"user": "bob", "secret": "[REDACTED:SECRET]"}}
    assert counts == {"email": 1, "phone": 1, "credential": 4}


@pytest.mark.parametrize("name, secret", [
    ("password", True), ("db_password", True), ("clientSecret", True), ("x-api-key", True), ("access_token", True),
    ("token", True), ("Authorization", True), ("private_key", True), ("max_tokens", False), ("token_count", False),
    ("cache_key", False), ("tokens", False), ("key", False), ("content", False),
])
def test_secret_field_names(name, secret):
    assert is_secret_field(name) is secret


@pytest.mark.parametrize("depth", [500, 5_000, 100_000])
def test_deeply_nested_json_never_raises(depth):
    """`'[' * 500` in a content attribute raised RecursionError and lost the whole request."""
    for text in ("[" * depth, "[" * depth + "]" * depth, '{"a":' * depth + '"bob@example.com"' + "}" * depth):
        redacted, _ = redact(text)
        assert "bob@example.com" not in redacted


def test_nested_json_is_walked_without_recursion():
    text = json.dumps(json.loads("[" * 900 + '"mail bob@example.com"' + "]" * 900))
    redacted, count = redact(text)
    assert count == 1 and "[REDACTED:EMAIL]" in redacted and json.loads(redacted)


def test_oversized_text_is_cut_and_marked():
    text = "x" * MAX_TEXT_CHARS + " bob@example.com"
    redacted, counts = redact_counts(text)
    assert redacted.endswith("[REDACTED:TRUNCATED]") and "bob@" not in redacted and counts == {"truncated": 1}
    assert scan(text) == []


def test_unchanged_text_is_returned_as_is():
    text = json.dumps([{"role": "user", "content": "nothing to see"}])
    assert redact(text)[0] is text


@pytest.mark.parametrize("text, kept", [
    ("4111111111111111 05/27", " 05/27"),  # expiry after the card
    ("4111 1111 1111 1111 123", " 123"),  # CVV after the card
    ("BE68 5390 0754 7034 EUR", " EUR"),  # currency after the IBAN
    ("+33 6 12 34 56 78 2026", " 2026"),  # a year after the phone number
])
def test_checksummed_numbers_followed_by_other_text_are_still_found(text, kept):
    out, count = redact(text)
    assert count == 1 and out.endswith(kept) and "[REDACTED:" in out


def test_validation_work_per_text_is_bounded_and_fails_closed():
    """Thousands of phone-shaped candidates: validated up to a budget, then redacted unvalidated."""
    text = ", ".join(f"0{i % 10}.00.00.00.0{i % 7}" for i in range(2_000))
    redacted, _ = redact(text)
    assert redacted.count("[REDACTED:PHONE]") > 1_000


def test_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert card_valid("4111-1111-1111-1111") and not card_valid("1764147600123")  # right checksum, no issuer
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")
    assert not iban_valid("DE8937040044053201300")  # a German IBAN has 22 characters
    assert ssn_valid("536-90-4399") and not ssn_valid("000-12-3456") and not ssn_valid("078-05-1120")
