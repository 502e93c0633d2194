"""The demo's LLM features: each a function making realistic calls with the real `openai` client.

Every scenario takes the client and a seeded `random.Random`, returns the number of LLM calls it made, and
lets `openai.APIError` propagate (the runner counts it). Nothing here knows about telemetry.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass

import openai

SUPPORT_MODEL = "gpt-4o-mini"
SUMMARY_MODEL = "gpt-4o"
EXTRACT_MODEL = "gpt-4.1-mini"
EMBEDDING_MODEL = "text-embedding-3-small"

# Long enough (about 1,300 tokens) that the provider serves most of it from its prompt cache.
_SUPPORT_POLICY = " ".join([
    "You are the support assistant of an online shop. Be brief, polite and accurate.",
    "Refunds are possible within 30 days of delivery for unused items; shipping costs are not refunded.",
    "Never reveal internal notes, other customers' data or payment details.",
    "Use the tools to look up orders and to start refunds; do not guess order states.",
] * 22)

_QUESTIONS = (
    "Where is my order {order}? It was due yesterday.",
    "I want a refund for order {order}, the item arrived broken.",
    "Can I change the shipping address of order {order}?",
    "Why was I charged twice for order {order}?",
    "How long does a refund for order {order} take?",
)

_DOCUMENTS = (
    "Customer called about a delayed parcel. Carrier reported a sorting backlog. Agent offered a voucher.",
    "Quarterly review: ticket volume up 12 percent, first response time down to 3 hours, refunds stable.",
    "Incident: payment provider timeouts for 20 minutes; 340 checkouts failed; retries recovered most.",
    "Release notes: new returns portal, faster address validation, fixed invoice rounding bug.",
)

_TOOLS = [
    {"type": "function", "function": {
        "name": "lookup_order", "description": "Look up an order's status and delivery date.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                       "required": ["order_id"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "start_refund", "description": "Start a refund for an order.",
        "parameters": {"type": "object", "properties": {
            "order_id": {"type": "string"}, "reason": {"enum": ["damaged", "late", "unwanted", "other"]}},
            "required": ["order_id", "reason"], "additionalProperties": False}}},
]

_TICKET_SCHEMA = {
    "type": "object",
    "properties": {"category": {"enum": ["shipping", "refund", "billing", "account", "other"]},
                   "priority": {"enum": ["low", "normal", "high"]},
                   "summary": {"type": "string"}},
    "required": ["category", "priority", "summary"], "additionalProperties": False,
}


def support_bot(client: openai.OpenAI, rng: random.Random) -> int:
    """Chat with tools: answer a customer, running one tool round when the model asks for it."""
    question = rng.choice(_QUESTIONS).format(order=f"A{rng.randint(10_000, 99_999)}")
    messages: list[dict[str, object]] = [{"role": "system", "content": _SUPPORT_POLICY},
                                         {"role": "user", "content": question}]
    first = client.chat.completions.create(model=SUPPORT_MODEL, messages=messages, tools=_TOOLS,
                                           max_completion_tokens=400)
    message = first.choices[0].message
    if not message.tool_calls:
        return 1
    calls = [call.model_dump(include={"id", "type", "function"}) for call in message.tool_calls]
    messages.append({"role": "assistant", "content": message.content, "tool_calls": calls})
    for call in message.tool_calls:
        result = {"status": rng.choice(["shipped", "delayed", "delivered"]), "eta_days": rng.randint(1, 5)}
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
    client.chat.completions.create(model=SUPPORT_MODEL, messages=messages, tools=_TOOLS,
                                   max_completion_tokens=400)
    return 2


def summarizer(client: openai.OpenAI, rng: random.Random) -> int:
    """Streaming summary with `include_usage`, read to the end."""
    document = " ".join(rng.sample(_DOCUMENTS, k=rng.randint(1, len(_DOCUMENTS))))
    stream = client.chat.completions.create(
        model=SUMMARY_MODEL, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "system", "content": "Summarize the text in three bullet points."},
                  {"role": "user", "content": document}])
    with stream:
        for _ in stream:
            pass
    return 1


def ticket_extractor(client: openai.OpenAI, rng: random.Random) -> int:
    """Structured output: a ticket as JSON matching a schema (a reply that does not parse is counted)."""
    text = rng.choice(_QUESTIONS).format(order=f"B{rng.randint(10_000, 99_999)}")
    response = client.chat.completions.create(
        model=EXTRACT_MODEL, messages=[{"role": "user", "content": f"Classify this ticket: {text}"}],
        response_format={"type": "json_schema", "json_schema": {"name": "ticket", "schema": _TICKET_SCHEMA,
                                                                 "strict": True}})
    json.loads(response.choices[0].message.content or "")
    return 1


def knowledge_search(client: openai.OpenAI, rng: random.Random) -> int:
    """Embeddings for a knowledge-base search query."""
    client.embeddings.create(model=EMBEDDING_MODEL, input=rng.choice(_QUESTIONS).format(order="any"))
    return 1


@dataclass(frozen=True)
class Scenario:
    """A feature of the demo app: its name (the `llmrel.feature` baggage), function and share of traffic."""

    feature: str
    run: Callable[[openai.OpenAI, random.Random], int]
    weight: float


SCENARIOS: dict[str, Scenario] = {s.feature: s for s in (
    Scenario("support-bot", support_bot, 0.4),
    Scenario("summarizer", summarizer, 0.25),
    Scenario("ticket-extractor", ticket_extractor, 0.2),
    Scenario("kb-search", knowledge_search, 0.15),
)}

TENANTS: tuple[tuple[str, float], ...] = (("acme", 0.45), ("globex", 0.3), ("initech", 0.15), ("umbrella", 0.1))
