"""`llmrel breakers`: list the circuit breakers, open or close one by hand (audited), release it, dry run.

Every command talks to a running `llmrel serve` over its API (`--api`, default: the configured
HTTP endpoint), with the configured bearer token: the breaker leader lives there.
"""

from __future__ import annotations

import getpass
import json
import socket
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

breakers_app = typer.Typer(help="Circuit breakers: list, open/close by hand (audited), release, dry run.",
                           invoke_without_command=True)
ApiOpt = Annotated[str | None, typer.Option(help="llmrel HTTP endpoint (default: the configured one)")]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why (recorded in the audit log)")]
_SCOPE_HELP = "service, or service/operation/model/feature with trailing parts optional"
_STATE_STYLE = {"open": "bold red", "half_open": "yellow", "closed": "green"}


def _request(method: str, path: str, api: str | None, **kwargs: Any) -> httpx.Response:
    from llmrel.running import api_url, settings_or_exit

    settings = settings_or_exit()
    base = (api or api_url(settings)).rstrip("/")
    headers = {"Authorization": f"Bearer {settings.auth_token.get_secret_value()}"} if settings.auth_token else {}
    try:
        response = httpx.request(method, f"{base}{path}", headers=headers, timeout=30, **kwargs)
    except httpx.TransportError as exc:
        err_console.print(f"[red]no llmrel serve answers at {base}: {exc}[/]")
        raise typer.Exit(1) from None
    if response.status_code >= 400:
        err_console.print(f"[red]{base} answered {response.status_code}: {response.text[:500]}[/]")
        raise typer.Exit(1)
    return response


def _actor() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"[:100]
    except Exception:
        return "cli"


def _ago(iso: str) -> str:
    seconds = (datetime.now(UTC) - datetime.fromisoformat(iso.replace("Z", "+00:00"))).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{max(seconds, 0):.0f}s ago"


def _why(view: dict[str, Any]) -> str:
    why = view["why"]
    text = f"{why['cause']}: {why['reason']}"
    if why["finding_ids"]:
        text += f" [findings {', '.join(f[:8] for f in why['finding_ids'][:5])}]"
    if why["alert_fingerprint"]:
        text += f" [alert {why['alert_fingerprint']}]"
    return f"{text} ({why['actor']})"


@breakers_app.callback()
def list_breakers(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option(help="Only this service's scopes")] = None,
    history: Annotated[int, typer.Option(help="Last transitions shown per scope")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    api: ApiOpt = None,
) -> None:
    """Scopes with their state, since when, why (findings / alert), and their last transitions."""
    if ctx.invoked_subcommand is not None:
        return
    params: dict[str, Any] = {"history": history}
    if service:
        params["service"] = service
    data = _request("GET", "/api/v1/breakers", api, params=params).json()
    if as_json:
        console.print_json(json.dumps(data))
        return
    views = data["breakers"]
    if not views:
        console.print("no breaker has recorded anything yet")
        return
    table = Table(title=f"{len(views)} breaker scope(s)")
    for header in ("scope", "state", "since", "mode", "why", "last transitions"):
        table.add_column(header, overflow="fold")
    for v in views:
        state = f"[{_STATE_STYLE.get(v['state'], '')}]{v['state']}[/]"
        mode = "dry run" if v["dry_run"] else ("pinned " + v["override"] if v["override"] else "auto")
        steps = "\n".join(f"{s['at'][5:19]} {s['from']}→{s['to']} ({s['cause']})" for s in v.get("history", []))
        table.add_row(v["scope"], state, _ago(v["since"]), mode, _why(v), steps)
    console.print(table)


def _change(scope: str, body: dict[str, Any], api: str | None) -> None:
    response = _request("PUT", f"/api/v1/breakers/{scope}", api, json={**body, "actor": _actor()})
    view = response.json()
    if response.status_code == 202:
        console.print(f"{scope}: accepted; the breaker leader applies it within a few seconds")
        return
    console.print(f"{view['scope']}: [{_STATE_STYLE.get(view['state'], '')}]{view['state']}[/]"
                  f"{' (pinned)' if view['override'] else ''}{' (dry run)' if view['dry_run'] else ''}")


@breakers_app.command("open")
def open_breaker(scope: Annotated[str, typer.Argument(help=_SCOPE_HELP)],
                 reason: ReasonOpt, api: ApiOpt = None) -> None:
    """Pin a scope open (apps divert its calls) until `release`; automation cannot close it meanwhile."""
    _change(scope, {"state": "open", "reason": reason}, api)


@breakers_app.command("close")
def close_breaker(scope: Annotated[str, typer.Argument(help=_SCOPE_HELP)],
                  reason: ReasonOpt, api: ApiOpt = None) -> None:
    """Pin a scope closed until `release`; automation cannot trip it meanwhile."""
    _change(scope, {"state": "closed", "reason": reason}, api)


@breakers_app.command("release")
def release_breaker(scope: Annotated[str, typer.Argument(help=_SCOPE_HELP)],
                    reason: Annotated[str, typer.Option("--reason", "-r")] = "released to automation",
                    api: ApiOpt = None) -> None:
    """Hand a pinned scope back to automation (it starts closed)."""
    _change(scope, {"state": "auto", "reason": reason}, api)


@breakers_app.command("dry-run")
def dry_run(scope: Annotated[str, typer.Argument(help=_SCOPE_HELP)],
            enabled: Annotated[bool, typer.Argument(help="on: record transitions without enforcing them")],
            reason: ReasonOpt, api: ApiOpt = None) -> None:
    """Switch dry run on or off for a scope."""
    _change(scope, {"dry_run": enabled, "reason": reason}, api)


def register(app: typer.Typer) -> None:
    app.add_typer(breakers_app, name="breakers")
