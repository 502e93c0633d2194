"""Deterministic token accounting and content generation (pure; no I/O, no clock).

Token rule (what the simulator reports in `usage`):

* text tokens of a string: `ceil(len(text) / 4)` (0 for the empty string);
* chat prompt: `3 + sum(4 + text_tokens(message_text) for each message)`, plus
  `text_tokens(json.dumps(tools, sort_keys=True, separators=(",", ":")))` when the request has `tools`.
  `message_text` is the message's string content (or the concatenated `text` of its content parts, each
  non-text part adding 85 tokens), followed by its `name` and, for each tool call, the function name and
  arguments;
* cached prompt tokens: `prompt_tokens` minus the last message's tokens (`4 + text_tokens`), rounded down to
  a multiple of 128, reported only when that is at least 1024 (the shared prefix of a long prompt is cached);
* completion prompt: `sum(max(1, text_tokens(p)) for each prompt)`;
* embeddings: `sum(max(1, text_tokens(s)))` over string inputs, the list length for token-id inputs.

Completion tokens are drawn (see `llmrel.demo.plan`); text answers then hold exactly that many words minus
the reasoning tokens, one word per stream chunk.
"""

from __future__ import annotations

import base64
import json
import math
import random
import struct
from collections.abc import Mapping, Sequence
from typing import Any

_TOKENS_PER_NON_TEXT_PART = 85
_CACHE_BLOCK = 128
_CACHE_MIN_PREFIX = 1024

_WORDS: tuple[str, ...] = (
    "the", "order", "refund", "account", "is", "ready", "we", "can", "help", "with", "your", "request",
    "please", "confirm", "shipping", "address", "and", "payment", "details", "our", "team", "will", "review",
    "it", "today", "thanks", "for", "waiting", "summary", "customer", "reported", "issue", "resolved", "after",
    "update", "invoice", "policy", "allows", "return", "within", "days", "tracking", "number", "shows",
    "delivery", "tomorrow", "agent", "escalated", "ticket", "priority", "high", "low", "note", "that",
)


def text_tokens(text: str) -> int:
    """Tokens of a string under the simulator's rule: one per 4 characters, rounded up."""
    return math.ceil(len(text) / 4)


def _content_tokens(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return text_tokens(content)
    text, extra = [], 0
    for part in content:
        if isinstance(part, Mapping) and isinstance(part.get("text"), str):
            text.append(part["text"])
        else:
            extra += _TOKENS_PER_NON_TEXT_PART
    return text_tokens("".join(text)) + extra


def message_tokens(message: Mapping[str, Any]) -> int:
    """Tokens one chat message adds to the prompt (4 overhead + its text)."""
    tail = str(message.get("name") or "")
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        tail += str(function.get("name", "")) + str(function.get("arguments", ""))
    content = message.get("content")
    if isinstance(content, str) or content is None:
        return 4 + text_tokens((content or "") + tail)
    return 4 + _content_tokens(content) + text_tokens(tail)


def chat_prompt_tokens(messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] | None) -> int:
    """Prompt tokens of a chat request."""
    total = 3 + sum(message_tokens(m) for m in messages)
    if tools:
        total += text_tokens(json.dumps(tools, sort_keys=True, separators=(",", ":")))
    return total


def cached_prompt_tokens(prompt_tokens: int, messages: Sequence[Mapping[str, Any]]) -> int:
    """Prompt tokens served from the provider's prefix cache (all but the last message, in 128 blocks)."""
    prefix = prompt_tokens - (message_tokens(messages[-1]) if messages else 0)
    cached = prefix // _CACHE_BLOCK * _CACHE_BLOCK
    return cached if cached >= _CACHE_MIN_PREFIX else 0


def completion_prompt_tokens(prompt: str | Sequence[str]) -> int:
    """Prompt tokens of a legacy completion request."""
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    return sum(max(1, text_tokens(str(p))) for p in prompts)


def embedding_inputs(value: Any) -> list[str | list[int]]:
    """The request's `input` as a list of items (strings or token-id lists)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [value]
    return list(value)


def embedding_tokens(items: Sequence[str | list[int]]) -> int:
    """Prompt tokens of an embeddings request."""
    return sum(len(item) if isinstance(item, list) else max(1, text_tokens(item)) for item in items)


def words(rng: random.Random, count: int) -> list[str]:
    """`count` words of plausible support-desk prose, each a token and a stream chunk."""
    return [rng.choice(_WORDS) for _ in range(max(0, count))]


def instance_for_schema(schema: Mapping[str, Any] | None, rng: random.Random, depth: int = 0) -> Any:
    """A value that satisfies the common subset of JSON Schema used for tools and structured output."""
    schema = schema or {}
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return instance_for_schema(schema[key][0], rng, depth)
    if schema.get("enum"):
        return rng.choice(list(schema["enum"]))
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        if depth > 4:
            return {}
        return {name: instance_for_schema(sub, rng, depth + 1)
                for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [instance_for_schema(schema.get("items"), rng, depth + 1) for _ in range(rng.randint(1, 2))]
    if kind == "integer":
        return rng.randint(1, 100)
    if kind == "number":
        return round(rng.uniform(0, 100), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return " ".join(words(rng, 2))


def json_object_answer(rng: random.Random) -> dict[str, Any]:
    """The object a `json_object` response carries when no schema is given."""
    return {"answer": " ".join(words(rng, 6)), "confidence": round(rng.uniform(0.5, 1.0), 2),
            "tags": words(rng, 2)}


def truncate_json(text: str) -> str:
    """Cut a JSON document so that it no longer parses (what an output cut off mid-object looks like)."""
    return text[: max(1, len(text) // 2)].rstrip("}]")


def embedding_vector(seed: int, model: str, item: str | list[int], dimensions: int) -> list[float]:
    """A unit-length vector that depends only on the seed, the model and the input."""
    rng = random.Random(f"{seed}:{model}:{item!r}")
    raw = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def encode_base64_floats(vector: Sequence[float]) -> str:
    """Little-endian float32 bytes in base64 (the `encoding_format="base64"` wire form)."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
