"""The `llmrel` command. Each area registers its own sub-commands on the one Typer app."""

from __future__ import annotations

import typer
from rich.console import Console

from llmrel.cli import ingest

app = typer.Typer(name="llmrel", help="Reliability platform for LLM applications.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)

ingest.register(app)


def _register_optional() -> None:
    """Areas that live in other product folders register themselves when present."""
    from llmrel.actions import cli as actions_cli
    from llmrel.analyzers import cli as analyzers_cli
    from llmrel.cli import analyze, demo
    from llmrel.grafana import cli as grafana_cli
    from llmrel.intel import cli as intel_cli

    demo.register(app)
    analyzers_cli.register(app)
    analyze.register(app)
    actions_cli.register(app)
    grafana_cli.register(app)
    intel_cli.register(app)


_register_optional()


def main() -> None:
    from llmrel.store import StoreInUseError

    try:
        app()
    except StoreInUseError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}")
        raise SystemExit(1) from None
