"""HTTP routes of the action layer, mounted on the receiver's API port; every route needs the bearer
token when one is configured.

* `GET /api/v1/breakers[?service=&wait=&history=]`: every scope's state. `ETag` on the response;
  with `If-None-Match` and `wait` (seconds, at most 60) the request waits for a change (long-poll)
  and answers `304` when none came.
* `GET /api/v1/breakers/{scope}`: one scope with its recent transitions.
* `PUT /api/v1/breakers/{scope}`: `{"state": "open"|"closed"|"auto", "dry_run": bool, "reason": ..., "actor": ...}`;
  a manual override (audited), `auto` releases it. Answers once the breaker shows it (200), or 202.
* `POST /api/v1/alerts/grafana`: Grafana's webhook contact point (see `alerts`).
* `GET|POST /api/v1/gate?service=&canary_version=&baseline_version=&window=`: canary verdict. GET
  (Argo Rollouts `web` provider) always answers 200 with `verdict`; POST (a Flagger webhook, whose
  `metadata` may carry the same parameters) answers 412 unless the verdict is `pass`. `strict`
  overrides either way.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmrel.actions import store
from llmrel.actions.alerts import (
    MAX_BODY_BYTES,
    SignatureError,
    notification_signals,
    parse_notification,
    verify_signature,
)
from llmrel.actions.board import Board
from llmrel.actions.breakers import iso
from llmrel.actions.gate import GateConfig, judge
from llmrel.actions.signals import Signal, dry_run_signal, override_signal
from llmrel.breaker_scope import canonical_scope
from llmrel.config import Settings
from llmrel.durations import parse_duration

_APPLY_WAIT_S = 5.0
_MAX_WAIT_S = 60.0


class BreakerChange(BaseModel):
    """Body of `PUT /api/v1/breakers/{scope}`."""

    model_config = ConfigDict(extra="forbid")
    state: Literal["open", "closed", "auto"] | None = None
    dry_run: bool | None = None
    reason: str = Field(min_length=1, max_length=500)
    actor: str = Field(default="api", min_length=1, max_length=100)


class ActionsApi:
    """What the routes need: the board, a wake-up for the controller, a database client, settings."""

    def __init__(self, settings: Settings, board: Board | None, client: Client, notify: Callable[[], None],
                 controller_info: Callable[[], dict[str, Any]]) -> None:
        self.settings = settings
        self.board = board
        self.client = client
        self.notify = notify
        self.controller_info = controller_info
        self._lock = threading.Lock()  # one clickhouse-connect client: one query at a time

    async def db(self, fn: Callable[[], Any]) -> Any:
        def locked() -> Any:
            with self._lock:
                return fn()
        try:
            return await run_in_threadpool(locked)
        except (ClickHouseError, OSError) as exc:
            raise HTTPException(503, f"store unavailable: {type(exc).__name__}: {exc}") from None

    def require_board(self) -> Board:
        if self.board is None:
            raise HTTPException(404, "breakers are disabled (LLMREL_BREAKERS_ENABLED=false)")
        if not self.board.ready:
            raise HTTPException(503, "breaker state is not loaded yet", headers={"Retry-After": "1"})
        return self.board


def build_actions_router(api: ActionsApi, auth: Callable[[Request], bool]) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    def check(request: Request) -> None:
        if not auth(request):
            raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})

    @router.get("/breakers")
    async def list_breakers(request: Request, service: str | None = None,
                            wait: float = Query(0.0, ge=0, le=_MAX_WAIT_S),
                            history: int = Query(0, ge=0, le=50)) -> Response:
        check(request)
        board = api.require_board()
        version, etag, views = board.select(service)
        known = request.headers.get("if-none-match")
        if known == etag and wait > 0:
            deadline = time.monotonic() + wait
            while known == etag and (remaining := deadline - time.monotonic()) > 0:
                await board.wait_for_change(version, remaining)
                version, etag, views = board.select(service)
        if known == etag:
            return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "no-cache"})
        body: dict[str, Any] = {"breakers": views, "controller": api.controller_info()}
        if history:
            steps = await api.db(lambda: store.history(api.client, None, history))
            by_scope: dict[str, list[dict[str, Any]]] = {}
            for t in steps:
                by_scope.setdefault(t.scope, []).append(_step_json(t))
            for view in views:
                view["history"] = by_scope.get(view["scope"], [])
        return JSONResponse(body, headers={"ETag": etag, "Cache-Control": "no-cache"})

    @router.get("/breakers/{scope:path}")
    async def get_breaker(request: Request, scope: str, history: int = Query(20, ge=0, le=500)) -> dict[str, Any]:
        check(request)
        board = api.require_board()
        scope = _scope_or_400(scope)
        _, _, views = board.select(scope=scope)
        if not views:
            raise HTTPException(404, f"no breaker has recorded anything for scope {scope!r}")
        steps = await api.db(lambda: store.history(api.client, scope, history)) if history else []
        return {**views[0], "history": [_step_json(t) for t in steps]}

    @router.put("/breakers/{scope:path}")
    async def change_breaker(request: Request, scope: str) -> JSONResponse:
        check(request)
        board = api.require_board()
        scope = _scope_or_400(scope)
        try:
            change = BreakerChange.model_validate_json(await request.body())
        except ValidationError as exc:
            raise HTTPException(422, exc.errors(include_url=False, include_context=False)) from None
        if change.state is None and change.dry_run is None:
            raise HTTPException(422, "give state (open, closed, auto) or dry_run")
        now = time.time_ns()
        signals: list[Signal] = []
        if change.dry_run is not None:
            signals.append(dry_run_signal(scope, change.dry_run, change.reason, change.actor, now))
        if change.state is not None:
            signals.append(override_signal(scope, change.state, change.reason, change.actor, now))
        _, _, before = board.select(scope=scope)
        seq_before = before[0]["seq"] if before else 0
        await api.db(lambda: store.write_signals(api.client, signals))
        api.notify()
        view = await _applied(board, scope, seq_before, change)
        if view is None:
            return JSONResponse({"status": "accepted", "scope": scope, "signals": [s.signal_id for s in signals]},
                                status_code=202)
        return JSONResponse(view)

    @router.post("/alerts/grafana")
    async def grafana_alerts(request: Request) -> JSONResponse:
        check(request)
        body = await _read_limited(request, MAX_BODY_BYTES)
        s = api.settings
        if s.grafana_webhook_secret is not None:
            try:
                verify_signature(body, request.headers, s.grafana_webhook_secret.get_secret_value(),
                                 s.grafana_webhook_signature_header, s.grafana_webhook_timestamp_header,
                                 s.grafana_webhook_max_skew_s)
            except SignatureError as exc:
                raise HTTPException(401, f"invalid Grafana signature: {exc}") from None
        try:
            parsed = parse_notification(body)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        signals = notification_signals(parsed, time.time_ns())
        await api.db(lambda: store.write_signals(api.client, signals))
        if signals:
            api.notify()
        return JSONResponse({"accepted": len(signals), "scopes": sorted({s.scope for s in signals}),
                             "ignored": parsed.ignored})

    @router.api_route("/gate", methods=["GET", "POST"])
    async def canary_gate(request: Request, service: str | None = None, canary_version: str | None = None,
                          baseline_version: str | None = None, window: str | None = None,
                          min_calls: int | None = Query(None, ge=1), strict: bool | None = None) -> JSONResponse:
        check(request)
        if request.method == "POST":
            meta = await _flagger_metadata(request)
            service = service or meta.get("service") or meta.get("name")
            canary_version = canary_version or meta.get("canary_version")
            baseline_version = baseline_version or meta.get("baseline_version")
            window = window or meta.get("window")
            if min_calls is None and str(meta.get("min_calls", "")).isdigit():
                min_calls = int(meta["min_calls"])
        if not service:
            raise HTTPException(400, "service is required")
        try:
            window_s = parse_duration(window or "30m")
        except ValueError as exc:
            raise HTTPException(400, f"window: {exc}") from None
        config = GateConfig(min_calls=min_calls or api.settings.gate_min_calls, alpha=api.settings.gate_alpha)
        from llmrel.actions import gate_data  # polars: loaded when a gate is first asked, not by every receiver

        since = gate_data.window_start_ns(window_s)

        def evaluate() -> dict[str, Any]:
            canary, baseline = canary_version, baseline_version
            if not canary or not baseline:
                guessed_canary, guessed_baseline = gate_data.guess_versions(api.client, service, since)
                canary, baseline = canary or guessed_canary, baseline or guessed_baseline
            if not canary or not baseline or canary == baseline:
                return {"verdict": "inconclusive", "reason": "need two versions of the service with calls in the "
                        "window (set canary_version and baseline_version)", "canary_version": canary,
                        "baseline_version": baseline, "metrics": {}}
            return judge(*gate_data.load_samples(api.client, service, canary, baseline, since), config).to_json()

        result = await api.db(evaluate)
        result.update(service=service, window_s=window_s, checked_at=iso(time.time_ns()))
        enforce_status = strict if strict is not None else request.method == "POST"
        status = 412 if enforce_status and result["verdict"] != "pass" else 200
        return JSONResponse(result, status_code=status)

    return router


def _scope_or_400(scope: str) -> str:
    try:
        return canonical_scope(scope)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


def _step_json(t: Any) -> dict[str, Any]:
    return {"seq": t.seq, "at": iso(t.at_ns), "from": t.from_state.value, "to": t.to_state.value, "cause": t.cause,
            "reason": t.reason, "finding_ids": list(t.finding_ids), "alert_fingerprint": t.alert_fingerprint or None,
            "actor": t.actor, "dry_run": t.dry_run, "override": t.override or None}


async def _applied(board: Board, scope: str, seq_before: int, change: BreakerChange) -> dict[str, Any] | None:
    """The scope's view once the change shows, else None after a few seconds."""
    deadline = time.monotonic() + _APPLY_WAIT_S
    while True:
        version, _, views = board.select(scope=scope)
        if views and views[0]["seq"] > seq_before and _shows(views[0], change):
            return views[0]
        if views and change.state == "auto" and views[0]["override"] is None and change.dry_run is None:
            return views[0]  # nothing was pinned: nothing to release
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        await board.wait_for_change(version, remaining)


def _shows(view: dict[str, Any], change: BreakerChange) -> bool:
    if change.dry_run is not None and view["dry_run"] != change.dry_run:
        return False
    if change.state in ("open", "closed"):
        return view["override"] == change.state
    if change.state == "auto":
        return view["override"] is None
    return True


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body exceeds {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _flagger_metadata(request: Request) -> dict[str, Any]:
    """Flagger's webhook body: `{name, namespace, phase, checksum, metadata: {...}}`; parameters from metadata."""
    body = await _read_limited(request, 64 * 1024)
    if not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except ValueError:
        raise HTTPException(400, "body must be JSON (Flagger's webhook payload)") from None
    if not isinstance(doc, dict):
        raise HTTPException(400, "body must be a JSON object")
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    return {"name": doc.get("name"), **{k: v for k, v in meta.items() if isinstance(v, str | int)}}
