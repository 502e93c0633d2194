"""Redact a decoded JSON document in place, without recursion, and blank fields named like credentials.

Iterative on purpose: content attributes come from senders, and a document nested 100,000 deep
must cost a loop, not a `RecursionError` that loses the span.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

SECRET_LABEL = "SECRET"

# A field holds a credential when its name (split at `_`, `-`, `.` and camelCase humps) ends in one of
# these words, or contains `password`/`secret`. `max_tokens`, `token_count`, `cache_key` do not.
_SECRET_LAST_WORDS = frozenset({
    "token", "secret", "password", "passwd", "pwd", "passphrase", "apikey", "credential", "credentials",
    "authorization", "cookie", "signature",
})
_SECRET_SUFFIXES = ("api_key", "private_key", "secret_key", "access_key", "auth_key")
_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s.\-]+")


def is_secret_field(name: str) -> bool:
    """Whether a JSON field named `name` holds a credential, whatever its value looks like.

    Examples:
        >>> [is_secret_field(n) for n in ("password", "apiKey", "x-api-key", "access_token", "max_tokens")]
        [True, True, True, True, False]
    """
    words = _SEPARATORS.sub("_", _HUMP.sub("_", name)).lower().strip("_")
    if "password" in words or "secret" in words:
        return True
    return words.rsplit("_", 1)[-1] in _SECRET_LAST_WORDS or words.endswith(_SECRET_SUFFIXES)


def _is_secret_value(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, str):
        return bool(value) and not value.startswith("[REDACTED:")
    return isinstance(value, int | float)


def redact_document(document: Any, redact_string: Callable[[str], tuple[str, dict[str, int]]],
                    secret_marker: str) -> tuple[Any, dict[str, int]]:
    """Apply `redact_string` to every string of `document` (changed in place) and blank secret fields.

    Args:
        document: A value returned by `json.loads`; lists and dicts are modified in place.
        redact_string: Returns the redacted string and its counts by kind.
        secret_marker: What replaces the value of a credential-named field.

    Returns:
        The document (a new string if it was one) and the counts by kind.
    """
    counts: dict[str, int] = {}

    def add(found: dict[str, int]) -> None:
        for kind, n in found.items():
            counts[kind] = counts.get(kind, 0) + n

    if isinstance(document, str):
        text, found = redact_string(document)
        return text, found
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            entries: Any = enumerate(node)
        elif isinstance(node, dict):
            entries = node.items()
        else:
            continue
        updates: list[tuple[Any, Any]] = []
        for key, value in entries:
            if isinstance(key, str) and isinstance(node, dict) and is_secret_field(key) and _is_secret_value(value):
                updates.append((key, secret_marker))
                add({"credential": 1})
            elif isinstance(value, str):
                text, found = redact_string(value)
                if found:
                    updates.append((key, text))
                    add(found)
            elif isinstance(value, list | dict):
                stack.append(value)
        for key, value in updates:
            node[key] = value
    return document, counts
