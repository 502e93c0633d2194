"""`llmrel demo`: demo traffic through the real OpenTelemetry instrumentation, and `llmrel demo simulator`."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import typer

_DEFAULT_RECEIVER = "http://localhost:4317"
_INSTRUMENT_COMMAND = "opentelemetry-instrument"
_CHILD_STOP_TIMEOUT_S = 15.0
_PROGRESS_EVERY_S = 10.0
_PROGRESS_POLL_S = 0.5


@dataclass(frozen=True)
class DemoService:
    """One demo app process: its OTel service name and the features it serves."""

    name: str
    features: tuple[str, ...]
    share: float


DEMO_SERVICES: tuple[DemoService, ...] = (
    DemoService("demo-support-desk", ("support-bot", "kb-search"), 0.55),
    DemoService("demo-doc-pipeline", ("summarizer", "ticket-extractor"), 0.45),
)


def instrument_command() -> str | None:
    """`opentelemetry-instrument` next to this Python (a venv's bin), else on PATH."""
    beside = Path(sys.executable).with_name(_INSTRUMENT_COMMAND)
    return str(beside) if beside.exists() else shutil.which(_INSTRUMENT_COMMAND)


def demo_env(base: dict[str, str], receiver: str, service: str, protocol: str) -> dict[str, str]:
    """The environment of a demo app process: `base` plus the standard OTel variables (these win).

    The demo asks for llmrel's distro, redacted content capture (so content rules such as JSON
    validity have text to check) and the Traceloop openai instrumentation unless `base` says otherwise.
    """
    defaults = {"OTEL_PYTHON_DISTRO": "llmrel", "LLMREL_CAPTURE_CONTENT": "redacted",
                # The dev install has OpenInference too (for its tests); choose one, quietly.
                "LLMREL_PREFER_INSTRUMENTATION": "opentelemetry-instrumentation-openai"}
    return {**defaults, **base, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_SERVICE_NAME": service, "OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none"}


def _reachable(endpoint: str) -> bool:
    parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    try:
        with socket.create_connection((parsed.hostname or "localhost", parsed.port or 4317), timeout=1.0):
            return True
    except OSError:
        return False


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(_CHILD_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _wait_with_progress(children: list[subprocess.Popen[bytes]], state: Callable[[], dict[str, Any]],
                        calls: int) -> list[int]:
    """Wait for the demo apps, printing what the provider answered every `_PROGRESS_EVERY_S` and when
    its degradation starts, so a long run is never silent."""
    started = time.monotonic()
    next_report, degraded_seen = _PROGRESS_EVERY_S, False
    while any(child.poll() is None for child in children):
        time.sleep(_PROGRESS_POLL_S)
        now = time.monotonic() - started
        snapshot = state()
        if snapshot["degraded"] and not degraded_seen:
            degraded_seen = True
            typer.echo(f"[{now:5.1f} s] the provider is degraded now: slower, longer answers, errors, invalid "
                       "JSON and a silently swapped model")
        if now >= next_report:
            next_report += _PROGRESS_EVERY_S
            outcomes = snapshot["requests"]
            if not outcomes:
                typer.echo(f"[{now:5.1f} s] the demo apps are starting (OpenTelemetry instruments them first)")
                continue
            detail = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
            typer.echo(f"[{now:5.1f} s] {sum(outcomes.values())} LLM requests answered ({detail}); the apps send "
                       f"{calls} requests, some with two calls and retries")
    return [child.wait() for child in children]


def run_demo_services(receiver: str, protocol: str, calls: int, rate: float, degrade_after: float | None,
                      seed: int, simulator_port: int, instrument: bool) -> None:
    """Serve the LLM simulator and run the demo apps against it, sending telemetry to llmrel."""
    from llmrel.demo import Simulator, SimulatorConfig

    command = instrument_command() if instrument else None
    if instrument and command is None:
        typer.echo(f"{_INSTRUMENT_COMMAND} not found; install opentelemetry-distro "
                   "(or llmrel-instrumentation) in this environment, or pass --no-instrument.", err=True)
        raise typer.Exit(1)
    if instrument and not _reachable(receiver):
        typer.echo(f"warning: nothing listens on {receiver}; spans will be dropped (start `llmrel serve`).",
                   err=True)
    config = SimulatorConfig(seed=seed, degrade_at_s=degrade_after)
    with Simulator(config).run(port=simulator_port) as sim:
        typer.echo(f"LLM simulator at {sim.base_url} (admin: {sim.url}/admin/state)")
        children = []
        for offset, service in enumerate(DEMO_SERVICES):
            argv = [sys.executable, "-m", "llmrel.demo.app", "--base-url", sim.base_url,
                    "--calls", str(max(1, round(calls * service.share))), "--rate", str(rate * service.share),
                    "--seed", str(seed + offset), "--features", ",".join(service.features)]
            env = demo_env(dict(os.environ), receiver, service.name, protocol)
            children.append(subprocess.Popen([command, *argv] if command else argv, env=env))
            typer.echo(f"started {service.name} (pid {children[-1].pid})")
        try:
            codes = _wait_with_progress(children, sim.state, calls)
        except KeyboardInterrupt:
            _stop(children)
            raise typer.Exit(130) from None
        typer.echo(f"simulator: {sim.state()['requests']}")
    if any(codes):
        raise typer.Exit(1)


def simulator(host: str = typer.Option("127.0.0.1", help="Address to listen on."),
              port: int = typer.Option(8000, help="Port to listen on."),
              seed: int = typer.Option(0, help="Seed of all simulated randomness."),
              latency_median: float = typer.Option(0.6, min=0.0, help="Median latency per request, seconds."),
              ttft_median: float = typer.Option(0.25, min=0.0, help="Median time to first stream token, seconds."),
              rate_limit_rate: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of requests answered 429."),
              server_error_rate: float = typer.Option(0.0, min=0.0, max=1.0, help="Share answered 500."),
              degrade_after: float | None = typer.Option(None, "--degrade-after", min=0.0,
                                                         help="Degrade after SECONDS (else only via the API).")
              ) -> None:
    """Serve the OpenAI-compatible LLM simulator in the foreground (base URL: http://HOST:PORT/v1)."""
    from llmrel.demo import Simulator, SimulatorConfig

    config = SimulatorConfig(seed=seed, latency_median_s=latency_median, ttft_median_s=ttft_median,
                             rate_limit_rate=rate_limit_rate, server_error_rate=server_error_rate,
                             degrade_at_s=degrade_after)
    try:
        sim = Simulator(config)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"LLM simulator on http://{host}:{port}/v1 (POST /admin/degrade, /admin/recover; GET /admin/state)")
    sim.serve(host, port)


def register(app: typer.Typer) -> None:
    """Add the demo commands to the `llmrel` app."""
    demo_app = typer.Typer(help="Local LLM simulator and demo traffic.", invoke_without_command=True,
                           no_args_is_help=False)

    @demo_app.callback(invoke_without_command=True)
    def _demo(ctx: typer.Context,
              receiver: str = typer.Option(_DEFAULT_RECEIVER, help="OTLP endpoint of the llmrel receiver."),
              protocol: str = typer.Option("grpc", help="OTLP protocol: grpc or http/protobuf."),
              calls: int = typer.Option(200, min=1, help="Requests to send in total."),
              rate: float = typer.Option(5.0, min=0.01, help="Requests started per second in total."),
              degrade_after: float | None = typer.Option(None, "--degrade-after", min=0.0,
                                                         help="Degrade the simulated provider after SECONDS."),
              seed: int = typer.Option(0, help="Seed of the simulator and the demo traffic."),
              simulator_port: int = typer.Option(0, help="Port of the simulator (0: any free port)."),
              instrument: bool = typer.Option(True, help="Run the demo apps under opentelemetry-instrument.")
              ) -> None:
        """Serve the LLM simulator and run demo apps against it, sending telemetry to llmrel."""
        if ctx.invoked_subcommand is None:
            run_demo_services(receiver, protocol, calls, rate, degrade_after, seed, simulator_port, instrument)

    demo_app.command("simulator")(simulator)
    app.add_typer(demo_app, name="demo")
