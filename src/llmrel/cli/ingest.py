"""`llmrel serve`, `llmrel migrate`, `llmrel report`, `llmrel reprice`."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from llmrel.config import ConfigError
from llmrel.running import ask_running_server, settings_or_exit

_WIDTH_OFF_TERMINAL = 1000  # a pipe, a file or a CI log: never cut a table to a guessed 80 columns


def _stdout_console() -> Console:
    """The terminal's width on a terminal (or `COLUMNS`); elsewhere wide enough for any table."""
    probe = Console()
    if probe.is_terminal or os.environ.get("COLUMNS"):
        return probe
    return Console(width=_WIDTH_OFF_TERMINAL)


console = _stdout_console()
err_console = Console(stderr=True)

_STORE_HELP = "chdb:///path or http(s)://user:pass@host:8123/db [env LLMREL_CLICKHOUSE_URL]"
StoreOpt = Annotated[str | None, typer.Option("--clickhouse-url", help=_STORE_HELP)]


def serve(
    clickhouse_url: StoreOpt = None,
    grpc_endpoint: Annotated[str | None, typer.Option(help="OTLP/gRPC host:port [env LLMREL_GRPC_ENDPOINT]")] = None,
    http_endpoint: Annotated[str | None, typer.Option(help="OTLP/HTTP + API [env LLMREL_HTTP_ENDPOINT]")] = None,
    log_format: Annotated[str | None, typer.Option(help="json | console [env LLMREL_LOG_FORMAT]")] = None,
) -> None:
    """Receive OTLP traces, store them in ClickHouse and analyze LLM calls as they arrive."""
    from llmrel.cli.compose import build_receiver
    from llmrel.logging import configure_logging

    settings = settings_or_exit(clickhouse_url=clickhouse_url, grpc_endpoint=grpc_endpoint,
                                http_endpoint=http_endpoint, log_format=log_format)
    configure_logging(settings.log_level, settings.log_format)
    try:
        receiver = build_receiver(settings).start()
    except ConfigError as exc:
        err_console.print(f"[bold red]invalid configuration:[/]\n{exc}")
        raise typer.Exit(2) from None
    except (OSError, RuntimeError) as exc:
        err_console.print(f"[bold red]cannot start:[/] {exc}")
        raise typer.Exit(1) from None
    # The handler only records the signal: taking a lock there (Event.set) deadlocks when a second
    # signal (Ctrl-C, then a supervisor's SIGTERM) lands while the first one's wake-up holds it. The
    # interpreter also writes each signal to a socket, so the main thread sleeps until one arrives.
    signals: list[int] = []
    wake_r, wake_w = socket.socketpair()
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno())
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: signals.append(signum))
    clickhouse_http = f", ClickHouse HTTP :{receiver.clickhouse_http_port}" if receiver.clickhouse_http_port else ""
    err_console.print(f"llmrel listening (pid {os.getpid()}): OTLP/gRPC :{receiver.grpc_port}, "
                      f"OTLP/HTTP + API :{receiver.http_port}{clickhouse_http}", soft_wrap=True)
    while not signals:
        wake_r.recv(64)
    err_console.print("llmrel stopping: finishing in-flight exports and commits")
    receiver.stop()


def migrate_cmd(clickhouse_url: StoreOpt = None) -> None:
    """Apply the schema (idempotent) and print the schema version."""
    from llmrel.store import connect, migrate, schema_version

    settings = settings_or_exit(clickhouse_url=clickhouse_url)
    client = connect(settings)
    applied = migrate(client, settings)
    console.print(f"schema version {schema_version(client)} (newly applied: {applied or 'none'})")


def report(
    since: Annotated[str, typer.Option(help="1h, 30m, 7d or an ISO time")] = "1h",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    api: Annotated[str | None, typer.Option(help="llmrel HTTP endpoint to ask (default: the configured one)")] = None,
    clickhouse_url: StoreOpt = None,
) -> None:
    """Calls, errors, latency, tokens and cost per service and model (and findings when analyzers run)."""
    from llmrel.report import build_report, parse_since

    settings = settings_or_exit(clickhouse_url=clickhouse_url)
    try:
        since_ns = parse_since(since)
    except ValueError as exc:
        err_console.print(f"[red]--since: {exc}[/]")
        raise typer.Exit(2) from None
    data = ask_running_server(settings, "/api/v1/report", {"since": since}, api)
    if data is None:
        from llmrel.store import connect

        data = build_report(connect(settings), since_ns)
    if as_json:
        console.print_json(json.dumps(data))
        return
    render_report(data)


