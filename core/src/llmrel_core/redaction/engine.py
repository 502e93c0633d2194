"""How one redaction rule runs over a text: a cheap gate, candidates from a linear-time pattern, validation.

Every pattern is written so that a search costs time linear in the text: no nested or overlapping
unbounded repeats; unbounded runs are anchored by a negative lookbehind on their own class, so only
the start of a run is tried; possessive quantifiers where a run must not be given back. Patterns
start with a literal or a character class rather than a lookbehind, so the regex engine skips to
possible starts at C speed. `tests/core/test_redaction_timing.py` holds each rule to linear time on
adversarial inputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

MARKER = "[REDACTED:{label}]"

_GROUP_END = re.compile(r"[A-Za-z0-9)](?=[ .\-/])")

# Byte classes of a text's UTF-8 encoding: letters -> a, digits -> 0, `+()/.- ` kept, anything else -> `_`.
_SHAPE = bytes(
    ord("a") if chr(b).isascii() and chr(b).isalpha() else ord("0") if 48 <= b <= 57
    else b if chr(b) in "+()/.- " else ord("_")
    for b in range(256))
# Characters of base64 tokens (letters, digits, `/`, `+`) -> x, anything else -> space.
_TOKEN = bytes(ord("x") if b in b"a0/+" else ord(" ") for b in range(256))


class Probe:
    """Facts about one text that several gates need, each computed at most once (C-speed passes)."""

    __slots__ = ("__dict__", "text")

    def __init__(self, text: str) -> None:
        self.text = text

    @cached_property
    def folded(self) -> str:
        """The text in lower case."""
        return self.text.lower()

    @cached_property
    def shape(self) -> bytes:
        """The text's UTF-8 bytes mapped to classes: `a` letter, `0` digit, `+()/.- ` kept, `_` other."""
        return self.text.encode("utf-8", "surrogatepass").translate(_SHAPE)

    @cached_property
    def digits(self) -> int:
        return self.shape.count(b"0")

    @cached_property
    def squeezed(self) -> bytes:
        """`shape` without the separators `.-/()` and spaces: `0` runs are digit groups that may form one number."""
        return self.shape.translate(None, b" .-/()")

    def digit_run(self, length: int) -> bool:
        """Whether some number written with separators has at least `length` digits."""
        return b"0" * length in self.squeezed

    @cached_property
    def token_mask(self) -> bytes:
        """`x` where a base64 character stands, space elsewhere."""
        return self.shape.translate(_TOKEN)


Gate = Callable[[Probe], bool]
Extend = Callable[[str, int, int], int]


@dataclass(frozen=True)
class Rule:
    """One kind of secret or PII.

    Attributes:
        label: Shown in the replacement, e.g. `[REDACTED:EMAIL]`.
        kind: What `scan` reports (`email`, `phone`, `api_key`, …); several labels can share a kind.
        pattern: Precompiled regex of candidates. If it has a group named `secret`, only that
            group is replaced and the rest of the match (a `password=` prefix) stays.
        gate: Cheap necessary condition on the text; the pattern runs only when it holds.
        validate: Optional check of a candidate (checksum, numbering plan). A candidate that
            fails is retried shorter, group by group, so text that follows a number (an expiry
            date, a currency) does not hide it; if no prefix validates, the text is kept.
        extend_left: Optional `(text, match_start, floor) -> start`: where the candidate really
            starts when the pattern matches from an anchor in its middle (the `@` of an e-mail);
            returning -1 drops the candidate.
        max_validations: Validations allowed per text. Past it, candidates are redacted without
            validation: crafted input cannot buy unbounded validation work, and it fails closed.
    """

    label: str
    kind: str
    pattern: re.Pattern[str]
    gate: Gate
    validate: Callable[[str], bool] | None = None
    extend_left: Extend | None = None
    max_validations: int = 4096

    @property
    def replacement(self) -> str:
        return MARKER.format(label=self.label)


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


def apply_rule(rule: Rule, text: str) -> tuple[str, int]:
    """`text` with every validated candidate of `rule` replaced, and the number of replacements."""
    pieces: list[str] = []
    done = 0  # text[:done] is in `pieces`
    count = 0
    budget = rule.max_validations
    secret_group = "secret" in rule.pattern.groupindex
    for match in rule.pattern.finditer(text):
        start, end = match.span("secret") if secret_group else match.span()
        if start < 0:
            continue
        if rule.extend_left is not None:
            start = rule.extend_left(text, start, done)
            if start < 0:
                continue
        if rule.validate is not None and budget > 0:
            budget -= 1
            end = start + _valid_prefix(text[start:end], rule.validate)
            if end == start:
                continue
        pieces.append(text[done:start])
        pieces.append(rule.replacement)
        done = end
        count += 1
    if not count:
        return text, 0
    pieces.append(text[done:])
    return "".join(pieces), count
