"""What every area reads the same way off an `LlmCall`: the stream it belongs to (the analyzers' drift
streams and shards, the intelligence layer's content monitors) and whether its answer is a refusal."""

from __future__ import annotations

import re

from llmrel.model import LlmCall

_REFUSAL = re.compile(
    r"\b(?:I(?:'m| am) (?:sorry|afraid),? (?:but )?I (?:can(?:'|no)t|cannot|won't|am unable to)"
    r"|I (?:can(?:'|no)t|cannot|won't|am unable to|am not able to) (?:help|assist|comply|provide|do that"
    r"|fulfill|answer|support)"
    r"|As an AI(?: language model)?,? I (?:can(?:'|no)t|cannot|don't|am unable)"
    r"|I must (?:decline|refuse))",
    re.IGNORECASE,
)


def is_refusal(text: str) -> bool:
    """Whether an output reads as a refusal (judged on its first 240 characters, where refusals start)."""
    head = text[:240].lower()
    # Substring tests run at memchr speed; the regex (~20 ns/char) only confirms a likely refusal.
    hinted = ("sorry" in head or "afraid" in head or "can't" in head or "cannot" in head or "can not" in head
              or "won't" in head or "unable" in head or "not able" in head or "as an ai" in head
              or "decline" in head or "refuse" in head)
    return hinted and _REFUSAL.search(head) is not None


def stream_model(call: LlmCall) -> str:
    """The model a stream is keyed by: what the app asked for, so a silent swap stays in-stream."""
    return call.request_model or call.model


def stream_key(call: LlmCall, by_feature: bool = False) -> tuple[str, ...]:
    """service × requested model × operation (× feature)."""
    key = (call.service_name, stream_model(call), call.operation)
    return (*key, call.feature) if by_feature else key
