"""An application instrumented with the real OpenTelemetry SDK, exporting OTLP/gRPC to a collector.

Each request is one trace: a server span for the request and, under it, one LLM call span with
the GenAI semantic-convention attributes. Span times are set explicitly, so a "slow" call takes
no wall-clock time, and ids come from a seeded generator, so runs are reproducible. Every span
is also kept in memory: what the app sent is what the store must hold.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

SERVICE_NAME = "support-bot"
_MS = 1_000_000


class SeededIdGenerator(IdGenerator):
    """Trace and span ids from a seeded RNG (never zero)."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._rng.getrandbits(128) or 1


@dataclass(frozen=True)
class Request:
    """One app request and the LLM call it makes."""

    llm_duration_ms: int = 300
    input_tokens: int = 120
    output_tokens: int = 40
    llm_error: str | None = None  # error.type of a failed LLM call
    request_error: bool = False  # the request fails outside the LLM call
    model: str = "gpt-4o-mini"


class GenAiApp:
    """The app: `handle(request)` records one trace; `flush()` exports everything sent so far."""

    def __init__(self, collector_grpc_endpoint: str, seed: int) -> None:
        self.sent = InMemorySpanExporter()
        self._provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}),
                                        id_generator=SeededIdGenerator(seed))
        self._provider.add_span_processor(SimpleSpanProcessor(self.sent))
        self._provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=collector_grpc_endpoint, insecure=True), schedule_delay_millis=100))
        self._tracer = self._provider.get_tracer("support-bot.handlers")
        self._clock_ns = time.time_ns() - 600_000 * _MS  # ten minutes ago, then strictly increasing

    def handle(self, request: Request) -> str:
        """Record the request's trace; returns its trace id (hex)."""
        start = self._clock_ns
        end = start + request.llm_duration_ms * _MS + 5 * _MS
        self._clock_ns = end + _MS
        root = self._tracer.start_span("POST /support", kind=SpanKind.SERVER, start_time=start)
        llm = self._tracer.start_span(f"chat {request.model}", kind=SpanKind.CLIENT, start_time=start + _MS,
                                      context=set_span_in_context(root), attributes=_llm_attributes(request))
        if request.llm_error:
            llm.set_attribute(error_attributes.ERROR_TYPE, request.llm_error)
            llm.set_status(Status(StatusCode.ERROR, request.llm_error))
        llm.end(end_time=start + _MS + request.llm_duration_ms * _MS)
        if request.request_error:
            root.set_status(Status(StatusCode.ERROR, "order service unavailable"))
        root.end(end_time=end)
        return format(root.get_span_context().trace_id, "032x")

    def flush(self) -> list[ReadableSpan]:
        """Export everything recorded so far; returns all spans the app sent."""
        assert self._provider.force_flush(30_000), "the OTLP exporter did not flush"
        return list(self.sent.get_finished_spans())

    def shutdown(self) -> None:
        self._provider.shutdown()


def _llm_attributes(request: Request) -> dict[str, str | int]:
    return {
        gen_ai.GEN_AI_OPERATION_NAME: "chat",
        gen_ai.GEN_AI_PROVIDER_NAME: "openai",
        gen_ai.GEN_AI_REQUEST_MODEL: request.model,
        gen_ai.GEN_AI_RESPONSE_MODEL: f"{request.model}-2024-07-18",
        gen_ai.GEN_AI_USAGE_INPUT_TOKENS: request.input_tokens,
        gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS: request.output_tokens,
    }
