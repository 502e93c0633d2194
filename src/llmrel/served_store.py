"""How a process reaches an embedded store that a running `llmrel serve` holds: through that serve's
ClickHouse HTTP interface, as `llmrel_admin`, with the secret kept in the store directory.

`llmrel serve` writes the interface's bound address to `clickhouse-http.endpoint` in the store and
the admin password to `clickhouse-http-admin.secret` (0600); `llmrel.store.connect()` reads both.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from llmrel.config import Settings

ADMIN_USER = "llmrel_admin"
ADMIN_SECRET_FILE = "clickhouse-http-admin.secret"
ENDPOINT_FILE = "clickhouse-http.endpoint"


def admin_secret_path(settings: Settings) -> Path | None:
    """Where the admin password lives: the setting, else the embedded store's directory."""
    if settings.clickhouse_http_admin_secret_file is not None:
        return settings.clickhouse_http_admin_secret_file
    return settings.embedded_path / ADMIN_SECRET_FILE if settings.embedded_path is not None else None


def read_admin_secret(settings: Settings) -> str | None:
    path = admin_secret_path(settings)
    if path is None or not path.is_file():
        return None
    return path.read_text().strip() or None


def ensure_admin_secret(settings: Settings) -> str:
    """The admin password, generated into a new 0600 file when there is none yet."""
    path = admin_secret_path(settings)
    if path is None:
        raise ValueError("no place for the admin secret: set LLMREL_CLICKHOUSE_HTTP_ADMIN_SECRET_FILE")
    if (existing := read_admin_secret(settings)) is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return read_admin_secret(settings) or secret
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    return secret


def publish_endpoint(store: Path, host: str, port: int) -> None:
    """Record where the running interface listens (loopback when it listens on every interface)."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    tmp = store / (ENDPOINT_FILE + ".tmp")
    tmp.write_text(f"{host}:{port}\n")
    tmp.replace(store / ENDPOINT_FILE)


def withdraw_endpoint(store: Path) -> None:
    (store / ENDPOINT_FILE).unlink(missing_ok=True)


def published_endpoint(store: Path) -> tuple[str, int] | None:
    try:
        host, _, port = (store / ENDPOINT_FILE).read_text().strip().rpartition(":")
    except OSError:
        return None
    return (host.strip("[]"), int(port)) if port.isdigit() else None
