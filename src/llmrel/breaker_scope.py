"""Breaker scopes: which calls a circuit breaker guards, as `SERVICE[/OPERATION[/MODEL[/FEATURE]]]`.

A segment left out, or `*`, matches any value: `support-bot` guards every call of the service,
`support-bot/chat/gpt-4o` only its chat calls to gpt-4o (the model the app asked for). A segment
holding `/` or `%` is percent-encoded (`router/chat/openai%2Fgpt-4o`). Rule actions may write
placeholders (`{service}/{operation}`) that `render_scope` fills from a finding.

Shared by the analyzers (rule actions), the breaker controller and its API; the app-side guard
parses the same syntax on its own (it must not depend on the server package).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

ANY = "*"
SEGMENTS: tuple[str, ...] = ("service", "operation", "model", "feature")
MAX_LENGTH = 512
_PLACEHOLDER = re.compile(r"\{([a-z_]*)\}")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class BreakerScope:
    """A parsed scope; `ANY` segments match everything."""

    service: str
    operation: str = ANY
    model: str = ANY
    feature: str = ANY

    @classmethod
    def parse(cls, text: str) -> BreakerScope:
        """Parse `SERVICE[/OPERATION[/MODEL[/FEATURE]]]`.

        Raises:
            ValueError: empty or `*` service, empty segment, more than four segments, control characters.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError("a breaker scope must be a non-empty string like service/operation")
        if len(text) > MAX_LENGTH or _FORBIDDEN.search(text):
            raise ValueError(f"a breaker scope is at most {MAX_LENGTH} printable characters")
        raw = text.strip().split("/")
        if len(raw) > len(SEGMENTS):
            raise ValueError(f"scope {text!r} has {len(raw)} segments; at most {len(SEGMENTS)}: "
                             "service/operation/model/feature (percent-encode a '/' inside a segment)")
        parts = [unquote(p) for p in raw]
        if any(not p for p in parts):
            raise ValueError(f"scope {text!r} has an empty segment")
        if parts[0] == ANY:
            raise ValueError(f"scope {text!r} must name a service")
        return cls(*parts)

    def __str__(self) -> str:
        parts = [self.service, self.operation, self.model, self.feature]
        while len(parts) > 1 and parts[-1] == ANY:
            parts.pop()
        return "/".join(p if p == ANY else quote(p, safe="") for p in parts)

    def matches(self, service: str, operation: str, model: str, feature: str) -> bool:
        """Whether a call with these values is guarded by this scope."""
        return (self.service == service and self.operation in (ANY, operation) and self.model in (ANY, model)
                and self.feature in (ANY, feature))


def canonical_scope(text: str) -> str:
    """The canonical spelling of a scope (trailing `*` dropped). Raises ValueError when invalid."""
    return str(BreakerScope.parse(text))


def template_problem(template: str) -> str | None:
    """Why a scope template is invalid, or None. Placeholders: `{service}`, `{operation}`, `{model}`, `{feature}`."""
    if not isinstance(template, str) or not template.strip():
        return "must be a scope like service/operation (placeholders {service}, {operation}, {model}, {feature})"
    unknown = sorted({name for name in _PLACEHOLDER.findall(template) if name not in SEGMENTS})
    if unknown:
        return f"unknown placeholder(s) {unknown}; allowed: {['{' + s + '}' for s in SEGMENTS]}"
    try:
        BreakerScope.parse(_PLACEHOLDER.sub("x", template))
    except ValueError as exc:
        return str(exc)
    return None


def render_scope(template: str, values: Mapping[str, str]) -> str | None:
    """Fill a scope template from `values` (empty values become `*`); None when no valid scope results."""
    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return quote(value, safe="") if value else ANY

    text = _PLACEHOLDER.sub(fill, template)
    try:
        return canonical_scope(text)
    except ValueError:
        return None
