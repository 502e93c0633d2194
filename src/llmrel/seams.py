"""The typed seams between stages: what the receiver, the analyzers and the actions plug into.

Structural (`Protocol`) like the OpenTelemetry SDK's span processors and exporters: any callable or
object with the right shape fits, so a stage never imports the stage on the other side of a seam.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from llmrel.model import LlmCall, SpanRecord


class Normalizer(Protocol):
    """A stored span -> its `LlmCall`, or `None` when the span is not an LLM call."""

    def __call__(self, span: SpanRecord, /) -> LlmCall | None: ...


class CallPricer(Protocol):
    """An `LlmCall` -> the same call with `cost_usd` and `cost_status` set."""

    def __call__(self, call: LlmCall, /) -> LlmCall: ...


class StoredSpanIngest(Protocol):
    """Spans another writer stored in `otel_traces` -> their calls, and the one way those calls reach
    `llm_calls` (`llmrel.calls_ingest.StoredSpanCalls`): what `llmrel analyze` tails through."""

    def calls(self, spans: Sequence[SpanRecord], keep: Callable[[LlmCall], bool] | None = None,
              /) -> list[LlmCall]:
        """The priced calls of `spans` under the content policy, only those `keep` accepts."""
        ...

    def stored(self, calls: Sequence[LlmCall], /) -> set[tuple[str, str]]:
        """(trace id, span id) of those of `calls` already in `llm_calls`."""
        ...

    def store(self, calls: Sequence[LlmCall], /) -> None:
        """Insert `calls` into `llm_calls`."""
        ...


class CommitHook(Protocol):
    """Called with the calls of each batch once it is committed (durable), off the acknowledgement path."""

    def __call__(self, calls: list[LlmCall], /) -> None: ...


class ServeExtension(Protocol):
    """A part of `llmrel serve` beside ingest (the analyzers, the action layer, the intelligence layer).

    `on_commit` sees every committed batch, in commit order, on one thread off the acknowledgement path;
    `routers` adds API routes behind the server's authentication; the part runs between `start` and
    `close`, which comes after the last `on_commit`.
    """

    def on_commit(self, calls: list[LlmCall], /) -> None: ...

    def routers(self, auth: Callable[[Any], bool], /) -> Sequence[Any]: ...

    def start(self) -> None: ...

    def close(self) -> None: ...


class ServeExtensionFactory(Protocol):
    """Builds the `ServeExtension` from the server's settings, store connections and metrics registry."""

    def __call__(self, settings: Any, client_factory: Callable[[], Any], registry: Any, /) -> ServeExtension: ...
