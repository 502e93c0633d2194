"""Which LLM instrumentations `opentelemetry-instrument` would load, skip or load twice, and why.

Shared by the distro (startup warnings, duplicate resolution) and `llmrel-instrument doctor`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts
from opentelemetry.util._importlib_metadata import EntryPoint, entry_points

INSTRUMENTOR_GROUP = "opentelemetry_instrumentor"
_LLM_MARKERS: tuple[str, ...] = (
    "openai", "anthropic", "genai", "openinference", "llm", "langchain", "llama", "bedrock", "vertexai",
    "gemini", "cohere", "mistral", "groq", "ollama", "litellm", "transformers", "haystack", "crewai",
    "together", "replicate", "watsonx", "dspy", "agno", "sagemaker", "alephalpha", "mcp",
)


class State(enum.StrEnum):
    ACTIVE = "active"  # would be loaded and instrument the library
    SKIPPED = "skipped"  # would not load; `reason` says why
    DUPLICATE = "duplicate"  # another package registers the same entry point; llmrel loads only one
    DISABLED = "disabled"  # listed in OTEL_PYTHON_DISABLED_INSTRUMENTATIONS
    NOT_APPLICABLE = "not_applicable"  # the instrumented library is not installed


@dataclass(frozen=True)
class InstrumentationStatus:
    """One LLM instrumentor entry point and what happens to it."""

    name: str
    distribution: str
    version: str
    target: str
    state: State
    reason: str = ""


def distribution_name(entry_point: EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    return dist.name if dist is not None else ""


def is_llm_entry_point(entry_point: EntryPoint) -> bool:
    """Whether an instrumentor entry point instruments an LLM library (by name, package or module)."""
    text = f"{entry_point.name} {distribution_name(entry_point)} {entry_point.value}".lower()
    return any(marker in text for marker in _LLM_MARKERS)


def llm_entry_points(points: Iterable[EntryPoint] | None = None) -> list[EntryPoint]:
    """The LLM instrumentor entry points installed (or among `points`)."""
    if points is None:
        points = entry_points(group=INSTRUMENTOR_GROUP)
    return [ep for ep in points if is_llm_entry_point(ep)]


def choose_winners(points: Sequence[EntryPoint], preferred: Sequence[str]) -> dict[str, str]:
    """For each entry-point name registered more than once, the distribution to load.

    The first distribution in `preferred` that registers the name wins; otherwise the first found.
    """
    by_name: dict[str, list[str]] = {}
    for ep in points:
        by_name.setdefault(ep.name, []).append(distribution_name(ep))
    winners = {}
    for name, dists in by_name.items():
        if len(dists) > 1:
            winners[name] = next((p for p in preferred if p in dists), dists[0])
    return winners


def _disabled(environ: Mapping[str, str]) -> set[str]:
    raw = environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    return {item.strip() for item in raw.split(",") if item.strip()}


def diagnose(environ: Mapping[str, str], preferred: Sequence[str],
             points: Sequence[EntryPoint] | None = None, try_import: bool = True) -> list[InstrumentationStatus]:
    """Status of every LLM instrumentor entry point, as `opentelemetry-instrument` + llmrel would treat it.

    Args:
        environ: Environment to judge by (disabled list).
        preferred: Distribution names preferred for duplicate entry points.
        points: Entry points to judge; default: all installed LLM instrumentors.
        try_import: Import each candidate to find the ones that fail to load.
    """
    points = llm_entry_points() if points is None else list(points)
    disabled = _disabled(environ)
    winners = choose_winners(points, preferred)
    statuses = []
    for ep in points:
        dist = getattr(ep, "dist", None)
        base = {"name": ep.name, "distribution": distribution_name(ep),
                "version": dist.version if dist is not None else "", "target": ep.value}
        if "*" in disabled or ep.name in disabled:
            statuses.append(InstrumentationStatus(**base, state=State.DISABLED,
                                                  reason="listed in OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"))
            continue
        conflict = get_dist_dependency_conflicts(dist) if dist is not None else None
        if conflict is not None:
            state = State.SKIPPED if conflict._is_version_conflict else State.NOT_APPLICABLE
            statuses.append(InstrumentationStatus(**base, state=state, reason=conflict._format_message(ep.name)))
            continue
        winner = winners.get(ep.name)
        if winner is not None and winner != base["distribution"]:
            statuses.append(InstrumentationStatus(
                **base, state=State.DUPLICATE,
                reason=f"entry point {ep.name!r} is also registered by {winner}; the llmrel distro loads only "
                       f"{winner} (other distros load both: every call traced twice)"))
            continue
        if try_import:
            try:
                ep.load()
            except Exception as error:
                statuses.append(InstrumentationStatus(
                    **base, state=State.SKIPPED,
                    reason=f"fails to import ({type(error).__name__}: {error}); opentelemetry-instrument "
                           "skips it with a DEBUG line only, so no spans are sent"))
                continue
        statuses.append(InstrumentationStatus(**base, state=State.ACTIVE))
    return statuses
