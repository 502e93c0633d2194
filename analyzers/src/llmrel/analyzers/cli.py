"""`llmrel analyze`, `llmrel findings`, `llmrel rules` (filled in by the analyze work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the analyzer commands to the `llmrel` app."""
