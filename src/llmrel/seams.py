"""The typed seams between stages: what the receiver, the analyzers and the actions plug into.

Structural (`Protocol`) like the OpenTelemetry SDK's span processors and exporters: any callable or
object with the right shape fits, so a stage never imports the stage on the other side of a seam.
"""

from __future__ import annotations

from typing import Protocol

from llmrel.model import LlmCall, SpanRecord


class Normalizer(Protocol):
    """A stored span -> its `LlmCall`, or `None` when the span is not an LLM call."""

    def __call__(self, span: SpanRecord, /) -> LlmCall | None: ...


class CallPricer(Protocol):
    """An `LlmCall` -> the same call with `cost_usd` and `cost_status` set."""

    def __call__(self, call: LlmCall, /) -> LlmCall: ...


class CommitHook(Protocol):
    """Called with the calls of each batch once it is committed (durable), off the acknowledgement path."""

    def __call__(self, calls: list[LlmCall], /) -> None: ...
