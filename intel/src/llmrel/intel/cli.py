"""`llmrel explain <finding-id>` and `llmrel recommend`: through a running `llmrel serve`, else the store."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from llmrel.cli.running import ask_running_server

console = Console()
err_console = Console(stderr=True)

_STORE_HELP = "chdb:///path or http(s)://user:pass@host:8123/db [env LLMREL_CLICKHOUSE_URL]"
StoreOpt = Annotated[str | None, typer.Option("--clickhouse-url", help=_STORE_HELP)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]


def _client(clickhouse_url: str | None) -> Any:
    from llmrel.cli.ingest import settings_or_exit
    from llmrel.store import connect, migrate

    settings = settings_or_exit(clickhouse_url=clickhouse_url)
    client = connect(settings)
    migrate(client, settings)
    return client


def _settings(clickhouse_url: str | None) -> Any:
    from llmrel.cli.ingest import settings_or_exit

    return settings_or_exit(clickhouse_url=clickhouse_url)


def explain(
    finding_id: Annotated[str, typer.Argument(help="Finding id (32 hex characters; see `llmrel findings`)")],
    refresh: Annotated[bool, typer.Option("--refresh", help="Recompute even when an explanation is stored")] = False,
    as_json: JsonOpt = False,
    clickhouse_url: StoreOpt = None,
) -> None:
    """What the calls of a finding have in common, against the calls before and beside them."""
    from llmrel.intel.explain import FindingNotFoundError, explain_and_store, stored_explanation

    finding_id = finding_id.strip().lower()
    settings = _settings(clickhouse_url)
    result = ask_running_server(settings, f"/api/v1/findings/{finding_id}/explanation",
                                {"refresh": "true" if refresh else None})
    if result is None:
        client = _client(clickhouse_url)
        try:
            if refresh or (result := stored_explanation(client, finding_id)) is None:
                explain_and_store(client, finding_id)
                result = stored_explanation(client, finding_id)
        except FindingNotFoundError as exc:
            err_console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from None
    assert result is not None
    if as_json:
        console.print_json(json.dumps(result, default=str))
        return
    style = {"explained": "bold green", "unexplained": "yellow", "insufficient": "yellow"}[result["verdict"]]
    console.print(f"[{style}]{result['summary']}[/]")
    scope = result.get("scope") or {}
    console.print(f"finding {result['finding_id']} ({result['kind']} {result['rule_id']}, {result['service']}): "
                  f"{scope.get('contrast', '')}", highlight=False)
    if result["causes"]:
        table = Table(title="Causes, best first")
        for header in ("cause", "affected", "baseline", "affected %", "baseline %", "lift", "p (corrected)"):
            table.add_column(header, justify="left" if header == "cause" else "right")
        for c in result["causes"]:
            table.add_row(c["cause"], str(c["target_calls"]), str(c["baseline_calls"]), f"{c['target_share']:.1%}",
                          f"{c['baseline_share']:.1%}", f"{c['lift']:.1f}x", f"{c['p_value']:.2g}")
        console.print(table)


def recommend(
    since: Annotated[str, typer.Option(help="7d, 24h or an ISO time")] = "7d",
    margin: Annotated[float, typer.Option(help="Largest acceptable failure-rate increase (0.02 = 2 points)")] = 0.02,
    confidence: Annotated[float, typer.Option(help="One-sided confidence of the non-inferiority test")] = 0.95,
    min_calls: Annotated[int, typer.Option(help="Calls each model needs")] = 200,
    as_json: JsonOpt = False,
    clickhouse_url: StoreOpt = None,
) -> None:
    """Per service/operation/feature: a cheaper model of equal quality, with the evidence and monthly saving."""
    from llmrel.intel.recommend import RecommendConfig
    from llmrel.intel.recommend import recommend as advise
    from llmrel.report import parse_since

    try:
        since_ns = parse_since(since)
    except ValueError as exc:
        err_console.print(f"[red]--since: {exc}[/]")
        raise typer.Exit(2) from None
    settings = _settings(clickhouse_url)
    result = ask_running_server(settings, "/api/v1/recommendations",
                                {"since": since, "margin": margin, "confidence": confidence, "min_calls": min_calls})
    groups = result["groups"] if result is not None else [
        g.as_dict() for g in advise(_client(clickhouse_url), since_ns, time.time_ns(),
                                    RecommendConfig(margin=margin, confidence=confidence, min_calls=min_calls))]
    if as_json:
        console.print_json(json.dumps(groups, default=str))
        return
    if not groups:
        console.print(f"no calls since {since}")
    for g in groups:
        title = f"{g['service']} / {g['operation']} / {g['feature'] or '-'}"
        table = Table(title=title)
        for header in ("model", "calls", "failure %", "errors %", "violations %", "p95 ms", "$ / success"):
            table.add_column(header, justify="left" if header == "model" else "right")
        for m in g["models"]:
            cps = m["cost_per_success_usd"]
            table.add_row(m["model"] + (" (current)" if m["model"] == g["incumbent"] else ""), str(m["calls"]),
                          f"{m['failure_rate']:.2%}", f"{m['error_rate']:.2%}", f"{m['violation_rate']:.2%}",
                          f"{m['latency_p95_ms']:.0f}", "unpriced" if cps is None else f"{cps:.6f}")
        console.print(table)
        rec = g["recommendation"]
        if rec:
            console.print(f"[bold green]switch {rec['from_model']} -> {rec['to_model']}: about "
                          f"${rec['monthly_saving_usd']:,.2f}/month[/] (failure rate {rec['failure_rate'][0]:.2%} -> "
                          f"{rec['failure_rate'][1]:.2%}, not worse by {rec['margin']:.0%} at "
                          f"{rec['confidence']:.0%} confidence)")
        for note in g["notes"]:
            console.print(f"  {note}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `explain` and `recommend` to the `llmrel` app."""
    app.command("explain")(explain)
    app.command("recommend")(recommend)
