"""Instrumentation settings: read from the environment once, defaults applied with `setdefault`.

Every standard `OTEL_*` variable the user sets wins; llmrel only fills the gaps with defaults
suited to LLM apps (see `env_defaults`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

ENV_CAPTURE_CONTENT = "LLMREL_CAPTURE_CONTENT"
ENV_SHUTDOWN_TIMEOUT_MS = "LLMREL_SHUTDOWN_TIMEOUT_MS"
ENV_PREFER_INSTRUMENTATION = "LLMREL_PREFER_INSTRUMENTATION"
ENV_TRACELOOP_TRACE_CONTENT = "TRACELOOP_TRACE_CONTENT"
ENV_TRACELOOP_METRICS = "TRACELOOP_METRICS_ENABLED"
ENV_GENAI_CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENV_OPENINFERENCE_HIDE = ("OPENINFERENCE_HIDE_INPUTS", "OPENINFERENCE_HIDE_OUTPUTS")

_DEFAULT_SHUTDOWN_TIMEOUT_MS = 2000
_DEFAULT_PREFERRED = ("opentelemetry-instrumentation-openai",)
_FALSE = frozenset({"false", "0", "no", "off"})


class ContentPolicy(enum.StrEnum):
    """What happens to prompt and response text before it leaves the app."""

    OFF = "off"  # never captured; content attributes are also stripped before export
    REDACTED = "redacted"  # captured, secrets and PII replaced, count in `llmrel.redactions`
    FULL = "full"  # captured as the instrumentation records it


@dataclass(frozen=True)
class InstrumentationConfig:
    """Settings of the llmrel distro.

    Attributes:
        content: Content policy (`LLMREL_CAPTURE_CONTENT`, default `off`).
        shutdown_timeout_ms: Upper bound on the time spent flushing spans at exit
            (`LLMREL_SHUTDOWN_TIMEOUT_MS`, default 2000).
        preferred_instrumentations: Distribution names that win when two instrumentations
            register the same entry point (`LLMREL_PREFER_INSTRUMENTATION`, comma list).
        preference_chosen: Whether `LLMREL_PREFER_INSTRUMENTATION` made that choice (so skipping
            the others is the user's decision, not a surprise worth a warning).
    """

    content: ContentPolicy = ContentPolicy.OFF
    shutdown_timeout_ms: int = _DEFAULT_SHUTDOWN_TIMEOUT_MS
    preferred_instrumentations: tuple[str, ...] = _DEFAULT_PREFERRED
    preference_chosen: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> tuple[InstrumentationConfig, list[str]]:
        """Build the config; invalid values fall back to defaults and are reported as problems."""
        problems: list[str] = []
        raw_content = environ.get(ENV_CAPTURE_CONTENT, "").strip().lower()
        content = ContentPolicy.OFF
        if raw_content:
            try:
                content = ContentPolicy(raw_content)
            except ValueError:
                problems.append(f"{ENV_CAPTURE_CONTENT}={raw_content!r} is not one of off|redacted|full; using off")
        timeout = _DEFAULT_SHUTDOWN_TIMEOUT_MS
        raw_timeout = environ.get(ENV_SHUTDOWN_TIMEOUT_MS, "").strip()
        if raw_timeout:
            try:
                timeout = max(0, int(raw_timeout))
            except ValueError:
                problems.append(f"{ENV_SHUTDOWN_TIMEOUT_MS}={raw_timeout!r} is not an integer; using {timeout}")
        raw_prefer = environ.get(ENV_PREFER_INSTRUMENTATION, "")
        chosen = tuple(n.strip() for n in raw_prefer.split(",") if n.strip())
        return cls(content, timeout, chosen or _DEFAULT_PREFERRED, bool(chosen)), problems


def env_defaults(config: InstrumentationConfig) -> dict[str, str]:
    """The environment llmrel would like; each key applies only if the user left it unset.

    OTLP/gRPC (to the exporter default `localhost:4317`), gzip, a bounded batch queue, a 5 s
    export timeout, traces only (the platform derives metrics from spans, so the third-party
    metrics and the metrics/logs exporters are off), the llmrel sampler and configurator, and
    content capture switched per policy in every instrumentation that has a switch.
    """
    capture = config.content is not ContentPolicy.OFF
    defaults = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "5",
        "OTEL_BSP_MAX_QUEUE_SIZE": "2048",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "512",
        "OTEL_BSP_SCHEDULE_DELAY": "1000",
        "OTEL_TRACES_SAMPLER": "llmrel",
        "OTEL_PYTHON_CONFIGURATOR": "llmrel",
        ENV_TRACELOOP_METRICS: "false",
        ENV_TRACELOOP_TRACE_CONTENT: "true" if capture else "false",
    }
    if not capture:
        defaults[ENV_GENAI_CAPTURE_CONTENT] = "false"
        defaults.update(dict.fromkeys(ENV_OPENINFERENCE_HIDE, "true"))
    return defaults


def apply_env_defaults(config: InstrumentationConfig, environ: MutableMapping[str, str]) -> list[str]:
    """Fill unset variables from `env_defaults`; return warnings about user settings that conflict.

    A user's `TRACELOOP_TRACE_CONTENT=true` under policy `off` still captures nothing on export
    (the exporter strips content), but costs serialization in the app, so it is reported.
    """
    for key, value in env_defaults(config).items():
        environ.setdefault(key, value)
    warnings = []
    traceloop_captures = environ.get(ENV_TRACELOOP_TRACE_CONTENT, "true").strip().lower() not in _FALSE
    if config.content is ContentPolicy.OFF and traceloop_captures:
        warnings.append(f"{ENV_TRACELOOP_TRACE_CONTENT} is on while {ENV_CAPTURE_CONTENT}=off: content is "
                        "serialized in the app and stripped before export; unset it to save the cost")
    if config.content is not ContentPolicy.OFF and not traceloop_captures:
        warnings.append(f"{ENV_CAPTURE_CONTENT}={config.content} but {ENV_TRACELOOP_TRACE_CONTENT} is false: "
                        "the openai instrumentation captures no content")
    return warnings


def content_capture_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The content switches in effect, by variable (for the doctor and the startup log)."""
    keys = (ENV_CAPTURE_CONTENT, ENV_TRACELOOP_TRACE_CONTENT, ENV_GENAI_CAPTURE_CONTENT, *ENV_OPENINFERENCE_HIDE)
    return {key: environ.get(key, "<unset>") for key in keys}
