"""`llmrel-instrument doctor`: what the llmrel distro would do in this environment, and what is wrong.

Run it in the app's environment (same venv, same env vars). Exit status 1 when it finds a problem.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.util._importlib_metadata import entry_points

from llmrel_instrumentation.config import (
    ENV_TRACELOOP_TRACE_CONTENT,
    ContentPolicy,
    InstrumentationConfig,
    content_capture_settings,
    env_defaults,
)
from llmrel_instrumentation.diagnostics import State, diagnose

_FALSE = frozenset({"false", "0", "no", "off"})


def _selection(group: str, env_var: str, environ: Mapping[str, str]) -> dict[str, Any]:
    names = [ep.name for ep in entry_points(group=group)]
    chosen = environ.get(env_var)
    if chosen is None:
        chosen = names[0] if names else None
        note = "first found" if len(names) > 1 else "only one installed"
    else:
        note = f"set by {env_var}" if chosen in names else f"{env_var}={chosen!r} is not installed"
    return {"available": names, "selected": chosen, "note": note}


def build_report(environ: Mapping[str, str]) -> dict[str, Any]:
    """Everything the doctor knows, as plain data (the `--json` output)."""
    config, problems = InstrumentationConfig.from_env(environ)
    distro = _selection("opentelemetry_distro", "OTEL_PYTHON_DISTRO", environ)
    uses_llmrel = distro["selected"] == "llmrel"
    effective = dict(environ)
    if uses_llmrel:
        for key, value in env_defaults(config).items():
            effective.setdefault(key, value)
        if distro["note"] == "first found":
            problems.append("several distros are installed and OTEL_PYTHON_DISTRO is unset: the choice depends "
                            "on install order; set OTEL_PYTHON_DISTRO=llmrel")
    else:
        problems.append("the llmrel distro is not selected (set OTEL_PYTHON_DISTRO=llmrel): no LLM defaults, "
                        "redaction, duplicate resolution or stream guards")
    configurator = _selection("opentelemetry_configurator", "OTEL_PYTHON_CONFIGURATOR", effective)
    statuses = diagnose(effective, config.preferred_instrumentations)
    for status in statuses:
        if status.state is State.SKIPPED:
            problems.append(f"{status.distribution} ({status.name}) is skipped: {status.reason}")
        if status.state is State.DUPLICATE and not uses_llmrel:
            problems.append(f"{status.distribution} ({status.name}) duplicates another instrumentation: every "
                            "call is traced twice without the llmrel distro")
    if not any(status.state is State.ACTIVE for status in statuses):
        problems.append("no LLM instrumentation is active: the app sends no LLM spans")
    traceloop_on = effective.get(ENV_TRACELOOP_TRACE_CONTENT, "true").strip().lower() not in _FALSE
    exported = "stripped" if config.content is ContentPolicy.OFF or not uses_llmrel else str(config.content)
    if not uses_llmrel:
        exported = "as captured (no llmrel policy)"
    return {
        "distro": distro,
        "configurator": configurator,
        "sampler": effective.get("OTEL_TRACES_SAMPLER", "parentbased_always_on"),
        "endpoint": effective.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or effective.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317"),
        "instrumentations": [dataclasses.asdict(status) for status in statuses],
        "content": {
            "policy": str(config.content),
            "captured_by_openai_instrumentation": traceloop_on,
            "exported": exported,
            "settings": content_capture_settings(effective),
        },
        "problems": problems,
    }


def render_text(report: Mapping[str, Any]) -> str:
    lines = [
        f"distro:        {report['distro']['selected']} ({report['distro']['note']}; "
        f"installed: {', '.join(report['distro']['available']) or 'none'})",
        f"configurator:  {report['configurator']['selected']} ({report['configurator']['note']})",
        f"sampler:       {report['sampler']}",
        f"endpoint:      {report['endpoint']}",
        "LLM instrumentations:",
    ]
    for status in report["instrumentations"]:
        reason = f" - {status['reason']}" if status["reason"] else ""
        lines.append(f"  [{status['state']}] {status['name']}: {status['distribution']} {status['version']}{reason}")
    if not report["instrumentations"]:
        lines.append("  none installed")
    content = report["content"]
    lines.append(f"content capture: policy={content['policy']}, openai instrumentation captures="
                 f"{'on' if content['captured_by_openai_instrumentation'] else 'off'}, exported={content['exported']}")
    lines += [f"  {key}={value}" for key, value in content["settings"].items()]
    lines.append("problems:" if report["problems"] else "problems: none")
    lines += [f"  - {problem}" for problem in report["problems"]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `llmrel-instrument` console script."""
    parser = argparse.ArgumentParser(prog="llmrel-instrument", description="llmrel app-side instrumentation")
    commands = parser.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser("doctor", help="report LLM instrumentations, duplicates and content capture")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = build_report(os.environ)
    print(json.dumps(report, indent=2) if args.json else render_text(report))
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