def render_report(data: dict[str, Any]) -> None:
    """Print the report as terminal tables, with what to do about calls whose cost is unknown."""
    t = data["totals"]
    window = time.strftime("%Y-%m-%d %H:%M", time.gmtime(data["since_ns"] / 1e9))
    unknown = t.get("cost_unknown_calls", t["unpriced_calls"])
    cost = f"${t['cost_usd']:.4f}"
    if unknown:
        cost += (f"; cost unknown for {unknown} calls ({t['unpriced_calls']} unpriced, "
                 f"{t.get('no_usage_calls', 0)} without usage)")
    console.print(f"[bold]LLM calls since {window} UTC[/]: {t['calls']} calls, {t['errors']} errors, "
                  f"{t['input_tokens']} in / {t['output_tokens']} out tokens, {cost}")
    table = Table(show_lines=False)
    for col in ("service", "model", "calls", "err %", "p50 ms", "p95 ms", "p99 ms", "ttft p50",
                "in tok", "out tok", "cost $", "cost unknown"):
        table.add_column(col, justify="left" if col in ("service", "model") else "right")
    for r in data["by_service_model"]:
        ttft, row_cost = r["ttft_p50_ms"], r["cost_usd"]
        swapped = len(r.get("response_models") or []) > 1
        table.add_row(r["service"], (r["model"] or "-") + (" *" if swapped else ""), str(r["calls"]),
                      f"{100 * r['error_rate']:.1f}",
                      f"{r['p50_ms']}", f"{r['p95_ms']}", f"{r['p99_ms']}",
                      "-" if ttft is None or ttft != ttft else f"{ttft}",
                      str(r["input_tokens"]), str(r["output_tokens"]),
                      "-" if row_cost is None else f"{row_cost:.4f}",
                      str(r.get("cost_unknown_calls", r["unpriced_calls"])))
    console.print(table)
    for r in data["by_service_model"]:
        if len(r.get("response_models") or []) > 1:
            console.print(f"* {r['service']} asked for {r['model']}, answered by {', '.join(r['response_models'])}",
                          highlight=False)
    for hint in _cost_hints(t):
        console.print(hint, highlight=False)
    findings = data.get("findings")
    if findings:
        from llmrel.findings_summary import render_findings_summary

        render_findings_summary(console, findings)


def _cost_hints(totals: dict[str, Any]) -> list[str]:
    hints = []
    if totals["unpriced_calls"]:
        hints.append(f"{totals['unpriced_calls']} calls name a model without a known price: add it to a price "
                     "file (LLMREL_PRICES_FILE), then `llmrel reprice`.")
    streams = totals.get("no_usage_streams", 0)
    if streams:
        hints.append(f"{streams} streamed calls reported no token usage: ask for it with "
                     'stream_options={"include_usage": true}.')
    others = totals.get("no_usage_calls", 0) - streams
    if others:
        hints.append(f"{others} successful calls reported no token usage (their instrumentation did not record it).")
    return hints


def reprice(
    since: Annotated[str, typer.Option(help="1h, 30m, 7d or an ISO time")] = "24h",
    clickhouse_url: StoreOpt = None,
) -> None:
    """Recompute stored costs (after a price change or a new price/alias file)."""
    from llmrel.calls_ingest import reprice as reprice_rows
    from llmrel.pricing import Pricer
    from llmrel.report import parse_since
    from llmrel.store import connect

    settings = settings_or_exit(clickhouse_url=clickhouse_url)
    try:
        pricer = Pricer.from_settings(settings)
        since_ns = parse_since(since)
    except (ConfigError, ValueError) as exc:
        err_console.print(f"[bold red]{exc}[/]")
        raise typer.Exit(2) from None
    changed = reprice_rows(connect(settings), pricer, since_ns)
    console.print(f"repriced {changed} calls")


def register(app: typer.Typer) -> None:
    """Add the ingest commands to the `llmrel` app."""
    app.command("serve")(serve)
    app.command("migrate")(migrate_cmd)
    app.command("report")(report)
    app.command("reprice")(reprice)
