"""Stream guards for the Traceloop openai instrumentation (`opentelemetry-instrumentation-openai`).

Measured with 0.62.x: its `ChatStream` proxy ends the span when the stream is exhausted, used as a
context manager (sync only) or garbage-collected. It does not end it on `stream.close()`
or `async with` exit, and an error raised mid-stream ends the span with status OK (the ERROR status
is set after the span has ended and is ignored). No usage is recorded unless the final usage chunk
arrives (`stream_options={"include_usage": True}` and the stream read to the end).

`install_stream_guards()` replaces five methods of `ChatStream` (undone by `uninstall_stream_guards`):

* `close()` and `__aexit__` end the span;
* an exception from the stream ends the span with status ERROR, `error.type` and an exception event;
* an unfinished stream (closed early, abandoned and collected, or failed) gets
  `llmrel.stream.completed=false`, `llmrel.stream.chunks` (chunks received) and
  `llmrel.usage.estimated_output_tokens` (one token per chunk, which is how OpenAI streams
  text), and ends at the time of its last chunk, so the duration is the time the app was reading.

Provider-reported usage (`gen_ai.usage.*`) stays reserved for numbers the API sent.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from opentelemetry.trace import Status, StatusCode

from llmrel_instrumentation.attributes import ESTIMATED_OUTPUT_TOKENS, STREAM_CHUNKS, STREAM_COMPLETED

_logger = logging.getLogger(__name__)
_CHUNK_EVENT = "gen_ai.content.completion.chunk"
_ERROR_TYPE = "error.type"
_ERROR_SLOT = "_self_llmrel_error"  # wrapt keeps `_self_*` attributes on the proxy itself
_PATCHED = ("__next__", "__anext__", "_ensure_cleanup", "close", "__aexit__")
_originals: dict[str, Any] = {}


def _finish_unfinished(stream: Any) -> None:
    """Replacement for `ChatStream._ensure_cleanup`: end an unfinished stream's span once."""
    with stream._cleanup_lock:
        if stream._cleanup_completed:
            return
        stream._cleanup_completed = True
    span = stream._span
    if span is None or not span.is_recording():
        return
    error = getattr(stream, _ERROR_SLOT, None)
    try:
        stream._record_partial_metrics()
        events = span.events
        chunks = sum(1 for event in events if event.name == _CHUNK_EVENT)
        span.set_attributes({STREAM_COMPLETED: False, STREAM_CHUNKS: chunks, ESTIMATED_OUTPUT_TOKENS: chunks})
        end_time = None
        if error is not None:
            span.set_attribute(_ERROR_TYPE, type(error).__name__)
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)))
        else:
            span.set_status(Status(StatusCode.OK))
            if chunks:
                end_time = events[-1].timestamp
    except Exception:
        _logger.debug("llmrel stream guard could not annotate the span", exc_info=True)
        end_time = None
    span.end(end_time=end_time if end_time is not None else time.time_ns())


def _ensure_cleanup(self: Any) -> None:
    try:
        _finish_unfinished(self)
    except Exception:  # runs from __del__ too: never raise
        _logger.debug("llmrel stream guard failed", exc_info=True)


def __next__(self: Any) -> Any:
    try:
        chunk = self.__wrapped__.__next__()
    except StopIteration:
        self._process_complete_response()
        raise
    except Exception as error:
        setattr(self, _ERROR_SLOT, error)
        self._ensure_cleanup()
        raise
    self._process_item(chunk)
    return chunk


async def __anext__(self: Any) -> Any:
    try:
        chunk = await self.__wrapped__.__anext__()
    except StopAsyncIteration:
        self._process_complete_response()
        raise
    except Exception as error:
        setattr(self, _ERROR_SLOT, error)
        self._ensure_cleanup()
        raise
    self._process_item(chunk)
    return chunk


def close(self: Any) -> Any:
    """End the span, then close the HTTP response (returns the coroutine for async streams)."""
    self._ensure_cleanup()
    return self.__wrapped__.close()


async def __aexit__(self: Any, exc_type: Any, exc_val: Any, exc_tb: Any) -> Any:
    if exc_val is not None and isinstance(exc_val, Exception):
        setattr(self, _ERROR_SLOT, exc_val)
    self._ensure_cleanup()
    return await self.__wrapped__.__aexit__(exc_type, exc_val, exc_tb)


_REPLACEMENTS = {"__next__": __next__, "__anext__": __anext__, "_ensure_cleanup": _ensure_cleanup,
                 "close": close, "__aexit__": __aexit__}


def _chat_stream_class() -> type | None:
    try:
        from opentelemetry.instrumentation.openai.shared.chat_wrappers import ChatStream
    except ImportError:
        return None
    required = ("_span", "_record_partial_metrics", "_process_item", "_process_complete_response")
    missing = [name for name in required if not hasattr(ChatStream, name)]
    if missing:
        _logger.warning("llmrel stream guards not installed: ChatStream lacks %s", ", ".join(missing))
        return None
    return ChatStream


def install_stream_guards() -> bool:
    """Patch Traceloop's `ChatStream` (idempotent); False when that package is absent or unknown."""
    cls = _chat_stream_class()
    if cls is None:
        return False
    if _originals:
        return True
    for name in _PATCHED:
        _originals[name] = cls.__dict__.get(name)
        setattr(cls, name, _REPLACEMENTS[name])
    return True


def uninstall_stream_guards() -> None:
    """Restore the original `ChatStream` methods."""
    cls = _chat_stream_class()
    if cls is None or not _originals:
        return
    for name, original in _originals.items():
        if original is None:
            delattr(cls, name)
        else:
            setattr(cls, name, original)
    _originals.clear()
