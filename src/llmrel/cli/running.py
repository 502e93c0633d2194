"""Asking a running `llmrel serve` over its API: while it runs, it owns the embedded store."""

from __future__ import annotations

from typing import Any

import httpx
import typer
from rich.console import Console

from llmrel.config import Settings

err_console = Console(stderr=True)


def api_url(settings: Settings) -> str:
    """The configured HTTP endpoint as a URL a local client can reach."""
    host, _, port = settings.http_endpoint.rpartition(":")
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "[::]") else host
    return f"http://{host}:{port}"


def ask_running_server(settings: Settings, path: str, params: dict[str, Any],
                       api: str | None = None) -> Any | None:
    """GET `path` from the running server when the store is embedded; None when none answers.

    Raises:
        typer.Exit: the server answered with an error (printed).
    """
    if not settings.is_embedded and api is None:
        return None
    base = api or api_url(settings)
    headers = {"Authorization": f"Bearer {settings.auth_token.get_secret_value()}"} if settings.auth_token else {}
    try:
        response = httpx.get(f"{base.rstrip('/')}{path}", params={k: v for k, v in params.items() if v is not None},
                             headers=headers, timeout=60)
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        err_console.print(f"[red]{base} answered {response.status_code}: {response.text[:300]}[/]")
        raise typer.Exit(1)
    return response.json()
