"""Guard settings, read from the environment once (`GuardConfig.from_env`).

| variable | values | default |
|---|---|---|
| `LLMREL_BREAKERS` | `off`, `observe` (record and log only), `enforce` | `off` |
| `LLMREL_FALLBACK_MODELS` | `gpt-4o=gpt-4o-mini,o3=o3-mini` | none |
| `LLMREL_API_URL` | llmrel's HTTP API (the receiver's OTLP/HTTP port) | `http://localhost:4318` |
| `LLMREL_API_TOKEN` | bearer token of that API | none |
| `LLMREL_BREAKERS_UNREACHABLE` | `allow` (fail open: calls go through unguarded), `keep` (last known state) | `allow` |
| `LLMREL_BREAKERS_POLL_S` | seconds a long-poll waits for a change | `25` |
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar
from urllib.parse import urlparse

ENV_MODE = "LLMREL_BREAKERS"
ENV_FALLBACKS = "LLMREL_FALLBACK_MODELS"
ENV_API_URL = "LLMREL_API_URL"
ENV_API_TOKEN = "LLMREL_API_TOKEN"
ENV_UNREACHABLE = "LLMREL_BREAKERS_UNREACHABLE"
ENV_POLL_S = "LLMREL_BREAKERS_POLL_S"
DEFAULT_API_URL = "http://localhost:4318"
_DEFAULT_POLL_S = 25.0
E = TypeVar("E", bound=enum.StrEnum)


class GuardMode(enum.StrEnum):
    OFF = "off"
    OBSERVE = "observe"  # span attributes and a log line; calls unchanged
    ENFORCE = "enforce"  # open breakers divert calls: fallback model, handler, or BreakerOpen


class Unreachable(enum.StrEnum):
    ALLOW = "allow"  # fail open: without fresh state every call goes through
    KEEP = "keep"  # keep enforcing the last state received


@dataclass(frozen=True)
class GuardConfig:
    """How the app follows and honours llmrel's circuit breakers."""

    mode: GuardMode = GuardMode.OFF
    fallback_models: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    api_url: str = DEFAULT_API_URL
    api_token: str | None = None
    unreachable: Unreachable = Unreachable.ALLOW
    poll_s: float = _DEFAULT_POLL_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> tuple[GuardConfig, list[str]]:
        """Build the config; invalid values fall back to defaults and are reported as problems."""
        problems: list[str] = []
        mode = _enum(GuardMode, environ, ENV_MODE, GuardMode.OFF, problems)
        unreachable = _enum(Unreachable, environ, ENV_UNREACHABLE, Unreachable.ALLOW, problems)
        fallbacks: dict[str, str] = {}
        for item in environ.get(ENV_FALLBACKS, "").split(","):
            if not item.strip():
                continue
            primary, sep, fallback = item.partition("=")
            if not sep or not primary.strip() or not fallback.strip():
                problems.append(f"{ENV_FALLBACKS}: {item.strip()!r} is not MODEL=FALLBACK; ignored")
                continue
            fallbacks[primary.strip()] = fallback.strip()
        url = environ.get(ENV_API_URL, "").strip() or DEFAULT_API_URL
        if urlparse(url).scheme not in ("http", "https") or not urlparse(url).hostname:
            problems.append(f"{ENV_API_URL}={url!r} is not an http(s) URL; using {DEFAULT_API_URL}")
            url = DEFAULT_API_URL
        poll_s = _DEFAULT_POLL_S
        raw_poll = environ.get(ENV_POLL_S, "").strip()
        if raw_poll:
            try:
                poll_s = min(max(float(raw_poll), 1.0), 60.0)
            except ValueError:
                problems.append(f"{ENV_POLL_S}={raw_poll!r} is not a number; using {poll_s:g}")
        token = environ.get(ENV_API_TOKEN, "").strip() or None
        return cls(mode, MappingProxyType(fallbacks), url.rstrip("/"), token, unreachable, poll_s), problems


def _enum(kind: type[E], environ: Mapping[str, str], name: str, default: E, problems: list[str]) -> E:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        problems.append(f"{name}={raw!r} is not one of {'|'.join(m.value for m in kind)}; using {default}")
        return default
