"""Secrets and PII out of prompt and response text, with a count of what was removed.

One rule set (`rules.RULES`) serves three callers: the app-side exporter and the receiver call
`redact`, the analyzers' `no_pii` check calls `scan`. Pure Python, no OpenTelemetry import.

JSON content (a message list, an OpenInference `input.value`) is redacted string by string after
decoding, so escapes such as `\\n` cannot hide a secret, fields named like credentials are
blanked whatever their value, and the result stays valid JSON.

Examples:
    >>> redact("mail bob@example.com, key sk-proj-abcdefghijklmnopqrstuv")
    ('mail [REDACTED:EMAIL], key [REDACTED:API_KEY]', 2)
    >>> redact("card 4111 1111 1111 1111 but not 1234 5678 9012 3456")
    ('card [REDACTED:CARD] but not 1234 5678 9012 3456', 1)
    >>> scan("call +33 6 12 34 56 78, password=hunter2")
    ['phone', 'credential']
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from llmrel_core.redaction.engine import MARKER, Probe, Rule, apply_rule
from llmrel_core.redaction.jsonwalk import SECRET_LABEL, is_secret_field, redact_document
from llmrel_core.redaction.rules import KINDS, RULES

__all__ = ["KINDS", "MAX_TEXT_CHARS", "RULES", "Rule", "is_secret_field", "redact", "redact_counts", "scan"]

MAX_TEXT_CHARS = 1 << 20
"""Longer text is cut here (and the cut marked `[REDACTED:TRUNCATED]`): bounded work per attribute."""

SECRET_REPLACEMENT = MARKER.format(label=SECRET_LABEL)
TRUNCATED = MARKER.format(label="TRUNCATED")


def _redact_text(text: str, rules: tuple[Rule, ...]) -> tuple[str, dict[str, int]]:
    counts: dict[str, int] = {}
    if rules is RULES and text.isalpha():  # `user`, `assistant`: each rule needs a digit, a symbol or a space
        return text, counts
    # Gates read the original text: replacements only remove candidates, so a gate that held may
    # cost a useless search but one that failed stays right.
    probe = Probe(text)
    for rule in rules:
        if rule.gate(probe):
            text, n = apply_rule(rule, text)
            if n:
                counts[rule.kind] = counts.get(rule.kind, 0) + n
    return text, counts


def redact_counts(text: str, rules: tuple[Rule, ...] = RULES) -> tuple[str, dict[str, int]]:
    """`text` with secrets and PII replaced by `[REDACTED:<LABEL>]`, and the replacements by kind.

    Args:
        text: Any string, typically a JSON-encoded message list.
        rules: The rules to apply, in order; defaults to `RULES`.

    Returns:
        The redacted text (unchanged, same object, when nothing was found) and the counts by kind;
        a text cut at `MAX_TEXT_CHARS` counts once under `truncated`.
    """
    truncated = len(text) > MAX_TEXT_CHARS
    if truncated:
        text = text[:MAX_TEXT_CHARS]
    elif text[:1] in ("[", "{", '"'):
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            pass
        else:
            cleaned, counts = redact_document(document, lambda s: _redact_text(s, rules), SECRET_REPLACEMENT)
            if not counts:
                return text, counts
            try:
                return json.dumps(cleaned, ensure_ascii=False), counts
            except RecursionError:  # decodable but too deep to encode again: redact it as text
                pass
    redacted, counts = _redact_text(text, rules)
    if truncated:
        redacted += TRUNCATED
        counts["truncated"] = 1
    return redacted, counts


def redact(text: str, rules: tuple[Rule, ...] = RULES) -> tuple[str, int]:
    """`text` with secrets and PII replaced, and the number of replacements (see `redact_counts`)."""
    redacted, counts = redact_counts(text, rules)
    return redacted, sum(counts.values())


def scan(text: str, kinds: Iterable[str] = KINDS) -> list[str]:
    """The kinds of secret or PII found in `text` (in `KINDS` order), by the same rules as `redact`."""
    _, counts = redact_counts(text)
    wanted = set(kinds)
    return [kind for kind in KINDS if kind in wanted and counts.get(kind)]
