"""`llmrel serve`, `llmrel migrate`, `llmrel report`, `llmrel reprice`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ingest commands to the `llmrel` app."""
