"""`llmrel analyze`: the analyzers' tailer over a store another writer fills, composed with the one
span -> call adapter (`llmrel.calls_ingest`), so its calls are built and stored exactly as the
receiver's are, and the analyzers only read calls and write findings."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

err_console = Console(stderr=True)

_STORE_HELP = "chdb:///path or http(s)://user:pass@host:8123/db [env LLMREL_CLICKHOUSE_URL]"


def analyze(
    shard: Annotated[str, typer.Option(help="This analyzer's share i/N of the streams")] = "0/1",
    once: Annotated[bool, typer.Option("--once", help="Catch up with the store, then exit")] = False,
    rules_file: Annotated[Path | None, typer.Option("--rules", help="User rule file [env LLMREL_RULES_FILE]")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between polls when caught up")] = 1.0,
    clickhouse_url: Annotated[str | None, typer.Option("--clickhouse-url", help=_STORE_HELP)] = None,
) -> None:
    """Tail otel_traces (any writer), store new LLM spans as llm_calls like the receiver does, analyze them,
    write findings."""
    from llmrel.analyzers.ruleset import RuleFileError
    from llmrel.analyzers.tail import Shard
    from llmrel.cli.compose import build_tailer
    from llmrel.logging import configure_logging
    from llmrel.running import settings_or_exit
    from llmrel.store import connect, migrate

    try:
        share = Shard.parse(shard)
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    settings = settings_or_exit(clickhouse_url=clickhouse_url, rules_file=rules_file)
    configure_logging(settings.log_level, settings.log_format)
    client = connect(settings)
    migrate(client, settings)
    try:
        tailer = build_tailer(settings, client, share)
    except RuleFileError as exc:
        err_console.print(f"[bold red]{len(exc.problems)} problem(s):[/]")
        for problem in exc.problems:
            err_console.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    stop = threading.Event()
    if not once:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    tailer.run(stop, once=once, interval_s=interval)
    tailer.analyzer.close()


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze)
