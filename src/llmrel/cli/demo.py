"""`llmrel demo`: the local LLM simulator and demo traffic (filled in by the capture work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the demo commands to the `llmrel` app."""
