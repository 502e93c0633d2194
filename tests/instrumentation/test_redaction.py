"""Redaction rules: secrets and PII out, checksums respected, counts exact, JSON kept valid."""

from __future__ import annotations

import json
import random
import timeit

import pytest

from llmrel_instrumentation.redaction import is_content_key, redact


@pytest.mark.parametrize(("text", "expected", "count"), [
    pytest.param("key sk-proj-abcdefghijklmnopqrstuvwx", "key [REDACTED:API_KEY]", 1, id="openai-key"),
    pytest.param("Authorization: Bearer eyAbc.def-123_456", "Authorization: [REDACTED:BEARER_TOKEN]", 1,
                 id="bearer"),
    pytest.param("id AKIAIOSFODNN7EXAMPLE", "id [REDACTED:AWS_ACCESS_KEY]", 1, id="aws-access-key"),
    pytest.param("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                 "aws_secret_access_key = [REDACTED:AWS_SECRET_KEY]", 1, id="aws-secret"),
    pytest.param("token ghp_0123456789abcdefghijABCDEFGHIJ012345", "token [REDACTED:API_KEY]", 1, id="github"),
    pytest.param("write to jane.doe+x@mail.example.co.uk now", "write to [REDACTED:EMAIL] now", 1, id="email"),
    pytest.param("call +1 415 555 0100 or (415) 555-0100", "call [REDACTED:PHONE] or [REDACTED:PHONE]", 2,
                 id="phones"),
    pytest.param("card 4111 1111 1111 1111.", "card [REDACTED:CARD].", 1, id="visa-spaced"),
    pytest.param("card 5500-0000-0000-0004", "card [REDACTED:CARD]", 1, id="mastercard-dashed"),
    pytest.param("not a card 4111 1111 1111 1112", "not a card 4111 1111 1111 1112", 0, id="luhn-invalid"),
    pytest.param("IBAN DE89 3704 0044 0532 0130 00", "IBAN [REDACTED:IBAN]", 1, id="iban-spaced"),
    pytest.param("IBAN GB82WEST12345698765432", "IBAN [REDACTED:IBAN]", 1, id="iban-compact"),
    pytest.param("bad DE89370400440532013001", "bad DE89370400440532013001", 0, id="iban-checksum-invalid"),
    pytest.param("order 2024-01-15 #123456 at 12:30 costs 1,299.00", "order 2024-01-15 #123456 at 12:30 costs 1,299.00",
                 0, id="ordinary-numbers-kept"),
    pytest.param("ts 1764147600123 is Luhn-valid", "ts 1764147600123 is Luhn-valid", 0, id="epoch-ms-kept"),
    pytest.param("", "", 0, id="empty"),
])
def test_redact(text: str, expected: str, count: int) -> None:
    assert redact(text) == (expected, count)


def test_redacting_json_content_keeps_it_valid_json() -> None:
    messages = [{"role": "user", "parts": [{"type": "text", "content": "I am bob@example.com, card 4111111111111111,"
                                                                       " Bearer abcdefghijk123"}]}]
    redacted, count = redact(json.dumps(messages))
    assert count == 3
    assert json.loads(redacted)[0]["parts"][0]["content"] == (
        "I am [REDACTED:EMAIL], card [REDACTED:CARD], [REDACTED:BEARER_TOKEN]")


def test_random_luhn_valid_cards_are_always_redacted() -> None:
    rng = random.Random(5)
    for _ in range(200):
        prefix = [int(d) for d in rng.choice(("4", "51", "55", "2221", "6011", "65", "3528"))]
        digits = prefix + [rng.randrange(10) for _ in range(15 - len(prefix))]
        check = next(d for d in range(10) if _luhn([*digits, d]))
        number = "".join(map(str, [*digits, check]))
        assert redact(f"pay with {number} today") == ("pay with [REDACTED:CARD] today", 1)


def _luhn(digits: list[int]) -> bool:
    total = 0
    for index, digit in enumerate(reversed(digits)):
        value = digit * 2 if index % 2 else digit
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def test_content_keys() -> None:
    assert is_content_key("gen_ai.input.messages")
    assert is_content_key("llm.input_messages.0.message.content")
    assert is_content_key("gen_ai.completion.0.content")
    assert not is_content_key("gen_ai.request.model")
    assert not is_content_key("gen_ai.usage.input_tokens")


def test_clean_text_is_cheap() -> None:
    """Text with nothing to redact passes the gates only: no rule's pattern runs on it, and the whole call
    costs a small multiple of decoding and encoding the same JSON (measured in the same run, so a busy
    machine slows both)."""
    from llmrel_core.redaction import RULES
    from llmrel_core.redaction.engine import Probe

    content = "Summarize the refund policy for order 5521, please. " * 18
    text = json.dumps([{"role": "user", "content": content}])
    probe = Probe(content)
    assert [rule.label for rule in RULES if rule.gate(probe)] == []
    redaction = min(timeit.repeat(lambda: redact(text), number=200, repeat=5))
    json_round_trip = min(timeit.repeat(lambda: json.dumps(json.loads(text)), number=200, repeat=5))
    assert redaction < 30 * json_round_trip


@pytest.mark.parametrize("text, label", [
    (json.dumps("my key:\nsk-proj-abcdefghijklmnopqrstuvwx"), "API_KEY"),  # an escape before the secret
    (json.dumps("hi\nbob@example.com"), "EMAIL"),
    (json.dumps("jos\u00e9@example.com"), "EMAIL"),
    (json.dumps([{"role": "user", "parts": [{"type": "text", "content": "call\n415-555-2671"}]}]), "PHONE"),
    ('{"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}', "SECRET"),
])
def test_json_content_is_redacted_value_by_value_and_stays_valid_json(text, label):
    out, count = redact(text)
    assert count == 1
    assert f"[REDACTED:{label}]" in json.dumps(json.loads(out))


@pytest.mark.parametrize("text, kept", [
    ("4111111111111111 05/27", " 05/27"),  # expiry after the card
    ("4111 1111 1111 1111 123", " 123"),  # CVV after the card
    ("BE68 5390 0754 7034 EUR", " EUR"),  # currency after the IBAN
])
def test_checksummed_numbers_followed_by_other_text_are_still_found(text, kept):
    out, count = redact(text)
    assert count == 1 and out.endswith(kept) and "[REDACTED:" in out



def test_deeply_nested_content_does_not_lose_the_span() -> None:
    """`'[' * 500` in a content attribute raised RecursionError inside `redact()`."""
    from opentelemetry.sdk.trace import TracerProvider

    from llmrel_instrumentation.config import ContentPolicy
    from llmrel_instrumentation.content import prepare_span

    tracer = TracerProvider().get_tracer("test")
    for value in ("[" * 500, "[" * 500 + "]" * 500, "[" * 100_000):
        with tracer.start_as_current_span("chat") as span:
            span.set_attribute("gen_ai.input.messages", value)
            span.set_attribute("gen_ai.output.messages", '[{"content": "mail bob@example.com"}]')
        prepared = prepare_span(span, ContentPolicy.REDACTED)  # type: ignore[arg-type]
        assert "bob@example.com" not in prepared.attributes["gen_ai.output.messages"]
        assert prepared.attributes["llmrel.redactions"] == 1
