"""`llmrel grafana push|export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmrel.grafana.alerts import AlertSettings

grafana_app = typer.Typer(name="grafana", help="Grafana dashboards, datasource and alert rules for llmrel.",
                          no_args_is_help=True)


def _settings(daily_budget_usd: float, latency_slo_ms: float, error_rate: float, violation_rate: float,
              folder: str) -> AlertSettings:
    return AlertSettings(folder_uid=folder, folder_title=folder, daily_budget_usd=daily_budget_usd,
                         latency_p99_slo_ms=latency_slo_ms, error_rate=error_rate, violation_rate=violation_rate)


Budget = Annotated[float, typer.Option(help="Daily LLM budget in USD (cost alerts, budget burn).")]
Slo = Annotated[float, typer.Option(help="Latency p99 SLO in milliseconds.")]
ErrorRate = Annotated[float, typer.Option(help="Error-rate alert threshold (0.05 = 5%).")]
ViolationRate = Annotated[float, typer.Option(help="Invariant violation-rate alert threshold.")]
Folder = Annotated[str, typer.Option(help="Grafana folder uid and title for dashboards and rules.")]


@grafana_app.command("export")
def export_command(
    directory: Annotated[Path, typer.Argument(help="Where to write dashboards/ and provisioning/.")],
    daily_budget_usd: Budget = 100.0, latency_slo_ms: Slo = 10_000.0, error_rate: ErrorRate = 0.05,
    violation_rate: ViolationRate = 0.05, folder: Folder = "llmrel",
) -> None:
    """Write the file-provisioning tree (dashboards JSON, datasource, providers, alerting)."""
    from llmrel.grafana.provisioning import build_bundle, write_tree

    settings = _settings(daily_budget_usd, latency_slo_ms, error_rate, violation_rate, folder)
    for path in write_tree(directory, build_bundle(settings)):
        typer.echo(str(path))


@grafana_app.command("push")
def push_command(
    url: Annotated[str, typer.Option(envvar="GRAFANA_URL", help="Grafana base URL, e.g. http://localhost:3000.")],
    token: Annotated[str, typer.Option(envvar="GRAFANA_TOKEN", help="Service account token (Editor or Admin).")],
    ch_host: Annotated[str, typer.Option(envvar="LLMREL_CH_HOST", help="ClickHouse host as Grafana reaches it.")],
    ch_port: Annotated[int, typer.Option(envvar="LLMREL_CH_PORT")] = 9000,
    ch_protocol: Annotated[str, typer.Option(envvar="LLMREL_CH_PROTOCOL", help="native or http.")] = "native",
    ch_secure: Annotated[bool, typer.Option(envvar="LLMREL_CH_SECURE", help="TLS to ClickHouse.")] = False,
    ch_user: Annotated[str, typer.Option(envvar="LLMREL_CH_USER", help=(
        "ClickHouse user for the datasource: a read-only one (`readonly = 1`, SELECT on llmrel's "
        "database). Dashboard viewers run SQL as this user."))] = "grafana",
    ch_password: Annotated[str, typer.Option(envvar="LLMREL_CH_PASSWORD")] = "",
    ch_database: Annotated[str, typer.Option(envvar="LLMREL_CH_DATABASE")] = "default",
    slack_url: Annotated[str, typer.Option(envvar="LLMREL_SLACK_WEBHOOK_URL")] = "",
    pagerduty_key: Annotated[str, typer.Option(envvar="LLMREL_PAGERDUTY_INTEGRATION_KEY")] = "",
    webhook_url: Annotated[str, typer.Option(envvar="LLMREL_ALERT_WEBHOOK_URL")] = "",
    actions_url: Annotated[str, typer.Option(envvar="LLMREL_ACTIONS_WEBHOOK_URL", help=(
        "llmrel's alert input as Grafana reaches it, e.g. http://llmrel:4318/api/v1/alerts/grafana"))] = "",
    actions_token: Annotated[str, typer.Option(envvar="LLMREL_AUTH_TOKEN", help="llmrel's bearer token")] = "",
    actions_hmac_secret: Annotated[str, typer.Option(envvar="LLMREL_GRAFANA_WEBHOOK_SECRET",
                                                     help="Signs alerts sent to llmrel (Grafana 12+)")] = "",
    policy: Annotated[bool, typer.Option(help="Also replace the org's notification policy tree.")] = False,
    force: Annotated[bool, typer.Option(help="Write every object even when unchanged (rotates secrets).")] = False,
    editable: Annotated[bool, typer.Option(help="Leave alerting objects editable in the UI.")] = False,
    daily_budget_usd: Budget = 100.0, latency_slo_ms: Slo = 10_000.0, error_rate: ErrorRate = 0.05,
    violation_rate: ViolationRate = 0.05, folder: Folder = "llmrel",
) -> None:
    """Create or update everything in a running Grafana; a second run changes nothing."""
    from grafana_client import GrafanaApi

    from llmrel.grafana.notifications import RECEIVERS
    from llmrel.grafana.provisioning import build_bundle
    from llmrel.grafana.push import ClickHouseConnection, push

    if ch_user == "default":
        typer.echo("warning: the datasource signs in as ClickHouse's `default` user, which can usually write and "
                   "drop tables; give Grafana a read-only user (grafana/README.md)", err=True)
    values = dict(zip((r.env for r in RECEIVERS), (slack_url, pagerduty_key, webhook_url, actions_url), strict=True))
    values.update(LLMREL_AUTH_TOKEN=actions_token, LLMREL_GRAFANA_WEBHOOK_SECRET=actions_hmac_secret)
    bundle = build_bundle(_settings(daily_budget_usd, latency_slo_ms, error_rate, violation_rate, folder), values)
    connection = ClickHouseConnection(host=ch_host, port=ch_port, protocol=ch_protocol, secure=ch_secure,
                                      username=ch_user, password=ch_password, database=ch_database)
    api = GrafanaApi.from_url(url, credential=token)
    report = push(api, bundle, connection, with_policy=policy, force=force, editable=editable)
    for verb, names in (("created", report.created), ("updated", report.updated), ("unchanged", report.unchanged)):
        for name in names:
            typer.echo(f"{verb:9} {name}")


def register(app: typer.Typer) -> None:
    """Add the grafana commands to the `llmrel` app."""
    app.add_typer(grafana_app)
