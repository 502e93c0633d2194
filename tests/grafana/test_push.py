"""`llmrel grafana push` with the real grafana-client against `FakeGrafana`, a local HTTP server that
checks each call against Grafana's documented API (a Grafana server cannot run on this machine)."""

from __future__ import annotations

import inspect

import pytest
from grafana_client import GrafanaApi
from typer.testing import CliRunner

from llmrel.cli import app
from llmrel.grafana.alerts import AlertSettings
from llmrel.grafana.cli import grafana_app, push_command
from llmrel.grafana.provisioning import build_bundle
from llmrel.grafana.push import READ_ONLY_USER, ClickHouseConnection, push
from tests.grafana.fake_grafana import FakeGrafana

TOKEN = "glsa_test_token"
SECRETS = {"LLMREL_SLACK_WEBHOOK_URL": "https://hooks.slack.example/T/B/x",
           "LLMREL_PAGERDUTY_INTEGRATION_KEY": "pd-key-123", "LLMREL_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook",
           "LLMREL_ACTIONS_WEBHOOK_URL": "http://llmrel:4318/api/v1/alerts/grafana", "LLMREL_AUTH_TOKEN": "tok",
           "LLMREL_GRAFANA_WEBHOOK_SECRET": "hmac-key"}
CONNECTION = ClickHouseConnection(host="clickhouse", port=9000, username="grafana", password="pw", database="llmrel")


@pytest.fixture
def grafana():
    with FakeGrafana(TOKEN) as server:
        yield server


def api_for(server: FakeGrafana) -> GrafanaApi:
    return GrafanaApi.from_url(server.url, credential=TOKEN)


def test_first_push_creates_everything_in_order(grafana):
    bundle = build_bundle(secrets=SECRETS)
    report = push(api_for(grafana), bundle, CONNECTION, with_policy=True)
    assert grafana.errors == []
    writes = [(c.method, c.path) for c in grafana.writes()]
    assert writes == [
        ("POST", "/api/folders"),
        ("POST", "/api/datasources"),
        *[("POST", "/api/dashboards/db")] * 7,
        ("PUT", "/api/v1/provisioning/templates/llmrel"),
        *[("POST", "/api/v1/provisioning/contact-points")] * 4,
        ("PUT", "/api/v1/provisioning/folder/llmrel/rule-groups/llmrel-quality"),
        ("PUT", "/api/v1/provisioning/folder/llmrel/rule-groups/llmrel-service"),
        ("PUT", "/api/v1/provisioning/folder/llmrel/rule-groups/llmrel-cost"),
        ("PUT", "/api/v1/provisioning/policies"),
    ]
    assert all(c.headers["authorization"] == f"Bearer {TOKEN}" for c in grafana.calls)
    assert all(c.headers["content-type"].startswith("application/json") for c in grafana.writes())
    assert all("x-disable-provenance" not in c.headers for c in grafana.writes())
    assert report.writes == len(writes) and report.unchanged == []

    folder, datasource = grafana.writes()[0].body, grafana.writes()[1].body
    assert folder == {"title": "llmrel", "uid": "llmrel"}
    assert datasource["type"] == "grafana-clickhouse-datasource" and datasource["uid"] == "llmrel-clickhouse"
    assert datasource["jsonData"]["host"] == "clickhouse" and datasource["secureJsonData"] == {"password": "pw"}
    saved = grafana.writes()[2].body
    assert saved["folderUid"] == "llmrel" and saved["overwrite"] is True and saved["dashboard"]["uid"]
    groups = {g["title"]: g for g in grafana.state.rule_groups.values()}
    assert {r["uid"] for r in groups["llmrel-service"]["rules"]} == {
        "llmrel-error-rate", "llmrel-latency-p99-slo", "llmrel-ingestion-stalled"}
    assert groups["llmrel-cost"]["interval"] == 300
    slack = grafana.state.contact_points["llmrel-slack"]
    assert slack["type"] == "slack" and slack["settings"]["url"] == SECRETS["LLMREL_SLACK_WEBHOOK_URL"]
    assert [r["receiver"] for r in grafana.state.policy["routes"]] == [
        "llmrel-actions", "llmrel-pagerduty", "llmrel-webhook", "llmrel-slack"]
    actions = grafana.state.contact_points["llmrel-actions"]["settings"]
    assert (actions["url"], actions["authorization_credentials"], actions["hmacConfig"]) == (
        SECRETS["LLMREL_ACTIONS_WEBHOOK_URL"], "tok",
        {"secret": "hmac-key", "header": "X-Grafana-Alerting-Signature"})


def test_second_push_writes_nothing(grafana):
    bundle = build_bundle(secrets=SECRETS)
    push(api_for(grafana), bundle, CONNECTION, with_policy=True)
    first = len(grafana.calls)
    report = push(api_for(grafana), build_bundle(secrets=SECRETS), CONNECTION, with_policy=True)
    assert grafana.errors == []
    assert [c for c in grafana.calls[first:] if c.method != "GET"] == []
    assert report.writes == 0 and len(report.unchanged) == 1 + 1 + 7 + 1 + 4 + 3 + 1


def test_a_changed_threshold_rewrites_only_its_rule_group(grafana):
    push(api_for(grafana), build_bundle(secrets=SECRETS), CONNECTION)
    first = len(grafana.calls)
    report = push(api_for(grafana), build_bundle(AlertSettings(daily_budget_usd=250), SECRETS), CONNECTION)
    assert [(c.method, c.path) for c in grafana.calls[first:] if c.method != "GET"] == [
        ("PUT", "/api/v1/provisioning/folder/llmrel/rule-groups/llmrel-cost")]
    assert report.updated == ["rule group llmrel-cost"]


def test_missing_secrets_skip_their_contact_points_and_editable_sets_the_header(grafana):
    only_webhook = {"LLMREL_ALERT_WEBHOOK_URL": SECRETS["LLMREL_ALERT_WEBHOOK_URL"]}
    push(api_for(grafana), build_bundle(secrets=only_webhook), CONNECTION, with_policy=True, editable=True)
    assert grafana.errors == []
    assert list(grafana.state.contact_points) == ["llmrel-webhook"]
    assert grafana.state.policy["receiver"] == "llmrel-webhook"
    provisioning = [c for c in grafana.writes() if c.path.startswith("/api/v1/provisioning/")]
    assert provisioning and all(c.headers.get("x-disable-provenance") == "true" for c in provisioning)


def test_force_rewrites_and_the_cli_drives_a_push(grafana, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    args = ["grafana", "push", "--url", grafana.url, "--token", TOKEN, "--ch-host", "clickhouse"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.output.count("created") == 1 + 1 + 7 + 1 + 4 + 3
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "created" not in again.output and "updated" not in again.output
    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0 and forced.output.count("updated") == 1 + 1 + 7 + 1 + 4 + 3
    assert grafana.errors == []


def test_push_defaults_to_a_read_only_user():
    """The datasource's user runs every viewer's SQL: `grafana` (read-only, documented), not `default`."""
    assert ClickHouseConnection(host="h").username == READ_ONLY_USER == "grafana"
    assert inspect.signature(push_command).parameters["ch_user"].default == READ_ONLY_USER
    # Grafana's URL is a closed loopback port: the warning comes before any request.
    result = CliRunner().invoke(grafana_app, ["push", "--url", "http://127.0.0.1:9", "--token", "t", "--ch-host", "h",
                                              "--ch-user", "default"])
    assert "read-only user" in result.output
