"""A local OpenAI-compatible LLM provider with configurable latency, tokens, errors and degradation.

Endpoints: `POST /v1/chat/completions` (whole or SSE stream, tools, JSON mode), `POST /v1/completions`,
`POST /v1/embeddings`, `GET /v1/models`; admin: `POST /admin/degrade` (JSON body: `Degradation` fields to
override, e.g. `{"models": ["gpt-4o"]}`), `POST /admin/recover`, `GET /admin/state`, `GET /admin/requests`
(the request log: time, endpoint, model, outcome), `GET /health`.

Usage in tests:

    with Simulator(SimulatorConfig(seed=1, latency_median_s=0.0)).run() as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key="test", max_retries=0)
        sim.degrade()

Per-request controls are headers (see `llmrel.demo.plan`): `x-llmrel-sim: rate_limit`, `server_error`,
`tool_call`, `text`, `length`, `invalid_json`, `stream_error`, `degraded` (comma-separated),
`x-llmrel-sim-output-tokens: N`, `x-llmrel-sim-latency-ms: MS`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from llmrel.demo import responses
from llmrel.demo.config import Degradation, SimulatorConfig
from llmrel.demo.plan import Controls, Plan, decide, draw_output_tokens
from llmrel.demo.state import SimulatorState

_STREAM_KEYS = frozenset({"stream", "stream_options"})
_EMBEDDING_LATENCY_SHARE = 0.2  # embeddings answer several times faster than chat
_MIN_SLEEP_S = 0.001  # below this, catching up later is cheaper than sleeping now
_STARTUP_TIMEOUT_S = 10.0
_SHUTDOWN_TIMEOUT_S = 5.0


class _BadRequest(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.param = status, code, param


def request_digest(body: Mapping[str, Any]) -> str:
    """Stable digest of a request body, ignoring whether it asked for a stream."""
    canonical = {k: v for k, v in body.items() if k not in _STREAM_KEYS}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, default=str).encode()).hexdigest()


def _fingerprint(model: str) -> str:
    return "fp_" + hashlib.sha256(model.encode()).hexdigest()[:10]


def _sse(payload: Mapping[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


class _Handler:
    """Request handling shared by the endpoints: parse, plan, wait, answer."""

    def __init__(self, config: SimulatorConfig, state: SimulatorState) -> None:
        self.config, self.state = config, state

    async def parse(self, request: Request, required: tuple[str, ...]) -> tuple[dict[str, Any], Controls]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise _BadRequest(400, "We could not parse the JSON body of your request.") from exc
        if not isinstance(body, dict):
            raise _BadRequest(400, "The request body must be a JSON object.")
        for name in required:
            if name not in body:
                raise _BadRequest(400, f"Missing required parameter: '{name}'.", "missing_required_parameter",
                                  name)
        model = str(body["model"])
        if model not in self.config.models:
            raise _BadRequest(404, f"The model `{model}` does not exist or you do not have access to it.",
                              "model_not_found", "model")
        try:
            controls = Controls.from_headers(request.headers)
        except ValueError as exc:
            raise _BadRequest(400, str(exc)) from exc
        return body, controls

    def plan(self, body: Mapping[str, Any], controls: Controls, endpoint: str) -> tuple[Plan, random.Random, str]:
        digest = request_digest(body)
        seed = self.config.seed
        content_rng = random.Random(f"{seed}:{digest}")
        fate_rng = random.Random(f"{seed}:{digest}:{self.state.next_occurrence(digest)}")
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        degradation = self.state.active_degradation()
        model = str(body["model"])
        if degradation is not None and not degradation.applies_to(model):
            degradation = None
        plan = decide(self.config, degradation, controls, fate_rng,
                      draw_output_tokens(self.config, content_rng), int(max_tokens) if max_tokens else None)
        self.state.log_request(endpoint, model, plan.error or "ok", degradation is not None)
        return plan, content_rng, digest

    def response_model(self, body: Mapping[str, Any], plan: Plan) -> str:
        return plan.response_model or self.config.response_model(str(body["model"]))

    async def error(self, plan: Plan, model: str) -> Response | None:
        """The error answer when the plan says so (after the time to first byte), else None."""
        if plan.error is None:
            return None
        await asyncio.sleep(plan.ttft_s)
        self.state.count(plan.error)
        if plan.error == "rate_limit":
            seconds = format(self.config.retry_after_s, "g")
            body = responses.error_body(
                f"Rate limit reached for {model} on requests per min (RPM). Please try again in {seconds}s.",
                "requests", "rate_limit_exceeded")
            return JSONResponse(body, status_code=429, headers={"retry-after": seconds})
        body = responses.error_body("The server had an error while processing your request. Sorry about that!",
                                    "server_error", None)
        return JSONResponse(body, status_code=500)

    async def stream(self, chunks: list[dict[str, Any]], plan: Plan) -> AsyncIterator[bytes]:
        """SSE bytes: first chunk after the time to first token, the rest spread over the remaining latency."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        gap = max(plan.latency_s - plan.ttft_s, 0.0) / max(len(chunks) - 1, 1)
        cut = max(1, len(chunks) // 2) if plan.stream_error else len(chunks)
        for index, chunk in enumerate(chunks[:cut]):
            delay = start + plan.ttft_s + index * gap - loop.time()
            if delay > _MIN_SLEEP_S:
                await asyncio.sleep(delay)
            yield _sse(chunk)
        if plan.stream_error:
            self.state.count("stream_error")
            yield _sse(responses.error_body("The server had an error while streaming the response.",
                                            "server_error", None))
            return
        self.state.count("ok")
        yield _sse("[DONE]")


def _headers(digest: str, plan: Plan) -> dict[str, str]:
    return {"x-request-id": f"req_{digest[:24]}", "openai-processing-ms": str(round(plan.latency_s * 1000))}


def create_app(config: SimulatorConfig, state: SimulatorState) -> FastAPI:
    """The simulator's ASGI app over the given config and state."""
    app = FastAPI(title="llmrel LLM simulator", docs_url=None, redoc_url=None, openapi_url=None)
    handler = _Handler(config, state)

    @app.exception_handler(_BadRequest)
    async def _bad_request(_: Request, exc: _BadRequest) -> JSONResponse:
        state.count("invalid")
        return JSONResponse(responses.error_body(str(exc), "invalid_request_error", exc.code, exc.param),
                            status_code=exc.status)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        body, controls = await handler.parse(request, ("model", "messages"))
        plan, content_rng, digest = handler.plan(body, controls, "chat")
        model = handler.response_model(body, plan)
        error = await handler.error(plan, str(body["model"]))
        if error is not None:
            return error
        reply = responses.compose_chat(body, config, plan, controls, content_rng, f"call_{digest[:24]}")
        meta = {"response_id": f"chatcmpl-{digest[:29]}", "created": int(time.time()), "model": model,
                "fingerprint": _fingerprint(model)}
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = responses.chat_chunks(reply, include_usage=include_usage, **meta)
            return StreamingResponse(handler.stream(chunks, plan), media_type="text/event-stream",
                                     headers=_headers(digest, plan))
        await asyncio.sleep(plan.latency_s)
        state.count("ok")
        return JSONResponse(responses.chat_completion(reply, **meta), headers=_headers(digest, plan))

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        body, controls = await handler.parse(request, ("model", "prompt"))
        plan, content_rng, digest = handler.plan(body, controls, "completions")
        model = handler.response_model(body, plan)
        error = await handler.error(plan, str(body["model"]))
        if error is not None:
            return error
        completion = responses.text_completion(body, plan, content_rng, response_id=f"cmpl-{digest[:29]}",
                                               created=int(time.time()), model=model,
                                               fingerprint=_fingerprint(model))
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = responses.text_completion_chunks(completion, include_usage)
            return StreamingResponse(handler.stream(chunks, plan), media_type="text/event-stream",
                                     headers=_headers(digest, plan))
        await asyncio.sleep(plan.latency_s)
        state.count("ok")
        return JSONResponse(completion, headers=_headers(digest, plan))

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        body, controls = await handler.parse(request, ("model", "input"))
        plan, _, digest = handler.plan(body, controls, "embeddings")
        error = await handler.error(plan, str(body["model"]))
        if error is not None:
            return error
        await asyncio.sleep(plan.latency_s * _EMBEDDING_LATENCY_SHARE)
        state.count("ok")
        return JSONResponse(responses.embeddings(body, config.seed, config.embedding_dimensions),
                            headers=_headers(digest, plan))

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [_model_entry(m) for m in config.models]}

    @app.get("/v1/models/{model}")
    async def model(model: str) -> Response:
        if model not in config.models:
            return JSONResponse(responses.error_body(f"The model '{model}' does not exist", "invalid_request_error",
                                                     "model_not_found", "model"), status_code=404)
        return JSONResponse(_model_entry(model))

    @app.post("/admin/degrade")
    async def admin_degrade(request: Request) -> Response:
        raw = await request.body()
        try:
            values = json.loads(raw) if raw.strip() else {}
            if not isinstance(values, dict):
                raise ValueError("body must be a JSON object of degradation fields")
            state.degrade(Degradation.from_dict(values, base=config.degradation))
        except (ValueError, TypeError) as exc:
            return JSONResponse(responses.error_body(str(exc), "invalid_request_error", None), status_code=400)
        return JSONResponse(state.snapshot())

    @app.post("/admin/recover")
    async def admin_recover() -> dict[str, Any]:
        state.recover()
        return state.snapshot()

    @app.get("/admin/state")
    async def admin_state() -> dict[str, Any]:
        return state.snapshot()

    @app.get("/admin/requests")
    async def admin_requests() -> list[dict[str, Any]]:
        return state.requests()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _model_entry(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "llmrel-simulator"}


