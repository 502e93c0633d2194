"""`llmrel findings`, `llmrel rules check|test` (`llmrel analyze` is composed in `llmrel.cli.analyze`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from llmrel.running import ask_running_server

console = Console()
err_console = Console(stderr=True)

_STORE_HELP = "chdb:///path or http(s)://user:pass@host:8123/db [env LLMREL_CLICKHOUSE_URL]"
StoreOpt = Annotated[str | None, typer.Option("--clickhouse-url", help=_STORE_HELP)]
SinceOpt = Annotated[str, typer.Option(help="1h, 30m, 7d or an ISO time")]

rules_app = typer.Typer(help="Validate and dry-run invariant rule files.", no_args_is_help=True)


def _settings(**overrides: Any) -> Any:
    from llmrel.running import settings_or_exit

    return settings_or_exit(**overrides)


def _since_ns(since: str) -> int:
    from llmrel.report import parse_since

    try:
        return parse_since(since)
    except ValueError as exc:
        err_console.print(f"[red]--since: {exc}[/]")
        raise typer.Exit(2) from None


def _print_problems(problems: list[str]) -> None:
    err_console.print(f"[bold red]{len(problems)} problem(s):[/]")
    for problem in problems:
        err_console.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)


def findings(
    since: SinceOpt = "1h",
    kind: Annotated[str | None, typer.Option(help="invariant | trace | window | budget | drift")] = None,
    rule: Annotated[str | None, typer.Option(help="Rule id (drift: drift.<metric>)")] = None,
    service: Annotated[str | None, typer.Option()] = None,
    severity: Annotated[str | None, typer.Option(help="info | warning | error | critical")] = None,
    model: Annotated[str | None, typer.Option()] = None,
    tenant: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    clickhouse_url: StoreOpt = None,
) -> None:
    """Recent findings, newest first."""
    from llmrel.findings_summary import recent_findings
    from llmrel.store import connect

    settings = _settings(clickhouse_url=clickhouse_url)
    filters = {"kind": kind, "rule": rule, "service": service, "severity": severity, "model": model, "tenant": tenant}
    since_ns = _since_ns(since)
    rows = ask_running_server(settings, "/api/v1/findings", {"since": since, "limit": limit, **filters})
    if rows is None:
        rows = recent_findings(connect(settings), since_ns, limit=limit, **filters)
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    table = Table(title=f"{len(rows)} finding(s) since {since}")
    for header in ("event time (UTC)", "kind", "rule", "severity", "service / model"):
        table.add_column(header, no_wrap=True)
    table.add_column("message", overflow="fold", ratio=1)
    table.add_column("spend $", justify="right", no_wrap=True)
    for r in rows:
        when = datetime.fromtimestamp(r["event_time_ns"] / 1e9, UTC).strftime("%m-%d %H:%M:%S")
        message = r["message"] + (f" [likely cause: {r['likely_cause']}]" if r.get("likely_cause") else "")
        table.add_row(when, r["kind"], r["rule_id"], r["severity"], f"{r['service']} / {r['model']}", message,
                      f"{r['cost_usd']:.4f}")
    console.print(table)


@rules_app.command("check")
def rules_check(file: Annotated[Path, typer.Argument(help="Rule file (YAML)")]) -> None:
    """Validate a rule file together with the default pack; every problem is listed with its line."""
    from llmrel.analyzers.ruleset import check_rule_file, load_ruleset

    problems = check_rule_file(file)
    if problems:
        _print_problems(problems)
        raise typer.Exit(1)
    ruleset = load_ruleset(file)
    console.print(f"{file}: ok ({len(ruleset.rules)} rules with the default pack, drift "
                  f"{'on' if ruleset.drift.enabled else 'off'})", soft_wrap=True)


@rules_app.command("test")
def rules_test(
    file: Annotated[Path, typer.Argument(help="Rule file (YAML)")],
    since: SinceOpt = "1h",
    with_default: Annotated[bool, typer.Option("--with-default/--only-file",
                                               help="Include the default pack")] = False,
    drift: Annotated[bool, typer.Option("--drift", help="Also replay drift detection (needs warm-up)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    clickhouse_url: StoreOpt = None,
) -> None:
    """Replay stored calls through a rule file (nothing is written) and show what would fire."""
    import polars as pl

    from llmrel.analyzers.replay import load_calls, replay, summarize
    from llmrel.analyzers.ruleset import RuleFileError, load_ruleset, parse_rule_file
    from llmrel.store import connect

    try:  # always with the default pack: the file may disable or build on default rules
        ruleset = load_ruleset(file, include_default=True)
    except RuleFileError as exc:
        _print_problems(exc.problems)
        raise typer.Exit(1) from None
    settings = _settings(clickhouse_url=clickhouse_url)
    calls = load_calls(connect(settings), _since_ns(since))
    summary = summarize(replay(ruleset, calls, drift=drift), calls.height)
    if not with_default:  # show only what the file's own rules (and drift, if asked) would fire
        own = {rule.id for rule in parse_rule_file(file.read_text(), str(file))[0].rules}
        summary = summary.filter(pl.col("rule_id").is_in(own) | (pl.col("kind") == "drift"))
    if as_json:
        console.print_json(json.dumps({"calls": calls.height, "rules": summary.to_dicts()}))
        return
    table = Table(title=f"{file}: what would fire over {calls.height} stored calls since {since}")
    for header in ("rule", "kind", "severity", "findings", "per call", "calls", "spend $", "impact $", "example"):
        table.add_column(header, overflow="fold")
    for r in summary.iter_rows(named=True):
        table.add_row(r["rule_id"], r["kind"], r["severity"], str(r["findings"]), f"{r['per_call']:.2%}",
                      str(r["calls_concerned"]), f"{r['cost_usd']:.4f}", f"{r['impact_usd']:.2f}", r["example"])
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the analyzer commands to the `llmrel` app."""
    app.command("findings")(findings)
    app.add_typer(rules_app, name="rules")
