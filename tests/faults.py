"""Fault injection shared by tests."""

from __future__ import annotations

import pytest

from llmrel import content_policy


def poison_redaction(monkeypatch: pytest.MonkeyPatch, marker: str = "POISON") -> None:
    """Make redaction raise on any text holding `marker`, as a redaction bug would on some input."""
    real_redact = content_policy.redact

    def redact(text: str) -> str:
        if marker in text:
            raise RecursionError("maximum recursion depth exceeded")
        return real_redact(text)

    monkeypatch.setattr(content_policy, "redact", redact)
