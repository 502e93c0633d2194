"""Redaction rules for prompt and response text: secrets and PII out, a count of what was removed.

Pure and dependency-free (no OpenTelemetry import), so the app-side exporter and the server-side
receiver apply exactly the same rules. Every rule is a precompiled regex behind a cheap substring
or digit pre-check; numbers that merely look like cards or IBANs are kept unless their checksum
(Luhn, ISO 13616 mod-97) validates, so order IDs and timestamps survive.

Examples:
    >>> redact("mail bob@example.com, key sk-proj-abcdefghijklmnopqrstuv")
    ('mail [REDACTED:EMAIL], key [REDACTED:API_KEY]', 2)
    >>> redact("card 4111 1111 1111 1111 but not 1234 5678 9012 3456")
    ('card [REDACTED:CARD] but not 1234 5678 9012 3456', 1)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CONTENT_KEYS: frozenset[str] = frozenset({
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
    "gen_ai.prompt",
    "gen_ai.completion",
    "input.value",
    "output.value",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "traceloop.entity.input",
    "traceloop.entity.output",
    "llm.prompt_template.variables",
})
"""Attribute keys that carry prompt/response content (GenAI semconv, OpenLLMetry, OpenInference)."""

CONTENT_KEY_PREFIXES: tuple[str, ...] = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "llm.choices.",
    "embedding.embeddings.",
    "retrieval.documents.",
    "reranker.",
)
"""Prefixes of flattened content attributes (legacy OpenLLMetry, OpenInference)."""


def is_content_key(key: str) -> bool:
    """Whether an attribute key carries prompt or response content."""
    return key in CONTENT_KEYS or key.startswith(CONTENT_KEY_PREFIXES)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_valid(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    return 13 <= len(digits) <= 19 and _luhn_valid(digits)


def _iban_valid(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(char, 36)) for char in rearranged)
    return int(numeric) % 97 == 1


_DIGIT_RUN = re.compile(r"\d{3}")
_NUMERIC_CANDIDATE = re.compile(r"[\d+(][\d .()/-]{7,}\d")


def _has_numeric_candidate(text: str) -> bool:
    """Cheap gate for the phone, card and IBAN rules: some run of 9+ digits and separators."""
    return _DIGIT_RUN.search(text) is not None and _NUMERIC_CANDIDATE.search(text) is not None


@dataclass(frozen=True)
class RedactionRule:
    """One kind of secret or PII.

    Attributes:
        label: Shown in the replacement, e.g. `[REDACTED:EMAIL]`.
        pattern: Precompiled regex of candidates.
        precheck: Cheap test on the whole text; the regex runs only when it is true.
        validate: Optional check of a candidate (checksum). A candidate that fails is retried
            shorter, group by group, so text that follows a number (an expiry date, a currency)
            does not hide it; if no prefix validates, the text is kept.
    """

    label: str
    pattern: re.Pattern[str]
    precheck: Callable[[str], bool]
    validate: Callable[[str], bool] | None = None

    @property
    def replacement(self) -> str:
        return f"[REDACTED:{self.label}]"


# Order matters: secrets first (they contain digits and '@'), then e-mail, then the numeric rules
# from most to least specific so a card number is never half-eaten by the phone rule.
RULES: tuple[RedactionRule, ...] = (
    RedactionRule(
        "PRIVATE_KEY",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
        lambda text: "PRIVATE KEY-----" in text,
    ),
    RedactionRule(
        "BEARER_TOKEN",
        re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{8,}=*"),
        lambda text: "earer" in text or "EARER" in text,
    ),
    RedactionRule(
        "API_KEY",
        re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{20,}"),
        lambda text: "k-" in text,
    ),
    RedactionRule(
        "API_KEY",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|xox[abposr]-[A-Za-z0-9-]{10,}"
                   r"|AIza[0-9A-Za-z_\-]{35})"),
        lambda text: "_" in text or "xox" in text or "AIza" in text,
    ),
    RedactionRule(
        "AWS_ACCESS_KEY",
        re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
        lambda text: "A" in text and ("AKIA" in text or "ASIA" in text or "ABIA" in text or "ACCA" in text),
    ),
    RedactionRule(
        "AWS_SECRET_KEY",
        re.compile(r"(?i)(?<=aws_secret_access_key)([\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9/+=]{40}"),
        lambda text: "ecret" in text or "ECRET" in text,
    ),
    RedactionRule(
        "JWT",
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        lambda text: "eyJ" in text,
    ),
    RedactionRule(
        "EMAIL",
        re.compile(r"(?<![\w.%+\-])[\w.%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,8}"
                   r"\.[A-Za-z]{2,24}"),
        lambda text: "@" in text,
    ),
    RedactionRule(
        "IBAN",
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
        _has_numeric_candidate,
        _iban_valid,
    ),
    RedactionRule(
        "CARD",
        re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"),
        _has_numeric_candidate,
        _card_valid,
    ),
    RedactionRule(
        "PHONE",
        re.compile(r"(?:(?<![\w+])\+\d{1,3}(?:[ .\-]?\(?\d{1,4}\)?){2,4}\d{2,4}"
                   r"|(?<![\w(])\(\d{3}\) ?\d{3}[ .\-]\d{4}"
                   r"|(?<![\w.\-])\d{3}[.\-]\d{3}[.\-]\d{4}"
                   r"|(?<!\w)0\d{2,4}[ /\-]\d{5,8})(?!\w|[ .\-]\d)"),
        _has_numeric_candidate,
    ),
)


_GROUP_END = re.compile(r"[A-Za-z0-9](?=[ \-])")


def _valid_prefix(candidate: str, validate: Callable[[str], bool]) -> int:
    """Length of the longest prefix of `candidate` (the whole, or up to a group separator) that validates."""
    if validate(candidate):
        return len(candidate)
    for end in sorted((m.end() for m in _GROUP_END.finditer(candidate)), reverse=True):
        if validate(candidate[:end]):
            return end
    if candidate.isdigit():  # an unseparated run: try shorter digit runs
        for end in range(len(candidate) - 1, 12, -1):
            if validate(candidate[:end]):
                return end
    return 0


def _apply(rule: RedactionRule, text: str) -> tuple[str, int]:
    count = 0

    def substitute(match: re.Match[str]) -> str:
        nonlocal count
        candidate = match.group(0)
        if rule.validate is not None:
            end = _valid_prefix(candidate, rule.validate)
            if not end:
                return candidate
            count += 1
            return rule.replacement + candidate[end:]
        count += 1
        if rule.label == "AWS_SECRET_KEY":
            return match.group(1) + rule.replacement
        return rule.replacement

    return rule.pattern.sub(substitute, text), count


def redact(text: str, rules: tuple[RedactionRule, ...] = RULES) -> tuple[str, int]:
    """Replace secrets and PII in `text` with `[REDACTED:<LABEL>]` markers.

    JSON content (a message list, an OpenInference `input.value`) is redacted string by string
    after decoding, so escapes such as `\\n` cannot hide a secret and the result stays valid JSON.

    Args:
        text: Any string, typically a JSON-encoded message list.
        rules: The rules to apply, in order; defaults to `RULES`.

    Returns:
        The redacted text and the number of replacements made.
    """
    if text[:1] in ("[", "{", '"'):
        try:
            document = json.loads(text)
        except ValueError:
            pass
        else:
            cleaned, total = _redact_json(document, rules)
            return (json.dumps(cleaned, ensure_ascii=False), total) if total else (text, 0)
    return _redact_text(text, rules)


def _redact_json(value: Any, rules: tuple[RedactionRule, ...]) -> tuple[Any, int]:
    if isinstance(value, str):
        return _redact_text(value, rules)
    if isinstance(value, list):
        items = [_redact_json(v, rules) for v in value]
        return [v for v, _ in items], sum(n for _, n in items)
    if isinstance(value, dict):
        items = {k: (SECRET_REPLACEMENT, 1) if _is_secret_field(k, v) else _redact_json(v, rules)
                 for k, v in value.items()}
        return {k: v for k, (v, _) in items.items()}, sum(n for _, n in items.values())
    return value, 0


SECRET_REPLACEMENT = "[REDACTED:SECRET]"
_SECRET_FIELD = re.compile(r"(?i)(secret|passw(or)?d|api[_-]?key|access[_-]?token|auth[_-]?token|private[_-]?key)")


def _is_secret_field(key: str, value: Any) -> bool:
    """A JSON field named like a credential holds one, whatever its value looks like."""
    return isinstance(value, str) and bool(value) and value != SECRET_REPLACEMENT and bool(_SECRET_FIELD.search(key))


def _redact_text(text: str, rules: tuple[RedactionRule, ...]) -> tuple[str, int]:
    total = 0
    gates: dict[Callable[[str], bool], bool] = {}
    for rule in rules:
        gate = gates.get(rule.precheck)
        if gate is None:
            gate = gates[rule.precheck] = rule.precheck(text)
        if gate:
            text, count = _apply(rule, text)
            total += count
    return text, total
