"""The llmrel OTel distro and configurator (`OTEL_PYTHON_DISTRO=llmrel`, `OTEL_PYTHON_CONFIGURATOR=llmrel`).

Startup under `opentelemetry-instrument`: `LlmrelDistro.configure()` fills unset env vars with
LLM-app defaults (see `config.env_defaults`) and selects the llmrel configurator; the configurator
builds the SDK with `EnrichmentSpanProcessor` and, per exporter,
`PromotingSpanProcessor(BatchSpanProcessor(ContentPolicyExporter(exporter)))`; then the distro loads
the instrumentors, warning about LLM ones that fail to import and loading only one of duplicates.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from functools import partial
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.util._importlib_metadata import EntryPoint, entry_points

from llmrel_instrumentation.breakers import start_guard
from llmrel_instrumentation.breakers.config import GuardConfig
from llmrel_instrumentation.config import InstrumentationConfig, apply_env_defaults
from llmrel_instrumentation.content import ContentPolicyExporter
from llmrel_instrumentation.diagnostics import (
    INSTRUMENTOR_GROUP,
    State,
    choose_winners,
    diagnose,
    distribution_name,
    is_llm_entry_point,
    llm_entry_points,
)
from llmrel_instrumentation.enrichment import EnrichmentSpanProcessor, PendingContext
from llmrel_instrumentation.sampling import LlmSampler, PromotingSpanProcessor
from llmrel_instrumentation.streaming import install_stream_guards

_logger = logging.getLogger("llmrel_instrumentation")
TRACELOOP_OPENAI = "opentelemetry-instrumentation-openai"


def build_export_processor(exporter: SpanExporter, config: InstrumentationConfig,
                           pending: PendingContext | None = None) -> SpanProcessor:
    """The exporting processor llmrel puts in front of each configured exporter."""
    batch = BatchSpanProcessor(ContentPolicyExporter(exporter, config.content, pending))
    return PromotingSpanProcessor(batch, shutdown_timeout_ms=config.shutdown_timeout_ms)


def create_tracer_provider(exporter: SpanExporter, config: InstrumentationConfig | None = None,
                           ratio: float = 1.0, resource: Resource | None = None) -> TracerProvider:
    """The same pipeline as the distro's, for apps that set up OTel in code.

    Args:
        exporter: Where spans go (e.g. `OTLPSpanExporter()`).
        config: llmrel settings; default `InstrumentationConfig()` (content off).
        ratio: Sampling ratio for non-LLM traces.
        resource: SDK resource; default `Resource.create()` (reads `OTEL_SERVICE_NAME` etc.).
    """
    config = config or InstrumentationConfig()
    provider = TracerProvider(sampler=LlmSampler(ratio), resource=resource or Resource.create())
    pending = PendingContext()
    provider.add_span_processor(EnrichmentSpanProcessor(pending))
    provider.add_span_processor(build_export_processor(exporter, config, pending))
    return provider


def _configure_env(environ: MutableMapping[str, str]) -> InstrumentationConfig:
    config, problems = InstrumentationConfig.from_env(environ)
    for message in problems + apply_env_defaults(config, environ):
        _logger.warning("llmrel: %s", message)
    return config


class LlmrelConfigurator(_OTelSDKConfigurator):
    """SDK set-up with llmrel's span processors; every standard `OTEL_*` variable still applies."""

    def _configure(self, **kwargs: Any) -> None:
        distro = LlmrelDistro._instance
        if isinstance(distro, LlmrelDistro) and distro.config is not None:
            config = distro.config  # defaults already applied and reported by the distro
        else:
            config = _configure_env(os.environ)
        # Deferred enrichment needs every exporter to drain `pending`; with one exporter (the usual
        # case) it is shared, with several the attributes are set on the app thread.
        exporters = [name for name in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if name.strip()]
        pending = PendingContext() if len(exporters) == 1 else None
        kwargs.setdefault("span_processors", [EnrichmentSpanProcessor(pending)])
        kwargs.setdefault("export_span_processor", partial(build_export_processor, config=config, pending=pending))
        super()._configure(**kwargs)


class LlmrelDistro(BaseDistro):
    """Distro for LLM apps: defaults, loud failures for LLM instrumentations, one instrumentation per library."""

    config: InstrumentationConfig | None = None
    guard_config: GuardConfig | None = None
    loaded: dict[str, str]
    problems: list[str]
    _winners: dict[str, str] | None = None

    def _configure(self, **kwargs: Any) -> None:
        self.config = _configure_env(os.environ)
        self.guard_config, problems = GuardConfig.from_env(os.environ)
        for message in problems:
            _logger.warning("llmrel: %s", message)
        self.loaded = {}
        self.problems = []

    def _winner_for(self, name: str) -> str | None:
        if self._winners is None:
            preferred = self.config.preferred_instrumentations if self.config else (TRACELOOP_OPENAI,)
            self._winners = choose_winners(llm_entry_points(entry_points(group=INSTRUMENTOR_GROUP)), preferred)
        return self._winners.get(name)

    def _warn(self, message: str, *args: Any) -> None:
        self.problems.append(message % args)
        _logger.warning("llmrel: " + message, *args)

    def load_instrumentor(self, entry_point: EntryPoint, **kwargs: Any) -> None:
        if not is_llm_entry_point(entry_point):
            super().load_instrumentor(entry_point, **kwargs)
            return
        dist = distribution_name(entry_point)
        winner = self._winner_for(entry_point.name)
        if winner is not None and winner != dist:
            if self.config is not None and self.config.preference_chosen:  # as asked: no surprise to warn about
                _logger.info("llmrel: instrumentation %r from %s skipped: LLMREL_PREFER_INSTRUMENTATION chose %s",
                             entry_point.name, dist, winner)
                return
            self._warn("instrumentation %r from %s skipped: %s also registers it and would trace every call "
                       "twice (choose with LLMREL_PREFER_INSTRUMENTATION)", entry_point.name, dist, winner)
            return
        try:
            super().load_instrumentor(entry_point, **kwargs)
        except Exception as error:
            self._warn("LLM instrumentation %r from %s failed to load, so its calls send no spans: %s: %s",
                       entry_point.name, dist, type(error).__name__, error)
            if isinstance(error, ImportError):
                raise  # opentelemetry-instrument skips these and goes on with the others
            return  # anything else would stop it from loading the remaining instrumentations
        self.loaded[entry_point.name] = dist
        if dist == TRACELOOP_OPENAI:
            install_stream_guards()


def report_startup() -> None:
    """`opentelemetry_post_instrument` hook: start the breaker guard (its wrappers go outermost, after the
    instrumentations), and warn when llmrel is installed but not in effect."""
    distro = LlmrelDistro._instance
    if isinstance(distro, LlmrelDistro) and distro.guard_config is not None:
        try:
            start_guard(distro.guard_config)
        except Exception:  # never stop the app over its guard
            _logger.exception("llmrel: could not start the breaker guard; calls are not guarded")
    if not isinstance(distro, LlmrelDistro) or distro.config is None:
        selected = os.environ.get("OTEL_PYTHON_DISTRO")
        _logger.warning("llmrel: llmrel-instrumentation is installed but the %s distro is in use; set "
                        "OTEL_PYTHON_DISTRO=llmrel for its defaults, redaction and sampling",
                        repr(selected) if selected else "first-found")
        return
    candidates = diagnose(os.environ, distro.config.preferred_instrumentations, try_import=False)
    if not distro.loaded and any(status.state is State.ACTIVE for status in candidates):
        _logger.warning("llmrel: no LLM instrumentation is active; run `llmrel-instrument doctor` to see why")
