"""HTTP routes of the intelligence layer, on the receiver's API port; every route needs the bearer token
when one is configured.

* `GET /api/v1/findings/{id}/explanation[?refresh=true]`: the stored explanation of a finding, computed
  (and stored) on demand when there is none yet or `refresh` is set. 404 for an unknown finding.
* `GET /api/v1/recommendations?since=7d[&until=][&margin=][&confidence=][&min_calls=]`: cheaper-model advice.
* `GET /api/v1/intel/status`: what the explainer and the output-content detector are doing (content off?).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder

_FINDING_ID = re.compile(r"^[0-9a-f]{32}$")


def build_intel_router(client: Client, auth: Callable[[Request], bool],
                       status: Callable[[], dict[str, Any]] | None = None,
                       narrator: Callable[[dict[str, Any]], str | None] | None = None) -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    lock = threading.Lock()  # one clickhouse-connect client: one query at a time

    def check(request: Request) -> None:
        if not auth(request):
            raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})

    async def db(fn: Callable[[], Any]) -> Any:
        def locked() -> Any:
            with lock:
                return fn()
        try:
            return await run_in_threadpool(locked)
        except (ClickHouseError, OSError) as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None

    @router.get("/findings/{finding_id}/explanation")
    async def explanation(request: Request, finding_id: str, refresh: bool = False) -> dict[str, Any]:
        check(request)
        if not _FINDING_ID.match(finding_id):
            raise HTTPException(400, "finding id must be 32 lowercase hex characters")
        from llmrel.intel.explain import FindingNotFoundError, explain_and_store, stored_explanation  # polars, scipy

        def load() -> dict[str, Any]:
            if not refresh and (stored := stored_explanation(client, finding_id)) is not None:
                return stored
            explain_and_store(client, finding_id, narrator)
            stored = stored_explanation(client, finding_id)
            assert stored is not None
            return stored
        try:
            return jsonable_encoder(await db(load))
        except FindingNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None

    @router.get("/recommendations")
    async def recommendations(request: Request, since: str = Query("7d"), until: str | None = Query(None),
                              margin: float = Query(0.02, gt=0, lt=1), confidence: float = Query(0.95, gt=0.5, lt=1),
                              min_calls: int = Query(200, ge=10, le=1_000_000)) -> dict[str, Any]:
        check(request)
        from llmrel.intel.recommend import RecommendConfig, recommend  # polars, scipy: loaded when first asked
        from llmrel.report import parse_since

        try:
            since_ns = parse_since(since)
            until_ns = parse_since(until) if until else time.time_ns()
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        if until_ns <= since_ns:
            raise HTTPException(400, "until must be after since")
        config = RecommendConfig(margin=margin, confidence=confidence, min_calls=min_calls)
        groups = await db(lambda: recommend(client, since_ns, until_ns, config))
        return jsonable_encoder({"since_ns": since_ns, "until_ns": until_ns, "groups": [g.as_dict() for g in groups]})

    @router.get("/intel/status")
    async def intel_status(request: Request) -> dict[str, Any]:
        check(request)
        return jsonable_encoder(status() if status is not None else {"running": False})

    return router
