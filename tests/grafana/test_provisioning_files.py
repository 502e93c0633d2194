"""The committed Grafana files: up to date with the generator, valid against the foundation SDK's
models, and every reference (datasource, dashboard, panel, receiver, runbook anchor) resolves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from grafana_foundation_sdk.models import alerting as am
from grafana_foundation_sdk.models import expr
from grafana_foundation_sdk.models.dashboard import Dashboard

from llmrel.grafana.build import repository_grafana_dir
from llmrel.grafana.provisioning import render_tree, to_plain
from llmrel.grafana.query import DATASOURCE_TYPE, DATASOURCE_UID, ClickHouseQuery

GRAFANA_DIR = repository_grafana_dir()
ALERTING = GRAFANA_DIR / "provisioning" / "alerting"


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def committed_dashboards() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((GRAFANA_DIR / "dashboards").glob("*.json"))}


def test_committed_files_are_what_the_generator_writes():
    expected = render_tree()
    committed = {str(p.relative_to(GRAFANA_DIR)): p.read_text() for sub in ("dashboards", "provisioning")
                 for p in (GRAFANA_DIR / sub).rglob("*") if p.is_file()}
    assert sorted(committed) == sorted(expected), "run: python -m llmrel.grafana.build"
    stale = [name for name, text in expected.items() if committed[name] != text]
    assert stale == [], f"stale {stale}: run python -m llmrel.grafana.build"


@pytest.mark.parametrize("uid", sorted(committed_dashboards()))
def test_dashboard_validates_against_the_sdk_model(uid):
    board = committed_dashboards()[uid]
    assert board["uid"] == uid
    decoded = Dashboard.from_json(board)
    targets = [t for p in decoded.panels or [] for t in getattr(p, "targets", None) or []]
    assert targets and all(isinstance(t, ClickHouseQuery) for t in targets)
    round_trip = to_plain(decoded)
    # The SDK types an annotation target as a built-in annotation filter ("should just be a normal
    # query target"): ours are ClickHouse queries, decoded with the ClickHouse model instead.
    for annotation in board["annotations"].get("list", []):
        assert to_plain(ClickHouseQuery.from_json(annotation["target"])) == annotation["target"]
    assert {k: v for k, v in round_trip.items() if k != "annotations"} == {
        k: v for k, v in board.items() if k != "annotations"}


def datasource_refs(node: object) -> list[object]:
    """Every `datasource` object and `datasourceUid` value anywhere under `node`."""
    found: list[object] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("datasource", "datasourceUid"):
                found.append(value)
            found.extend(datasource_refs(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(datasource_refs(item))
    return found


def test_every_datasource_reference_resolves_to_the_provisioned_datasource():
    (provisioned,) = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "llmrel-clickhouse.yaml")["datasources"]
    assert (provisioned["uid"], provisioned["type"]) == (DATASOURCE_UID, DATASOURCE_TYPE)
    for uid, board in committed_dashboards().items():
        refs = datasource_refs(board)
        assert refs and all(r == {"type": provisioned["type"], "uid": provisioned["uid"]} for r in refs), uid
    expression = {"type": "__expr__", "uid": "__expr__"}
    refs = datasource_refs(load_yaml(ALERTING / "rules.yaml"))
    assert refs and all(r in (provisioned["uid"], "__expr__", expression, {"type": provisioned["type"],
                                                                           "uid": provisioned["uid"]}) for r in refs)


def test_datasource_trace_settings_name_real_otel_traces_columns(store):
    (provisioned,) = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "llmrel-clickhouse.yaml")["datasources"]
    traces = provisioned["jsonData"]["traces"]
    columns = {row[0] for row in store.query(f"DESCRIBE TABLE {traces['defaultTable']}").result_rows}
    named = {v for k, v in traces.items() if k.endswith("Column")}
    assert named and named <= columns
    assert {f"{traces['traceEventsColumnPrefix']}.Name", f"{traces['traceLinksColumnPrefix']}.TraceId"} <= columns
    lookup = traces["defaultTable"] + traces["traceTimestampTableSuffix"]
    assert store.query(f"EXISTS TABLE {lookup}").result_rows == [(1,)]
    placeholders = {v for v in provisioned["jsonData"].values() if isinstance(v, str)}
    assert placeholders == {"$LLMREL_CH_HOST", "$LLMREL_CH_PORT", "$LLMREL_CH_PROTOCOL", "$LLMREL_CH_SECURE",
                            "$LLMREL_CH_USER", "$LLMREL_CH_DATABASE"}
    assert provisioned["secureJsonData"] == {"password": "$LLMREL_CH_PASSWORD"}


def file_rules() -> list[tuple[dict, dict]]:
    return [(group, rule) for group in load_yaml(ALERTING / "rules.yaml")["groups"] for rule in group["rules"]]


@pytest.mark.parametrize(("group", "rule"), file_rules(), ids=lambda v: v.get("uid", v.get("name")))
def test_alert_rule_validates_and_links_resolve(group, rule):
    api_shape = {k: v for k, v in rule.items() if k not in ("dashboardUid", "panelId")}
    api_shape.update(folderUID="llmrel", ruleGroup=group["name"], orgID=group["orgId"])
    decoded = am.Rule.from_json(api_shape)
    assert to_plain(decoded) == api_shape
    assert [type(q.model) for q in decoded.data] == [ClickHouseQuery, expr.TypeReduce, expr.TypeThreshold]
    assert decoded.condition == "C" and re.fullmatch(r"\d+[smh]", decoded.for_val)
    assert decoded.no_data_state in ("OK", "NoData", "Alerting") and decoded.exec_err_state in ("OK", "Error",
                                                                                                "Alerting")
    sql = decoded.data[0].model.raw_sql
    assert "$__conditionalAll" not in sql and not re.search(r"\$\{?(?!__)\w", sql), "alert SQL uses dashboard vars"
    assert {"severity", "product"} <= set(rule["labels"])
    assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
    board = committed_dashboards()[rule["dashboardUid"]]
    assert rule["panelId"] in {p["id"] for p in board["panels"]}
    anchor = rule["annotations"]["runbook_url"].split("#")[1]
    assert f'<a id="{anchor}"></a>' in (GRAFANA_DIR / "README.md").read_text()


def test_contact_points_templates_and_policy():
    points = load_yaml(ALERTING / "contact-points.yaml")["contactPoints"]
    receivers = {p["name"] for p in points}
    assert receivers == {"llmrel-slack", "llmrel-pagerduty", "llmrel-webhook", "llmrel-actions"}
    for point in points:
        (receiver,) = point["receivers"]
        decoded = am.ContactPoint.from_json({"name": point["name"], **receiver})
        assert decoded.type_val in ("slack", "pagerduty", "webhook")
        secrets = [v for k, v in receiver["settings"].items() if k in ("url", "integrationKey")]
        assert secrets and all(re.fullmatch(r"\$LLMREL_[A-Z_]+", s) for s in secrets)
    (template,) = load_yaml(ALERTING / "templates.yaml")["templates"]
    assert am.NotificationTemplate.from_json(template).name == "llmrel"
    assert "$" not in template["template"], "file provisioning would expand it as an env var"
    (policy,) = load_yaml(ALERTING / "policies.yaml")["policies"]

    def walk(route: dict) -> None:
        assert route["receiver"] in receivers
        matchers = route.get("object_matchers", [])
        assert all(len(m) == 3 and m[1] in ("=", "!=", "=~", "!~") for m in matchers)
        # The SDK models matchers as objects; Grafana's wire form is triples, checked above.
        am.NotificationPolicy.from_json({k: v for k, v in route.items() if k not in ("object_matchers", "routes")})
        for child in route.get("routes", []):
            walk(child)

    walk(policy)


def test_dashboards_provider_points_at_the_dashboards():
    (provider,) = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "llmrel.yaml")["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")
    # One folder identity: file-provisioned alert rules can only name their folder by title, so the
    # dashboards provider does too; a folderUid here makes a fresh Grafana create two "llmrel" folders.
    groups = load_yaml(GRAFANA_DIR / "provisioning" / "alerting" / "rules.yaml")["groups"]
    assert "folderUid" not in provider
    assert {group["folder"] for group in groups} == {provider["folder"]} == {"llmrel"}


@pytest.mark.parametrize("uid", sorted(committed_dashboards()))
def test_dashboards_use_the_pinned_grafana_11_models(uid):
    board = committed_dashboards()[uid]
    assert board["schemaVersion"] >= 39 and "style" not in board  # 10.x models wrote 36 and "style"
