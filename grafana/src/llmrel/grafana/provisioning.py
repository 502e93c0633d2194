"""Everything Grafana needs, as data: dashboards, datasource, providers, rules, contact points, policy.

`build_bundle()` is pure; `write_tree()` writes it as Grafana's file-provisioning layout:

    dashboards/<uid>.json
    provisioning/datasources/llmrel-clickhouse.yaml
    provisioning/dashboards/llmrel.yaml
    provisioning/alerting/{rules,contact-points,templates,policies}.yaml

Provisioning files use `$LLMREL_…` placeholders that Grafana fills from its environment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from llmrel.grafana.alerts import ORG_ID, AlertSettings, rule_groups
from llmrel.grafana.dashboards_actions import actions
from llmrel.grafana.dashboards_calls import cost_impact, overview, trace_drilldown
from llmrel.grafana.dashboards_findings import drift, findings_cost_tables, quality
from llmrel.grafana.dashboards_intel import explanations
from llmrel.grafana.notifications import contact_points, policy_tree, template
from llmrel.grafana.query import DATASOURCE_NAME, DATASOURCE_TYPE, DATASOURCE_UID

DASHBOARDS_PATH = "/var/lib/grafana/dashboards/llmrel"

# Placeholders in the datasource file; `llmrel grafana push` takes the same values as options.
CH_ENV = {
    "host": "LLMREL_CH_HOST",
    "port": "LLMREL_CH_PORT",
    "protocol": "LLMREL_CH_PROTOCOL",
    "secure": "LLMREL_CH_SECURE",
    "username": "LLMREL_CH_USER",
    "defaultDatabase": "LLMREL_CH_DATABASE",
    "password": "LLMREL_CH_PASSWORD",
}

TRACES_SETTINGS: dict[str, object] = {
    "defaultTable": "otel_traces",
    "otelEnabled": True,
    "otelVersion": "latest",
    "traceIdColumn": "TraceId",
    "spanIdColumn": "SpanId",
    "operationNameColumn": "SpanName",
    "parentSpanIdColumn": "ParentSpanId",
    "serviceNameColumn": "ServiceName",
    "durationColumn": "Duration",
    "durationUnit": "nanoseconds",
    "startTimeColumn": "Timestamp",
    "tagsColumn": "SpanAttributes",
    "serviceTagsColumn": "ResourceAttributes",
    "kindColumn": "SpanKind",
    "statusCodeColumn": "StatusCode",
    "statusMessageColumn": "StatusMessage",
    "stateColumn": "TraceState",
    "instrumentationLibraryNameColumn": "ScopeName",
    "instrumentationLibraryVersionColumn": "ScopeVersion",
    "flattenNested": False,
    "traceEventsColumnPrefix": "Events",
    "traceLinksColumnPrefix": "Links",
    "traceTimestampTableSuffix": "_trace_id_ts",
}


@dataclass(frozen=True)
class Bundle:
    """The rendered objects, in the shapes both file provisioning and the HTTP API take."""

    dashboards: dict[str, dict[str, Any]]
    rule_groups: list[dict[str, Any]]
    contact_points: list[dict[str, Any]]
    template: dict[str, Any]
    policy: dict[str, Any]
    settings: AlertSettings = field(default_factory=AlertSettings)


def to_plain(obj: object) -> Any:
    """An SDK object as plain JSON data."""
    return json.loads(json.dumps(obj, cls=JSONEncoder))


def panel_ids(dashboards: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    """(dashboard uid, panel title) -> panel id, for alert links."""
    return {(uid, panel["title"]): panel["id"] for uid, board in dashboards.items() for panel in board["panels"]}


def build_bundle(settings: AlertSettings | None = None, secrets: Mapping[str, str] | None = None) -> Bundle:
    """Render every object. `secrets` fills contact points for the API; `None` keeps `$ENV` placeholders."""
    settings = settings or AlertSettings()
    boards = [overview(), quality(), drift(), cost_impact(findings_cost_tables()), trace_drilldown(), actions(),
              explanations()]
    dashboards = {board["uid"]: board for board in (to_plain(b.build()) for b in boards)}
    points = [to_plain(cp) for cp in contact_points(secrets)]
    return Bundle(
        dashboards=dashboards,
        rule_groups=[to_plain(g) for g in rule_groups(settings, panel_ids(dashboards))],
        contact_points=points,
        template=to_plain(template()),
        policy=policy_tree({cp["uid"] for cp in points}) if points else {},
        settings=settings,
    )


def datasource_file() -> dict[str, Any]:
    env = {key: f"${name}" for key, name in CH_ENV.items()}
    return {"apiVersion": 1, "datasources": [{
        "name": DATASOURCE_NAME, "type": DATASOURCE_TYPE, "uid": DATASOURCE_UID, "access": "proxy",
        "orgId": ORG_ID, "editable": False,
        "jsonData": {
            "host": env["host"], "port": env["port"], "protocol": env["protocol"], "secure": env["secure"],
            "username": env["username"], "defaultDatabase": env["defaultDatabase"],
            "traces": {"defaultDatabase": env["defaultDatabase"], **TRACES_SETTINGS},
        },
        "secureJsonData": {"password": env["password"]},
    }]}


def dashboards_provider_file(settings: AlertSettings) -> dict[str, Any]:
    """The dashboards provider names its folder by title only, like the alert rule files must (file
    provisioning of alert rules cannot address a folder by UID, grafana/grafana#125079): with a
    `folderUid` here, a fresh Grafana provisions the rules first, creates a second "llmrel" folder
    with a generated UID, and the two folders split dashboards from rules."""
    return {"apiVersion": 1, "providers": [{
        "name": "llmrel", "orgId": ORG_ID, "folder": settings.folder_title,
        "type": "file", "disableDeletion": False, "allowUiUpdates": False, "updateIntervalSeconds": 60,
        "options": {"path": DASHBOARDS_PATH},
    }]}


def _file_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """An API-shaped rule in the file format: dashboard/panel links as `dashboardUid`/`panelId`."""
    annotations = dict(rule["annotations"])
    out = {"uid": rule["uid"], "title": rule["title"], "condition": rule["condition"], "data": rule["data"],
           "dashboardUid": annotations.pop("__dashboardUid__"), "panelId": int(annotations.pop("__panelId__")),
           "noDataState": rule["noDataState"], "execErrState": rule["execErrState"], "for": rule["for"],
           "annotations": annotations, "labels": rule["labels"], "isPaused": rule["isPaused"]}
    return out


def alerting_files(bundle: Bundle) -> dict[str, dict[str, Any]]:
    """File-provisioning documents for `provisioning/alerting/`."""
    folder = bundle.settings.folder_title
    groups = [{"orgId": ORG_ID, "name": g["title"], "folder": folder, "interval": f"{g['interval']}s",
               "rules": [_file_rule(r) for r in g["rules"]]} for g in bundle.rule_groups]
    points = [{"orgId": ORG_ID, "name": cp["name"], "receivers": [
        {"uid": cp["uid"], "type": cp["type"], "settings": cp["settings"],
         "disableResolveMessage": cp["disableResolveMessage"]}]} for cp in bundle.contact_points]
    return {
        "rules.yaml": {"apiVersion": 1, "groups": groups},
        "contact-points.yaml": {"apiVersion": 1, "contactPoints": points},
        "templates.yaml": {"apiVersion": 1, "templates": [{"orgId": ORG_ID, **bundle.template}]},
        "policies.yaml": {"apiVersion": 1, "policies": [{"orgId": ORG_ID, **bundle.policy}]},
    }


class _Dumper(yaml.SafeDumper):
    """Writes repeated values in full: provisioning files are read by people, not only by Grafana."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _yaml(doc: object) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)


def render_tree(bundle: Bundle | None = None) -> dict[str, str]:
    """Relative path -> file text for the whole provisioning tree."""
    bundle = bundle or build_bundle()
    files = {f"dashboards/{uid}.json": json.dumps(board, indent=2) + "\n" for uid, board in bundle.dashboards.items()}
    files["provisioning/datasources/llmrel-clickhouse.yaml"] = _yaml(datasource_file())
    files["provisioning/dashboards/llmrel.yaml"] = _yaml(dashboards_provider_file(bundle.settings))
    for name, doc in alerting_files(bundle).items():
        files[f"provisioning/alerting/{name}"] = _yaml(doc)
    return files


def write_tree(directory: Path, bundle: Bundle | None = None) -> list[Path]:
    """Write the provisioning tree under `directory`; returns the files written."""
    written = []
    for relative, text in render_tree(bundle).items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
