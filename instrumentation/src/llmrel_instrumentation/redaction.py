"""Which span attributes carry content, and the redaction applied to them (`redacted` policy).

The rules and the content keys live in `llmrel_core` (`redaction`, `spans`), shared with the
receiver and the analyzers' `no_pii` check; they are re-exported here for the app-side exporter.

Examples:
    >>> redact("mail bob@example.com, key sk-proj-abcdefghijklmnopqrstuv")
    ('mail [REDACTED:EMAIL], key [REDACTED:API_KEY]', 2)
"""

from __future__ import annotations

from llmrel_core.redaction import redact
from llmrel_core.spans import CONTENT_KEY_PREFIXES, CONTENT_KEYS, is_content_key

__all__ = ["CONTENT_KEYS", "CONTENT_KEY_PREFIXES", "is_content_key", "redact"]
