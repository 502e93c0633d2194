"""PII and secret detection in model output: emails, phones, payment cards, IBANs, API keys, bearer tokens.

Candidates come from regular expressions; cards must pass the Luhn checksum and IBANs the
ISO 13616 mod-97 check, so order numbers and random digit runs do not count. The result
names the kinds found, never the matched text, so findings do not copy the secret.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

PII_KINDS: tuple[str, ...] = ("email", "phone", "card", "iban", "api_key", "bearer")

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Not part of a longer run of digit groups (a card number or an IBAN is not also a phone number).
_PHONE = re.compile(r"(?<![\w+])(?<!\d[ .-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}"
                    r"(?![\w-])(?![ .-]\d)")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_API_KEY = re.compile(
    r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20,})"
    r"|-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----"
)
_BEARER = re.compile(r"\bBearer\s+[A-Za-z0-9._~+/-]{16,}=*", re.IGNORECASE)


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum used by payment card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """ISO 13616 check: move the country code and check digits to the end, then mod 97 == 1."""
    text = candidate.replace(" ", "")
    if not 15 <= len(text) <= 34:
        return False
    rearranged = text[4:] + text[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _cards(text: str) -> bool:
    for match in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return True
    return False


def _ibans(text: str) -> bool:
    return any(iban_valid(m.group()) for m in _IBAN.finditer(text))


_DETECTORS: dict[str, tuple[Callable[[str], bool]]] = {
    "email": (lambda t: _EMAIL.search(t) is not None,),
    "phone": (lambda t: _PHONE.search(t) is not None,),
    "card": (_cards,),
    "iban": (_ibans,),
    "api_key": (lambda t: _API_KEY.search(t) is not None,),
    "bearer": (lambda t: _BEARER.search(t) is not None,),
}
_PROBE_KEEP = b"0123456789-_@A"
_PROBE_DELETE = bytes(b for b in range(256) if b not in _PROBE_KEEP)


def _candidates(text: str) -> dict[str, bool]:
    """Cheap necessary conditions per kind, so the (slow, ~20 ns/char) regular expressions rarely run.

    One C-speed pass keeps only digits, `-`, `_`, `@` and `A`; the counts decide what could match.
    """
    kept = text.encode("utf-8", "replace").translate(None, _PROBE_DELETE)
    dash, underscore, at, upper_a = kept.count(b"-"), kept.count(b"_"), kept.count(b"@"), kept.count(b"A")
    digits = len(kept) - dash - underscore - at - upper_a
    return {
        "email": at > 0,
        "phone": digits >= 7,
        "card": digits >= 13,
        "iban": digits >= 8,
        "api_key": bool(dash or underscore) or (bool(upper_a) and ("AKIA" in text or "AIza" in text)),
        "bearer": "earer" in text or "EARER" in text,
    }


def compile_scanner(kinds: Iterable[str] = PII_KINDS) -> Callable[[str], list[str]]:
    """A function returning the PII/secret kinds found in a text (empty list when clean).

    Raises:
        ValueError: on an unknown kind.
    """
    selected = tuple(kinds)
    unknown = [k for k in selected if k not in _DETECTORS]
    if unknown:
        raise ValueError(f"unknown PII kinds {unknown}; known: {list(PII_KINDS)}")
    detectors = tuple((k, _DETECTORS[k][0]) for k in selected)

    def scan(text: str) -> list[str]:
        possible = _candidates(text)
        return [k for k, detect in detectors if possible[k] and detect(text)]

    return scan
