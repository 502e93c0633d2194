"""Read-only REST API on the HTTP port, for the CLI while `llmrel serve` owns an embedded store.

`otel_traces` is a plain MergeTree (the Collector exporter's schema): a span delivered twice (an
export retried after a commit its sender did not hear of) is stored twice, so reads of a trace
keep one row per span.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from clickhouse_connect.driver.client import Client
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder

# `llmrel.report` (and polars, ~100 MiB) is imported by the routes that use it, when first asked:
# a receiver nobody queries stays small.


def build_api_router(client: Client, auth: Callable[[Request], bool]) -> APIRouter:
    """`/api/v1/*` routes; every route requires the bearer token when one is configured."""
    router = APIRouter(prefix="/api/v1")
    lock = threading.Lock()  # one clickhouse-connect client: serialize its queries

    def guarded(fn: Callable[[], Any]) -> Any:
        with lock:
            return fn()

    def check(request: Request) -> None:
        if not auth(request):
            raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})

    @router.get("/report")
    async def report(request: Request, since: str = Query("1h"), until: str | None = Query(None)) -> dict[str, Any]:
        check(request)
        from llmrel.report import build_report, parse_since

        try:
            since_ns = parse_since(since)
            until_ns = parse_since(until) if until else None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return await run_in_threadpool(guarded, lambda: build_report(client, since_ns, until_ns))

    @router.get("/findings")
    async def findings(request: Request, since: str = Query("1h"), limit: int = Query(100, ge=1, le=10_000),
                       kind: str | None = None, rule: str | None = None, service: str | None = None,
                       severity: str | None = None, model: str | None = None,
                       tenant: str | None = None,
                       by: str = Query("detected", pattern="^(detected|event)$",
                                       description="Filter `since` on detection time or on event (onset) time"),
                       ) -> list[dict[str, Any]]:
        check(request)
        try:
            from llmrel.findings_summary import recent_findings
        except ImportError:
            raise HTTPException(404, "analyzers are not installed") from None
        from llmrel.report import parse_since

        try:
            since_ns = parse_since(since)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        filters = {"kind": kind, "rule": rule, "service": service, "severity": severity, "model": model,
                   "tenant": tenant}
        rows = await run_in_threadpool(guarded, lambda: recent_findings(client, since_ns, limit=limit, by=by,
                                                                                **filters))
        return jsonable_encoder(rows)

    @router.get("/traces/{trace_id}")
    async def trace(request: Request, trace_id: str) -> dict[str, Any]:
        check(request)
        if len(trace_id) != 32 or any(c not in "0123456789abcdef" for c in trace_id):
            raise HTTPException(400, "trace_id must be 32 lowercase hex characters")
        rows = await run_in_threadpool(guarded, lambda: client.query(
            "SELECT SpanId, ParentSpanId, SpanName, ServiceName, toUnixTimestamp64Nano(Timestamp), Duration, "
            "StatusCode FROM otel_traces WHERE TraceId = {t:String} ORDER BY Timestamp LIMIT 1 BY SpanId",
            parameters={"t": trace_id}).result_rows)
        keys = ("span_id", "parent_span_id", "name", "service", "start_ns", "duration_ns", "status")
        return {"trace_id": trace_id, "spans": [dict(zip(keys, row, strict=True)) for row in rows]}

    return router
