"""A stand-in for Grafana's HTTP API, for the push tests: a Grafana server cannot run on this machine.

It serves the endpoints `llmrel grafana push` uses, keeps what is written in memory, checks each
request against Grafana's documented API (auth header, JSON content type, required body fields,
references between objects), records every call, and answers like Grafana does: 404 for missing
objects, server-side defaults added to stored objects, secure settings read back as `[REDACTED]`.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET_SETTINGS = {"slack": ("url", "token"), "pagerduty": ("integrationKey",), "webhook": ("password",)}
RULE_REQUIRED = ("uid", "orgID", "folderUID", "ruleGroup", "title", "condition", "data", "noDataState",
                 "execErrState", "for")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class GrafanaState:
    folders: dict[str, dict] = field(default_factory=dict)
    datasources: dict[str, dict] = field(default_factory=dict)
    dashboards: dict[str, dict] = field(default_factory=dict)
    rule_groups: dict[tuple[str, str], dict] = field(default_factory=dict)
    contact_points: dict[str, dict] = field(default_factory=dict)
    templates: dict[str, dict] = field(default_factory=dict)
    policy: dict = field(default_factory=lambda: {"receiver": "grafana-default-email",
                                                   "group_by": ["grafana_folder", "alertname"]})


def _require(body: Any, *keys: str) -> None:
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    missing = [k for k in keys if body.get(k) in (None, "")]
    if missing:
        raise ApiError(400, f"missing {missing}")


class FakeGrafana:
    """Run with `with FakeGrafana(token) as grafana:`; `grafana.url`, `grafana.calls`, `grafana.state`."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.state = GrafanaState()
        self.calls: list[Call] = []
        self.errors: list[str] = []
        self._next_id = 1
        self._routes = [
            ("GET", r"/api/folders/([^/]+)", self.get_folder), ("POST", r"/api/folders", self.create_folder),
            ("PUT", r"/api/folders/([^/]+)", self.update_folder),
            ("GET", r"/api/datasources/uid/([^/]+)", self.get_datasource),
            ("POST", r"/api/datasources", self.create_datasource),
            ("PUT", r"/api/datasources/uid/([^/]+)", self.update_datasource),
            ("GET", r"/api/dashboards/uid/([^/]+)", self.get_dashboard),
            ("POST", r"/api/dashboards/db", self.save_dashboard),
            ("GET", r"/api/v1/provisioning/folder/([^/]+)/rule-groups/([^/]+)", self.get_rule_group),
            ("PUT", r"/api/v1/provisioning/folder/([^/]+)/rule-groups/([^/]+)", self.put_rule_group),
            ("GET", r"/api/v1/provisioning/contact-points", self.list_contact_points),
            ("POST", r"/api/v1/provisioning/contact-points", self.create_contact_point),
            ("PUT", r"/api/v1/provisioning/contact-points/([^/]+)", self.update_contact_point),
            ("GET", r"/api/v1/provisioning/templates/([^/]+)", self.get_template),
            ("PUT", r"/api/v1/provisioning/templates/([^/]+)", self.put_template),
            ("GET", r"/api/v1/provisioning/policies", self.get_policy),
            ("PUT", r"/api/v1/provisioning/policies", self.put_policy),
        ]

    # -- server plumbing -------------------------------------------------------------------------
    def __enter__(self) -> FakeGrafana:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload = fake.dispatch(self.command, self.path, dict(self.headers.items()), raw)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method != "GET"]

    def dispatch(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        lower = {k.lower(): v for k, v in headers.items()}
        body = json.loads(raw) if raw else None
        self.calls.append(Call(method, path.split("?")[0], lower, body))
        try:
            if lower.get("authorization") != f"Bearer {self.token}":
                raise ApiError(401, "Unauthorized")
            if method in ("POST", "PUT") and not lower.get("content-type", "").startswith("application/json"):
                raise ApiError(415, "content type must be application/json")
            for route_method, pattern, handler in self._routes:
                match = re.fullmatch(pattern, path.split("?")[0])
                if route_method == method and match:
                    return 200, handler(body, *match.groups())
            raise ApiError(404, f"no route {method} {path}")
        except ApiError as error:
            if not (error.status == 404 and method == "GET"):
                self.errors.append(f"{method} {path}: {error}")
            return error.status, {"message": str(error)}

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- folders (/api/folders) ------------------------------------------------------------------
    def get_folder(self, _: Any, uid: str) -> dict:
        if uid not in self.state.folders:
            raise ApiError(404, "folder not found")
        return self.state.folders[uid]

    def create_folder(self, body: Any) -> dict:
        _require(body, "title")
        uid = body.get("uid") or f"f{self._id()}"
        if uid in self.state.folders:
            raise ApiError(409, "folder exists")
        self.state.folders[uid] = {"id": self._id(), "uid": uid, "title": body["title"], "version": 1}
        return self.state.folders[uid]

    def update_folder(self, body: Any, uid: str) -> dict:
        _require(body, "title")
        folder = self.get_folder(None, uid)
        folder.update(title=body["title"], version=folder["version"] + 1)
        return folder

    # -- datasources -----------------------------------------------------------------------------
    def get_datasource(self, _: Any, uid: str) -> dict:
        if uid not in self.state.datasources:
            raise ApiError(404, "Data source not found")
        return self.state.datasources[uid]

    def _store_datasource(self, body: Any, uid: str, ds_id: int) -> dict:
        _require(body, "name", "type", "access")
        secure = body.get("secureJsonData") or {}
        stored = {k: v for k, v in body.items() if k != "secureJsonData"}
        previous = self.state.datasources.get(uid, {}).get("secureJsonFields", {})
        stored.update(id=ds_id, uid=uid, orgId=1, url=body.get("url", ""), readOnly=False,
                      secureJsonFields={**previous, **{k: True for k, v in secure.items() if v}})
        self.state.datasources[uid] = stored
        return stored

    def create_datasource(self, body: Any) -> dict:
        _require(body, "uid")
        if body["uid"] in self.state.datasources:
            raise ApiError(409, "data source with the same uid already exists")
        stored = self._store_datasource(body, body["uid"], self._id())
        return {"datasource": stored, "id": stored["id"], "message": "Datasource added", "name": stored["name"]}

    def update_datasource(self, body: Any, uid: str) -> dict:
        existing = self.get_datasource(None, uid)
        stored = self._store_datasource(body, uid, existing["id"])
        return {"datasource": stored, "id": stored["id"], "message": "Datasource updated", "name": stored["name"]}

    # -- dashboards ------------------------------------------------------------------------------
    def get_dashboard(self, _: Any, uid: str) -> dict:
        if uid not in self.state.dashboards:
            raise ApiError(404, "Dashboard not found")
        return self.state.dashboards[uid]

    def save_dashboard(self, body: Any) -> dict:
        _require(body, "dashboard")
        board = body["dashboard"]
        _require(board, "uid", "title")
        folder_uid = body.get("folderUid", "")
        if folder_uid and folder_uid not in self.state.folders:
            raise ApiError(400, "folder not found")
        existing = self.state.dashboards.get(board["uid"])
        if existing and not body.get("overwrite"):
            raise ApiError(412, "version-mismatch")
        version = existing["dashboard"]["version"] + 1 if existing else 1
        stored = {**board, "id": existing["dashboard"]["id"] if existing else self._id(), "version": version}
        self.state.dashboards[board["uid"]] = {"dashboard": stored, "meta": {
            "folderUid": folder_uid, "slug": board["title"].lower().replace(" ", "-"), "provisioned": False}}
        return {"id": stored["id"], "uid": board["uid"], "status": "success", "version": version,
                "url": f"/d/{board['uid']}"}

    # -- alert rules (/api/v1/provisioning/folder/{folderUid}/rule-groups/{group}) ---------------
    def get_rule_group(self, _: Any, folder_uid: str, group: str) -> dict:
        if (folder_uid, group) not in self.state.rule_groups:
            raise ApiError(404, "rule group not found")
        return self.state.rule_groups[(folder_uid, group)]

    def put_rule_group(self, body: Any, folder_uid: str, group: str) -> dict:
        _require(body, "title", "interval", "rules")
        if folder_uid not in self.state.folders:
            raise ApiError(400, "folder does not exist")
        if not isinstance(body["interval"], int) or body["interval"] <= 0:
            raise ApiError(400, "interval must be a positive number of seconds")
        rules = []
        for rule in body["rules"]:
            _require(rule, *RULE_REQUIRED)
            if rule["folderUID"] != folder_uid or rule["ruleGroup"] != group:
                raise ApiError(400, "rule folder/group differ from the path")
            if rule["condition"] not in {q["refId"] for q in rule["data"]}:
                raise ApiError(400, "condition is not a query refId")
            data = [{**q, "model": {"intervalMs": 1000, "maxDataPoints": 43200, **q["model"]}} for q in rule["data"]]
            rules.append({**rule, "data": data, "id": self._id(), "updated": "2026-11-26T09:00:00Z",
                          "provenance": "api", "keep_firing_for": "0s"})
        stored = {"title": group, "folderUid": folder_uid, "interval": body["interval"], "rules": rules}
        self.state.rule_groups[(folder_uid, group)] = stored
        return stored

    # -- contact points, templates, policies -----------------------------------------------------
    def _redacted(self, point: dict) -> dict:
        secret_keys = SECRET_SETTINGS.get(point["type"], ())
        settings = {k: ("[REDACTED]" if k in secret_keys else v) for k, v in point["settings"].items()}
        return {**point, "settings": settings}

    def list_contact_points(self, _: Any) -> list[dict]:
        return [self._redacted(p) for p in self.state.contact_points.values()]

    def _check_contact_point(self, body: Any) -> None:
        _require(body, "name", "type", "settings")
        secrets = SECRET_SETTINGS.get(body["type"], ())
        if body["type"] in ("slack", "webhook") and not body["settings"].get("url"):
            raise ApiError(400, "url is required")
        if body["type"] == "pagerduty" and not body["settings"].get("integrationKey"):
            raise ApiError(400, "integrationKey is required")
        if any(str(body["settings"].get(k, "")).startswith("$") for k in (*secrets, "url")):
            raise ApiError(400, "an unexpanded placeholder was sent as a secret")

    def create_contact_point(self, body: Any) -> dict:
        self._check_contact_point(body)
        uid = body.get("uid") or f"cp{self._id()}"
        if uid in self.state.contact_points:
            raise ApiError(400, "contact point exists")
        self.state.contact_points[uid] = {**body, "uid": uid, "provenance": "api"}
        return self._redacted(self.state.contact_points[uid])

    def update_contact_point(self, body: Any, uid: str) -> dict:
        self._check_contact_point(body)
        if uid not in self.state.contact_points:
            raise ApiError(404, "contact point not found")
        self.state.contact_points[uid] = {**body, "uid": uid, "provenance": "api"}
        return {"message": "contactpoint updated"}

    def get_template(self, _: Any, name: str) -> dict:
        if name not in self.state.templates:
            raise ApiError(404, "template not found")
        return self.state.templates[name]

    def put_template(self, body: Any, name: str) -> dict:
        _require(body, "template")
        self.state.templates[name] = {"name": name, "template": body["template"], "provenance": "api"}
        return self.state.templates[name]

    def get_policy(self, _: Any) -> dict:
        return self.state.policy

    def put_policy(self, body: Any) -> dict:
        _require(body, "receiver")
        receivers = {p["name"] for p in self.state.contact_points.values()} | {"grafana-default-email"}

        def check(route: dict) -> None:
            if route.get("receiver") and route["receiver"] not in receivers:
                raise ApiError(400, f"unknown receiver {route['receiver']}")
            for matcher in route.get("object_matchers", []):
                if not (isinstance(matcher, list) and len(matcher) == 3):
                    raise ApiError(400, "object_matchers must be [name, op, value] triples")
            for child in route.get("routes", []):
                check(child)

        check(body)
        self.state.policy = {**body, "provenance": "api"}
        return {"message": "policies updated"}
