"""Optional generated incident summary of an explanation, from its aggregated numbers only.

Off unless `narrative_url` names an OpenAI-compatible endpoint. The model is given the finding's kind,
rule and service, the verdict and the ranked causes with their counts, shares, lift and p-values —
never a prompt or an answer of a call. The text is stored next to those numbers with the model that wrote
it, and shown as generated. Any failure (endpoint down, timeout, refusal) means no narrative; it never
blocks the explanation or the finding. Uses the `openai` client (`pip install 'llmrel[narrative]'`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)

_SYSTEM = ("You write two-sentence incident summaries for an on-call engineer. Use only the numbers given; "
           "do not speculate beyond them. Say which dimension values the failing calls share, how much more "
           "often than in the baseline, and what to check first.")


@dataclass(frozen=True)
class Narrator:
    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 10.0

    def facts(self, explanation: dict[str, Any]) -> dict[str, Any]:
        """The aggregated numbers the model is given (and nothing else)."""
        keys = ("cause", "target_calls", "baseline_calls", "target_share", "baseline_share", "lift", "p_value")
        return {"finding": {k: explanation[k] for k in ("kind", "rule_id", "service")},
                "verdict": explanation["verdict"], "affected_calls": explanation["target_calls"],
                "baseline_calls": explanation["baseline_calls"],
                "causes": [{k: c[k] for k in keys} for c in explanation["causes"]]}

    def __call__(self, explanation: dict[str, Any]) -> str | None:
        """The generated summary, or None when the endpoint fails (logged)."""
        try:
            import openai  # the optional `narrative` extra; the server runs without it

            with openai.OpenAI(base_url=self.base_url, api_key=self.api_key or "unused", timeout=self.timeout_s,
                               max_retries=0) as client:
                response = client.chat.completions.create(
                    model=self.model, temperature=0, max_tokens=200,
                    messages=[{"role": "system", "content": _SYSTEM},
                              {"role": "user", "content": json.dumps(self.facts(explanation), sort_keys=True)}])
            text = (response.choices[0].message.content or "").strip() if response.choices else ""
            return text or None
        except Exception as exc:  # any failure of an optional extra: no narrative
            log.warning("narrative_failed", endpoint=self.base_url, error=type(exc).__name__)
            return None
