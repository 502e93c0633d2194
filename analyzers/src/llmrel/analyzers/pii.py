"""PII and secret detection in model output, by the one rule set `llmrel_core.redaction` also redacts with.

The result names the kinds found, never the matched text, so findings do not copy the secret.
Kinds: e-mail, phone, card, IBAN, US SSN, API keys (OpenAI, Stripe, GitHub, AWS, …), bearer and
`Authorization` credentials, JWTs, private keys, passwords and other credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from llmrel_core.redaction import KINDS, scan

PII_KINDS: tuple[str, ...] = KINDS


def compile_scanner(kinds: Iterable[str] = PII_KINDS) -> Callable[[str], list[str]]:
    """A function returning the PII/secret kinds found in a text (empty list when clean).

    All rules run whatever `kinds` selects (so a key's digits are never reported as a phone);
    only the selected kinds are reported.

    Raises:
        ValueError: on an unknown kind.
    """
    selected = frozenset(kinds)
    unknown = sorted(selected - set(PII_KINDS))
    if unknown:
        raise ValueError(f"unknown PII kinds {unknown}; known: {list(PII_KINDS)}")

    def detect(text: str) -> list[str]:
        return scan(text, selected)

    return detect
