"""`llmrel grafana push|export` (filled in by the Grafana work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the grafana commands to the `llmrel` app."""
