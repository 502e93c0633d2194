"""What every command needs: settings or a clear exit, and asking a running `llmrel serve` over its API
(while it runs, it owns the embedded store)."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import typer
from rich.console import Console

from llmrel.config import ConfigError, Settings, load_settings

err_console = Console(stderr=True)


def settings_or_exit(**overrides: Any) -> Settings:
    """Load settings, printing every problem and exiting 2 when invalid."""
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        err_console.print("[bold red]invalid configuration:[/]")
        for line in str(exc).splitlines():
            err_console.print(f"  - {line}")
        raise typer.Exit(2) from None


def api_url(settings: Settings) -> str:
    """The configured HTTP endpoint as a URL a local client can reach."""
    host, _, port = settings.http_endpoint.rpartition(":")
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "[::]") else host
    return f"{'https' if settings.tls else 'http'}://{host}:{port}"


def _verify(settings: Settings) -> ssl.SSLContext | bool:
    """With TLS configured, trust exactly the server's own certificate, its first in the file (not
    its issuers): the CLI asks the server it shares a configuration with, often by an address the
    certificate does not name, so the certificate itself is what is checked."""
    if settings.tls_cert_file is None:
        return True
    text = settings.tls_cert_file.read_text()
    end = "-----END CERTIFICATE-----"
    leaf = text[text.index("-----BEGIN CERTIFICATE-----"):text.index(end) + len(end)]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cadata=leaf)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


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
                             headers=headers, timeout=60, verify=_verify(settings))
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        err_console.print(f"[red]{base} answered {response.status_code}: {response.text[:300]}[/]")
        raise typer.Exit(1)
    return response.json()
