"""`llmrel grafana push`: create or update the folder, datasource, dashboards, alert rules, contact
points, template (and optionally the policy tree) through Grafana's HTTP API with grafana-client.

Idempotent: every object is read first and written only when it differs from what we would send,
so a second push makes no write. The comparison is "our fields are there with our values":
Grafana adds defaults (ids, versions, query `intervalMs`, ...) that are not differences, and it
returns secrets redacted, so a redacted secret counts as unchanged (rotate with `--force`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from llmrel.grafana.provisioning import TRACES_SETTINGS, Bundle
from llmrel.grafana.query import DATASOURCE_NAME, DATASOURCE_TYPE, DATASOURCE_UID

REDACTED = "[REDACTED]"
_RULE_FIELDS = ("uid", "title", "condition", "data", "for", "noDataState", "execErrState", "labels",
                "annotations", "isPaused", "folderUID", "ruleGroup", "orgID")


READ_ONLY_USER = "grafana"
"""The ClickHouse user Grafana signs in as unless told otherwise: one with `readonly = 1` (see grafana/README.md)."""


@dataclass(frozen=True)
class ClickHouseConnection:
    """How Grafana reaches the ClickHouse server llmrel writes to (as a read-only user by default)."""

    host: str
    port: int = 9000
    protocol: str = "native"
    secure: bool = False
    username: str = READ_ONLY_USER
    password: str = ""
    database: str = "default"


@dataclass
class PushReport:
    """What a push did, by object ("dashboard llmrel-overview", ...)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return len(self.created) + len(self.updated)


def matches(desired: Any, existing: Any) -> bool:
    """True when every field of `desired` is in `existing` with the same value (a redacted secret matches)."""
    if isinstance(desired, dict):
        return isinstance(existing, dict) and all(k in existing and matches(v, existing[k]) for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(existing, list) and len(desired) == len(existing)
                and all(matches(d, e) for d, e in zip(desired, existing, strict=True)))
    if existing == REDACTED:
        return True
    if isinstance(desired, float | int) and isinstance(existing, float | int) and not isinstance(desired, bool):
        return float(desired) == float(existing)
    return desired == existing


def _get(read: Callable[[], Any]) -> Any | None:
    """The object `read` returns, or None on 404."""
    try:
        return read()
    except GrafanaClientError as error:
        if error.status_code == 404:
            return None
        raise


def datasource_payload(connection: ClickHouseConnection) -> dict[str, Any]:
    return {
        "name": DATASOURCE_NAME, "type": DATASOURCE_TYPE, "uid": DATASOURCE_UID, "access": "proxy",
        "jsonData": {
            "host": connection.host, "port": connection.port, "protocol": connection.protocol,
            "secure": connection.secure, "username": connection.username,
            "defaultDatabase": connection.database,
            "traces": {"defaultDatabase": connection.database, **TRACES_SETTINGS},
        },
        "secureJsonData": {"password": connection.password},
    }


class Pusher:
    """One push of a bundle; `force` rewrites objects even when they match."""

    def __init__(self, api: GrafanaApi, bundle: Bundle, *, force: bool = False, editable: bool = False) -> None:
        self.api, self.bundle, self.force, self.editable = api, bundle, force, editable
        self.report = PushReport()

    def _apply(self, name: str, existing: Any, desired: Any, create: Callable[[], Any],
               update: Callable[[], Any]) -> None:
        if existing is None:
            create()
            self.report.created.append(name)
        elif self.force or not matches(desired, existing):
            update()
            self.report.updated.append(name)
        else:
            self.report.unchanged.append(name)

    def folder(self) -> None:
        uid, title = self.bundle.settings.folder_uid, self.bundle.settings.folder_title
        folder = self.api.folder
        self._apply(f"folder {uid}", _get(lambda: folder.get_folder(uid)), {"uid": uid, "title": title},
                    lambda: folder.create_folder(title, uid=uid),
                    lambda: folder.update_folder(uid, title=title, overwrite=True))

    def datasource(self, connection: ClickHouseConnection) -> None:
        payload = datasource_payload(connection)
        existing = _get(lambda: self.api.datasource.get_datasource_by_uid(DATASOURCE_UID))
        comparable = {k: v for k, v in payload.items() if k != "secureJsonData"}
        if connection.password and existing is not None and not existing.get("secureJsonFields", {}).get("password"):
            comparable["secureJsonFields"] = {"password": True}
        self._apply(f"datasource {DATASOURCE_UID}", existing, comparable,
                    lambda: self.api.datasource.create_datasource(payload),
                    lambda: self.api.datasource.update_datasource_by_uid(DATASOURCE_UID, payload))

    def dashboards(self) -> None:
        folder_uid = self.bundle.settings.folder_uid
        for uid, board in self.bundle.dashboards.items():
            existing = _get(partial(self.api.dashboard.get_dashboard, uid))
            payload = {"dashboard": {**board, "id": None}, "folderUid": folder_uid, "overwrite": True,
                       "message": "llmrel grafana push"}
            desired = {"dashboard": board, "meta": {"folderUid": folder_uid}}
            save = partial(self.api.dashboard.update_dashboard, payload)
            self._apply(f"dashboard {uid}", existing, desired, save, save)

    def rule_groups(self) -> None:
        provisioning = self.api.alertingprovisioning
        folder_uid = self.bundle.settings.folder_uid
        for group in self.bundle.rule_groups:
            title = group["title"]
            body = {"title": title, "folderUid": folder_uid, "interval": group["interval"],
                    "rules": [{k: rule[k] for k in _RULE_FIELDS if k in rule} for rule in group["rules"]]}
            existing = _get(partial(provisioning.get_rule_group, folder_uid, title))
            put = partial(provisioning.update_rule_group, folder_uid, title, body, disable_provenance=self.editable)
            self._apply(f"rule group {title}", existing, body, put, put)

    def contact_points(self) -> None:
        provisioning = self.api.alertingprovisioning
        existing = {cp.get("uid"): cp for cp in provisioning.get_contactpoints()}
        for point in self.bundle.contact_points:
            uid = point["uid"]
            self._apply(f"contact point {uid}", existing.get(uid), point,
                        partial(provisioning.create_contactpoint, point, disable_provenance=self.editable),
                        partial(provisioning.update_contactpoint, uid, point, disable_provenance=self.editable))

    def template(self) -> None:
        provisioning = self.api.alertingprovisioning
        name, body = self.bundle.template["name"], {"template": self.bundle.template["template"]}

        def put() -> None:
            provisioning.create_or_update_template(name, body, disable_provenance=self.editable)

        self._apply(f"template {name}", _get(lambda: provisioning.get_template(name)), body, put, put)

    def policy(self) -> None:
        provisioning = self.api.alertingprovisioning

        def put() -> None:
            provisioning.set_notification_policy_tree(self.bundle.policy, disable_provenance=self.editable)

        self._apply("notification policy", provisioning.get_notification_policy_tree(), self.bundle.policy, put, put)


def push(api: GrafanaApi, bundle: Bundle, connection: ClickHouseConnection, *, with_policy: bool = False,
         force: bool = False, editable: bool = False) -> PushReport:
    """Bring Grafana in line with `bundle`; see the module docstring for what "in line" means.

    The notification policy tree is the whole org's routing, so it is replaced only with `with_policy`.
    """
    pusher = Pusher(api, bundle, force=force, editable=editable)
    pusher.folder()
    pusher.datasource(connection)
    pusher.dashboards()
    pusher.template()
    pusher.contact_points()
    pusher.rule_groups()
    if with_policy and bundle.policy:
        pusher.policy()
    return pusher.report
