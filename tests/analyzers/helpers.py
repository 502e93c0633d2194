"""Building blocks for analyzer tests: calls and rule sets from YAML text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmrel.analyzers.callfields import empty_call
from llmrel.analyzers.ruleset import RuleSet, load_ruleset
from llmrel.model import LlmCall

T0 = 1_764_000_000_000_000_000


def make_call(i: int = 0, **values: Any) -> LlmCall:
    """A successful chat call `i` seconds after T0 with realistic defaults; `values` override."""
    defaults: dict[str, Any] = {
        "timestamp_ns": T0 + i * 1_000_000_000, "trace_id": f"{i:032x}", "span_id": f"{i:016x}",
        "span_name": "chat gpt-4o", "service_name": "support", "provider": "openai", "operation": "chat",
        "model": "gpt-4o-2024-08-06", "request_model": "gpt-4o", "response_model": "gpt-4o-2024-08-06",
        "input_tokens": 100, "output_tokens": 50, "cost_usd": 0.001, "cost_status": "priced",
        "duration_ns": 800_000_000, "finish_reason": "stop", "status_code": "Ok", "feature": "faq",
        "tenant": "acme", "input_text": "question", "output_text": "A helpful answer.",
    }
    defaults.update(values)
    return empty_call(**defaults)


def ruleset_from(tmp_path: Path, text: str, *, include_default: bool = False) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return load_ruleset(path, include_default=include_default)
