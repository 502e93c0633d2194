"""Streaming with the Traceloop openai instrumentation, the real openai client and the simulator.

Every way an app can leave a stream: read to the end, break and close, break and drop it, never
read it, `with` block, an error mid-stream, and the async client. The span must end, carry the
provider's usage when it arrived, and otherwise say how far the stream got.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import openai
import pytest
from opentelemetry.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from llmrel_instrumentation.streaming import install_stream_guards, uninstall_stream_guards

MESSAGES = [{"role": "user", "content": "Say hello."}]
USAGE = {"stream_options": {"include_usage": True}}
_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def instrumented() -> Iterator[None]:
    """Traceloop's instrumentor, once per process (its `uninstrument` does not undo `instrument`)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    if not getattr(OpenAIInstrumentor, "_llmrel_test_instrumented", False):
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        OpenAIInstrumentor._llmrel_test_instrumented = True
    yield


@pytest.fixture
def spans(instrumented) -> Iterator[InMemorySpanExporter]:
    install_stream_guards()
    _EXPORTER.clear()
    yield _EXPORTER
    uninstall_stream_guards()


@pytest.fixture
def client(simulator) -> openai.OpenAI:
    return openai.OpenAI(base_url=simulator.base_url, api_key="sk-test", max_retries=0)


def chat_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == "openai.chat"]


def create(client: openai.OpenAI, **kwargs: object):
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **USAGE, **kwargs)


def test_full_consumption_carries_provider_usage(spans, client) -> None:
    chunks = list(create(client))
    [span] = chat_spans(spans)
    assert span.status.status_code is StatusCode.OK
    assert span.attributes["gen_ai.usage.output_tokens"] == chunks[-1].usage.completion_tokens
    assert span.attributes["gen_ai.usage.input_tokens"] == chunks[-1].usage.prompt_tokens
    assert "llmrel.stream.completed" not in span.attributes


def test_early_break_then_close_ends_the_span_at_the_last_chunk(spans, client) -> None:
    stream = create(client)
    for index, _ in enumerate(stream):
        if index == 2:
            break
    assert chat_spans(spans) == []  # still open: the app may keep reading
    stream.close()
    [span] = chat_spans(spans)
    assert span.attributes["llmrel.stream.completed"] is False
    assert span.attributes["llmrel.stream.chunks"] == 3
    assert span.attributes["llmrel.usage.estimated_output_tokens"] == 3
    assert "gen_ai.usage.output_tokens" not in span.attributes  # the provider never reported it
    assert span.end_time == span.events[-1].timestamp


def test_early_break_without_close_ends_when_the_stream_is_collected(spans, client) -> None:
    def read_two() -> None:
        for index, _ in enumerate(create(client)):
            if index == 1:
                break

    read_two()
    gc.collect()
    [span] = chat_spans(spans)
    assert (span.attributes["llmrel.stream.completed"], span.attributes["llmrel.stream.chunks"]) == (False, 2)


def test_never_consumed_stream_ends_when_collected(spans, client) -> None:
    stream = create(client)
    del stream
    gc.collect()
    [span] = chat_spans(spans)
    assert span.status.status_code is StatusCode.OK
    assert span.attributes["llmrel.stream.chunks"] == 0


def test_with_block_exit_ends_the_span(spans, client) -> None:
    with create(client) as stream:
        next(iter(stream))
    [span] = chat_spans(spans)
    assert span.attributes["llmrel.stream.chunks"] == 1


def test_error_mid_stream_ends_the_span_with_error_status(spans, client) -> None:
    stream = create(client, extra_headers={"x-llmrel-sim": "stream_error"})
    received = 0
    with pytest.raises(openai.APIError):
        for _ in stream:
            received += 1
    [span] = chat_spans(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "APIError"
    assert span.attributes["llmrel.stream.chunks"] == received > 0
    assert [e.name for e in span.events if e.name == "exception"] == ["exception"]


def test_app_exception_while_reading_is_an_abandoned_stream_not_an_llm_error(spans, client) -> None:
    def consume() -> None:
        for _ in create(client):
            raise KeyError("app bug")

    with pytest.raises(KeyError):
        consume()
    gc.collect()
    [span] = chat_spans(spans)
    assert span.status.status_code is StatusCode.OK
    assert span.attributes["llmrel.stream.completed"] is False


def test_async_stream_close_ends_the_span(spans, simulator) -> None:
    async def run() -> None:
        client = openai.AsyncOpenAI(base_url=simulator.base_url, api_key="sk-test", max_retries=0)
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **USAGE)
        async for _ in stream:
            break
        await stream.close()
        await client.close()

    asyncio.run(run())
    [span] = chat_spans(spans)
    assert span.attributes["llmrel.stream.chunks"] == 1


def test_without_guards_close_leaves_the_span_open_and_errors_end_as_ok(instrumented, client) -> None:
    """What Traceloop 0.62 does on its own (the reason for the guards)."""
    uninstall_stream_guards()
    _EXPORTER.clear()
    stream = create(client)
    next(iter(stream))
    stream.close()
    assert chat_spans(_EXPORTER) == []
    failing = create(client, extra_headers={"x-llmrel-sim": "stream_error"})
    with pytest.raises(openai.APIError):
        list(failing)
    [span] = chat_spans(_EXPORTER)
    assert span.status.status_code is StatusCode.OK
    del stream
    gc.collect()
