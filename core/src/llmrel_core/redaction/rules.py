"""The one rule set for secrets and PII: what the app redacts, the receiver redacts and `no_pii` reports.

Rules run in order on the text the previous rules left: secrets first (they contain digits, `@`
and words other rules would half-match), then e-mail, then the numeric rules from the most to
the least specific, so a card number is never half-eaten by the phone rule. Numbers count only
when they validate (card issuer range + Luhn, IBAN country length + mod 97, SSA rules for SSNs,
libphonenumber's numbering plans for phones), so order ids, timestamps and versions survive.
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter

from llmrel_core.checksums import card_valid, iban_valid, ssn_valid
from llmrel_core.phones import NATIONAL_REGIONS, NORTH_AMERICA, phone_valid
from llmrel_core.redaction.engine import Gate, Rule

# The rules use possessive quantifiers, which match wrongly before 3.11.5 (CPython gh-106052): keys and
# phone numbers would pass unredacted. Refuse to run rather than redact silently less.
if sys.version_info < (3, 11, 5):
    raise ImportError(f"llmrel's redaction rules need Python >= 3.11.5 (this is {sys.version.split()[0]}): "
                      "earlier 3.11 releases match possessive quantifiers wrongly (CPython gh-106052)")

KINDS: tuple[str, ...] = (
    "email", "phone", "card", "iban", "ssn", "api_key", "bearer", "jwt", "private_key", "credential",
)
"""What `scan` can report, in this order."""


def _contains(*needles: str) -> Gate:
    return lambda probe: any(map(probe.text.__contains__, needles))


def _contains_folded(*needles: str) -> Gate:
    return lambda probe: any(map(probe.folded.__contains__, needles))


def _digits(run: int, *shapes: bytes) -> Gate:
    """A number of at least `run` digits (separators allowed), and one of `shapes` (`b"aa00"`: two letters,
    two digits) if given."""
    return lambda probe: probe.digit_run(run) and (not shapes or any(s in probe.shape for s in shapes))


def _long_token(length: int, then: Gate | None = None) -> Gate:
    """A run of at least `length` letters, digits, `/`, `+` (most words are shorter), and `then` if given."""
    run = b"x" * length
    return lambda probe: run in probe.token_mask and (then is None or then(probe))


_SEP = r"(?:\s|\\[nrt])"  # a line break, possibly still escaped (`\n` in a Python repr or a log line)
_PEM_LINE = r"-----{0} (?:[A-Z0-9]{{1,20}} ){{0,3}}PRIVATE KEY(?: BLOCK)?-----"
_LOCAL_PART = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.%+-")
_LOWER_RUN = re.compile(r"[a-z]{7}")
_DATE_LIKE = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{2,4}")


def _email_start(text: str, at: int, floor: int) -> int:
    """Start of the local part that ends at the `@` in `text[at]`: 1–64 characters, not inside a longer run."""
    start = at
    while start > floor and at - start <= 64 and (text[start - 1] in _LOCAL_PART or text[start - 1].isalnum()):
        start -= 1
    if start == at or at - start > 64 or (start > 0 and start == floor and text[start - 1] in _LOCAL_PART):
        return -1
    if text.endswith("://", 0, start):  # ssh://git@host: a URL's user, not a mailbox
        return -1
    return start


def _aws_secret_shape(candidate: str) -> bool:
    """40 random-looking base64 characters: a key, not a hex hash or a CamelCase identifier.

    Both cases, no run of 7 lower-case letters (words have them, random base64 rarely), and the
    character entropy of random base64 (at least 4 bits per character; 40 random ones give 4.3–5.1).
    """
    if candidate.islower() or candidate.isupper() or _LOWER_RUN.search(candidate):
        return False
    entropy = -sum(n / 40 * math.log2(n / 40) for n in Counter(candidate).values())
    return entropy >= 4.0


def _national_phone(candidate: str) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    return 9 <= digits <= 12 and not _DATE_LIKE.fullmatch(candidate) and phone_valid(candidate, NATIONAL_REGIONS)


def _north_american_phone(candidate: str) -> bool:
    return phone_valid(candidate, NORTH_AMERICA)


def _international_phone(candidate: str) -> bool:
    return 8 <= sum(c.isdigit() for c in candidate) <= 15 and phone_valid(candidate)


RULES: tuple[Rule, ...] = (
    # A PEM or PGP private key: the header, any `Name: value` header lines, the base64 body and the
    # END line if present. A key cut before its END line is still redacted up to where the body stops.
    Rule("PRIVATE_KEY", "private_key", re.compile(
        _PEM_LINE.format("BEGIN")
        + rf"(?:{_SEP}++[A-Za-z][A-Za-z0-9-]{{0,40}}: [^\r\n\\]{{0,200}}+){{0,4}}+"
        + rf"(?:{_SEP}++[A-Za-z0-9+/=]{{4,}}+)*+"
        + rf"(?:{_SEP}*+{_PEM_LINE.format('END')})?"),
        _contains("PRIVATE KEY")),
    # scheme://user:password@host, whatever the host (a name, an IP, localhost).
    Rule("PASSWORD", "credential", re.compile(r"://[^\s:/?#@\[\]]{0,128}:(?P<secret>[^\s/?#@]{1,256})@"),
         _contains("://")),
    Rule("BEARER_TOKEN", "bearer", re.compile(r"(?i)(?<![\w-])bearer\s++[A-Za-z0-9\-._~+/]{8,}+=*+"),
         _contains_folded("bearer")),
    # Authorization: Basic …, Token …, Digest …: everything after the header name on that line.
    Rule("AUTHORIZATION", "bearer", re.compile(
        r"(?i)(?<![\w-])(?:proxy-)?authorization[\"']?[ \t]*+[:=][ \t]*+[\"']?"
        r"(?P<secret>[A-Za-z][\w-]{0,30}+[ \t]++[^\r\n\\]{4,2048}+)"),
        _contains_folded("authorization")),
    Rule("API_KEY", "api_key", re.compile(
        r"(?<![\w-])(?:(?:sk|pk|rk)-[A-Za-z0-9_\-]{20,}+"
        r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}+|whsec_[A-Za-z0-9]{20,}+"
        r"|gh[pousr]_[A-Za-z0-9]{30,}+|github_pat_[A-Za-z0-9_]{30,}+|glpat-[A-Za-z0-9_\-]{20,}+"
        r"|xox[abposr]-[A-Za-z0-9-]{10,}+|AIza[0-9A-Za-z_\-]{35}|hf_[A-Za-z0-9]{30,}+|npm_[A-Za-z0-9]{36})"),
        _long_token(10, _contains("sk-", "pk-", "rk-", "_live_", "_test_", "whsec_", "ghp_", "gho_", "ghu_", "ghs_",
                                  "ghr_", "github_pat_", "glpat-", "xox", "AIza", "hf_", "npm_"))),
    # x-api-key: …, api_key=…, "apiKey": "…" in free text (JSON fields are handled by name).
    Rule("API_KEY", "api_key", re.compile(
        r"(?i)(?<![\w-])(?:x-)?(?:api[_-]?key|auth[_-]?token|access[_-]?token)[\"']?[ \t]*+[:=][ \t]*+[\"']?"
        r"(?P<secret>[^\s\"',;&<>]{8,512}+)"),
        _contains_folded("api_key", "api-key", "apikey", "auth_token", "auth-token", "authtoken", "access_token",
                         "access-token", "accesstoken")),
    Rule("AWS_ACCESS_KEY", "api_key", re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![A-Za-z0-9])"),
         _long_token(20, _contains("AKIA", "ASIA", "ABIA", "ACCA"))),
    Rule("AWS_SECRET_KEY", "api_key", re.compile(
        r"(?i)aws_?secret_?(?:access_?)?key[\"']?[ \t]*+[:=][ \t]*+[\"']?(?P<secret>[A-Za-z0-9/+=]{40})"),
        _contains_folded("secret")),
    # An AWS secret key on its own: 40 base64 characters not inside a longer run.
    Rule("AWS_SECRET_KEY", "api_key",
         re.compile(r"[A-Za-z0-9/+](?<![A-Za-z0-9/+=].)[A-Za-z0-9/+]{39}(?![A-Za-z0-9/+=])"),
         _long_token(40), _aws_secret_shape),
    # Signed or unsigned (`alg: none`, empty signature) JSON Web Tokens.
    Rule("JWT", "jwt", re.compile(
        r"eyJ(?<![A-Za-z0-9_\-]eyJ)[A-Za-z0-9_\-]{5,}+\."
        r"(?:eyJ[A-Za-z0-9_\-]*+(?:\.[A-Za-z0-9_\-]*+)?|[A-Za-z0-9_\-]++\.[A-Za-z0-9_\-]*+)"),
        _contains("eyJ")),
    # password=…, secret: …, client_secret=…, token=… in free text (a bare `token:` is too common in prose).
    Rule("PASSWORD", "credential", re.compile(
        r"(?i)(?<![\w-])(?:(?:password|passwd|pwd|passphrase|secret|client[_-]?secret"
        r"|(?:refresh|session|id|csrf|bearer)[_-]?token)[\"']?[ \t]*+[:=]|token[ \t]*+=)"
        r"[ \t]*+[\"']?(?P<secret>[^\s\"',;&<>]{3,256}+)"),
        _contains_folded("password", "passwd", "pwd", "passphrase", "secret", "token=", "token =", "_token",
                         "-token")),
    # The pattern starts at the `@` (fast to find); the local part is found by walking left.
    Rule("EMAIL", "email", re.compile(r"@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,8}\.[A-Za-z]{2,24}"),
         _contains("@"), extend_left=_email_start),
    Rule("IBAN", "iban", re.compile(
        r"(?i)[A-Z](?<![A-Za-z0-9].)[A-Z]\d{2}(?:[ \-]?[A-Z0-9]{4}){2,7}+(?:[ \-]?[A-Z0-9]{1,4})?(?![A-Za-z0-9])"),
        _digits(4, b"aa00"), iban_valid),
    Rule("CARD", "card", re.compile(r"\d(?<![\d.\-]\d)(?:[ .\-]{0,2}+\d){12,18}+(?!\d)"), _digits(13), card_valid),
    Rule("SSN", "ssn", re.compile(r"\d(?<![\w\-]\d)\d\d-\d\d-\d{4}(?![\w\-])"), _digits(9, b"000-00-0000"),
         ssn_valid),
    Rule("SSN", "ssn", re.compile(
        r"(?i)(?<![\w-])(?:ssn|social security(?: number| no\.?)?)[ \t:#\-]{0,4}+(?P<secret>\d{3}[ \-]?\d\d[ \-]?\d{4})"
        r"(?!\d)"), _contains_folded("ssn", "social security"), ssn_valid),
    Rule("PHONE", "phone", re.compile(
        r"\+(?<![\w+]\+)\d{1,3}+(?:[ .\-]?\((?:0|\d{1,4}+)\)|[ .\-]?\d{1,5}+){1,6}+(?!\d)"),
        _digits(7, b"+0", b"+ 0", b"+("), _international_phone, max_validations=256),
    Rule("PHONE", "phone", re.compile(
        r"[(\d](?<![\w+.\-(][(\d])(?:(?<=\()\d{3}\)[ .\-]?|(?<=\d)\d\d[ .\-])\d{3}[ .\-]\d{4}(?!\w|[ .\-]\d)"),
        _digits(10), _north_american_phone, max_validations=256),
    Rule("PHONE", "phone", re.compile(
        r"[(0](?<![\w+.\-/(][(0])(?:(?<=\()0\d{1,4}+\)|(?<=0)\d{1,4}+)(?:[ .\-]\d{2,4}+){1,4}+(?!\w|[ .\-/]\d)"
        r"|0(?<![\w+.\-/(]0)\d{2,5}+/\d{4,8}+(?!\w|[ .\-/]\d)"
        r"|0(?<![\w+.\-/(]0)\d{9,10}+(?!\w)"),
        _digits(9), _national_phone, max_validations=256),
)
"""The rules in the order they run."""
