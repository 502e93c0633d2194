"""OpenAI wire bodies built from a request, its plan and its content stream (pure)."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmrel.demo import tokens
from llmrel.demo.config import SimulatorConfig
from llmrel.demo.plan import Controls, Plan

_JSON_PIECE_CHARS = 4


@dataclass(frozen=True)
class ChatReply:
    """The decided answer of one chat request, ready to render whole or as a stream."""

    content: str | None
    pieces: tuple[str, ...]
    tool_call: dict[str, Any] | None
    finish_reason: str
    usage: dict[str, Any]


def _chat_usage(prompt: int, cached: int, completion: int, reasoning: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def _wants_tool_call(body: Mapping[str, Any], controls: Controls, u_tool: float, tool_call_rate: float) -> bool:
    tools, choice = body.get("tools"), body.get("tool_choice", "auto")
    if not tools or choice == "none" or "text" in controls.flags:
        return False
    if "tool_call" in controls.flags or choice == "required" or isinstance(choice, Mapping):
        return True
    messages = body.get("messages") or []
    # After a tool result the model answers the user, which ends an agent loop.
    answered_tool = bool(messages) and messages[-1].get("role") == "tool"
    return not answered_tool and u_tool < tool_call_rate


def _tool_call(body: Mapping[str, Any], rng: random.Random, call_id: str) -> dict[str, Any]:
    tools = [t for t in body["tools"] if t.get("type", "function") == "function"]
    choice = body.get("tool_choice")
    named = choice.get("function", {}).get("name") if isinstance(choice, Mapping) else None
    tool = next((t for t in tools if t["function"]["name"] == named), None) or rng.choice(tools)
    arguments = tokens.instance_for_schema(tool["function"].get("parameters"), rng)
    return {"id": call_id, "type": "function",
            "function": {"name": tool["function"]["name"], "arguments": json.dumps(arguments)}}


def _json_text(response_format: Mapping[str, Any], rng: random.Random) -> str | None:
    kind = response_format.get("type")
    if kind == "json_object":
        return json.dumps(tokens.json_object_answer(rng))
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return json.dumps(tokens.instance_for_schema(schema, rng))
    return None


def _split(text: str) -> tuple[str, ...]:
    return tuple(text[i:i + _JSON_PIECE_CHARS] for i in range(0, len(text), _JSON_PIECE_CHARS)) or ("",)


def compose_chat(body: Mapping[str, Any], config: SimulatorConfig, plan: Plan, controls: Controls,
                 content_rng: random.Random, call_id: str) -> ChatReply:
    """Decide the answer of a chat request (content, tool call, finish reason, usage)."""
    messages = body.get("messages") or []
    prompt = tokens.chat_prompt_tokens(messages, body.get("tools"))
    cached = tokens.cached_prompt_tokens(prompt, messages)
    completion = plan.output_tokens
    reasoning = 0
    if config.is_reasoning_model(str(body.get("model"))):
        reasoning = min(round(completion * config.reasoning_share), completion - 1)
    usage = _chat_usage(prompt, cached, completion, reasoning)
    u_tool = content_rng.random()

    if _wants_tool_call(body, controls, u_tool, config.tool_call_rate):
        call = _tool_call(body, content_rng, call_id)
        if plan.truncated:
            call["function"]["arguments"] = tokens.truncate_json(call["function"]["arguments"])
        return ChatReply(None, _split(call["function"]["arguments"]), call,
                         "length" if plan.truncated else "tool_calls", usage)

    json_text = _json_text(body.get("response_format") or {}, content_rng)
    if json_text is not None:
        if plan.invalid_json or plan.truncated:
            json_text = tokens.truncate_json(json_text)
        return ChatReply(json_text, _split(json_text), None, "length" if plan.truncated else "stop", usage)

    answer = tokens.words(content_rng, completion - reasoning)
    pieces = tuple(w if i == 0 else " " + w for i, w in enumerate(answer))
    return ChatReply("".join(pieces), pieces, None, "length" if plan.truncated else "stop", usage)


def chat_completion(reply: ChatReply, *, response_id: str, created: int, model: str,
                    fingerprint: str) -> dict[str, Any]:
    """The `chat.completion` body."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None, "annotations": []}
    if reply.tool_call is not None:
        message["tool_calls"] = [reply.tool_call]
    return {
        "id": response_id, "object": "chat.completion", "created": created, "model": model,
        "system_fingerprint": fingerprint, "service_tier": "default",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}],
        "usage": reply.usage,
    }


def chat_chunks(reply: ChatReply, *, response_id: str, created: int, model: str, fingerprint: str,
                include_usage: bool) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` bodies of a stream, in order: role, pieces, finish, then usage if asked."""
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        body = {"id": response_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": fingerprint, "service_tier": "default",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        if include_usage:
            body["usage"] = None
        return body

    if reply.tool_call is not None:
        call = reply.tool_call
        head = {"index": 0, "id": call["id"], "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""}}
        chunks = [chunk({"role": "assistant", "content": None, "tool_calls": [head]})]
        chunks += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                   for piece in reply.pieces]
    else:
        chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
        chunks += [chunk({"content": piece}) for piece in reply.pieces]
    chunks.append(chunk({}, reply.finish_reason))
    if include_usage:
        chunks.append({**chunk({}), "choices": [], "usage": reply.usage})
    return chunks


def text_completion(body: Mapping[str, Any], plan: Plan, content_rng: random.Random, *, response_id: str,
                    created: int, model: str, fingerprint: str) -> dict[str, Any]:
    """The legacy `text_completion` body: one choice per prompt, each `plan.output_tokens` words long."""
    prompt = body.get("prompt", "")
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    finish = "length" if plan.truncated else "stop"
    choices = [{"text": " " + " ".join(tokens.words(content_rng, plan.output_tokens)), "index": i,
                "logprobs": None, "finish_reason": finish} for i in range(len(prompts))]
    prompt_tokens = tokens.completion_prompt_tokens(prompts)
    completion_tokens = plan.output_tokens * len(prompts)
    return {"id": response_id, "object": "text_completion", "created": created, "model": model,
            "system_fingerprint": fingerprint, "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def text_completion_chunks(completion: Mapping[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """A legacy completion as stream chunks: one per word and choice, a finish chunk each, then usage."""
    head = {k: completion[k] for k in ("id", "object", "created", "model", "system_fingerprint")}
    chunks: list[dict[str, Any]] = []
    for choice in completion["choices"]:
        parts = choice["text"].split(" ")[1:]
        chunks += [{**head, "choices": [{"text": " " + part, "index": choice["index"], "logprobs": None,
                                         "finish_reason": None}]} for part in parts]
        chunks.append({**head, "choices": [{"text": "", "index": choice["index"], "logprobs": None,
                                            "finish_reason": choice["finish_reason"]}]})
    if include_usage:
        chunks.append({**head, "choices": [], "usage": completion["usage"]})
    return chunks


def embeddings(body: Mapping[str, Any], seed: int, default_dimensions: int) -> dict[str, Any]:
    """The embeddings `list` body (float or base64 vectors, as asked)."""
    model = str(body["model"])
    items = tokens.embedding_inputs(body.get("input", ""))
    dimensions = int(body.get("dimensions") or default_dimensions)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(items):
        vector = tokens.embedding_vector(seed, model, item, dimensions)
        data.append({"object": "embedding", "index": index,
                     "embedding": tokens.encode_base64_floats(vector) if as_base64 else vector})
    prompt_tokens = tokens.embedding_tokens(items)
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}


def error_body(message: str, kind: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    """The OpenAI error envelope."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