class SimulatorServer:
    """Handle on a running simulator: its URLs and the degradation switch."""

    def __init__(self, state: SimulatorState, host: str, port: int) -> None:
        self._state = state
        self.host, self.port = host, port
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.url = f"http://{netloc}"
        """Root URL (admin endpoints live here)."""
        self.base_url = f"{self.url}/v1"
        """What to pass as the openai client's `base_url`."""

    def degrade(self, degradation: Degradation | None = None, **overrides: Any) -> Degradation:
        """Switch degradation on: the given one, or the configured one with `overrides` applied."""
        chosen = degradation or Degradation.from_dict(overrides, base=self._state.config.degradation)
        return self._state.degrade(chosen)

    def recover(self) -> None:
        """Switch degradation off."""
        self._state.recover()

    def state(self) -> dict[str, Any]:
        """The same view as `GET /admin/state`."""
        return self._state.snapshot()

    def requests(self) -> list[dict[str, Any]]:
        """The request log, as `GET /admin/requests` returns it."""
        return self._state.requests()


class Simulator:
    """The simulator app and its state, served in a background thread (`run`) or in the foreground (`serve`).

    Raises:
        ValueError: When the config is invalid (every problem listed).
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        problems = self.config.validate()
        if problems:
            raise ValueError("invalid simulator config: " + "; ".join(problems))
        self.state = SimulatorState(self.config)
        self.app = create_app(self.config, self.state)

    def _server(self, host: str, port: int) -> uvicorn.Server:
        # uvicorn binds the socket itself: a pre-bound socket handed to it serves accepted connections
        # without TCP_NODELAY, which costs about 40 ms per keep-alive request (Nagle + delayed ACK).
        return uvicorn.Server(uvicorn.Config(self.app, host=host, port=port, log_level="warning",
                                             access_log=False, lifespan="off", timeout_graceful_shutdown=1,
                                             timeout_keep_alive=30))

    @contextmanager
    def run(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[SimulatorServer]:
        """Serve in a daemon thread until the block exits; returns once the server accepts connections."""
        server = self._server(host, port)
        thread = threading.Thread(target=server.run, daemon=True, name="llmrel-simulator")
        thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(_SHUTDOWN_TIMEOUT_S)
                raise RuntimeError(f"LLM simulator did not start on {host}:{port}")
            time.sleep(0.005)
        bound_port = server.servers[0].sockets[0].getsockname()[1]
        self.state.mark_started()
        try:
            yield SimulatorServer(self.state, host, bound_port)
        finally:
            server.should_exit = True
            thread.join(_SHUTDOWN_TIMEOUT_S)

    def serve(self, host: str = "127.0.0.1", port: int = 8000) -> None:
        """Serve in the foreground until interrupted (SIGINT/SIGTERM)."""
        self.state.mark_started()
        self._server(host, port).run()
