"""Enrichment, content policy and sampling on the real OTel SDK (in-memory exporter, no network)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Status, StatusCode

from llmrel_instrumentation import ContentPolicy, EnrichmentSpanProcessor, LlmSampler, llm_context
from llmrel_instrumentation.content import ContentPolicyExporter
from llmrel_instrumentation.enrichment import PendingContext
from llmrel_instrumentation.sampling import PromotingSpanProcessor, sampler_from_arg

LLM = {"gen_ai.operation.name": "chat"}
PROMPT = ('[{"role": "user", "parts": [{"type": "text", '
          '"content": "I am bob@example.com, key sk-abcdefghijklmnopqrstuvwxyz"}]}]')


class SeededIdGenerator(RandomIdGenerator):
    """Deterministic trace ids so ratio sampling gives the same result on every run."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def make_provider(exporter: InMemorySpanExporter, ratio: float = 1.0,
                  policy: ContentPolicy = ContentPolicy.FULL, defer: bool = False) -> TracerProvider:
    provider = TracerProvider(sampler=LlmSampler(ratio), id_generator=SeededIdGenerator(3))
    pending = PendingContext() if defer else None
    provider.add_span_processor(EnrichmentSpanProcessor(pending))
    provider.add_span_processor(PromotingSpanProcessor(SimpleSpanProcessor(ContentPolicyExporter(exporter, policy,
                                                                                                 pending))))
    return provider


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = make_provider(exporter)
    yield provider
    provider.shutdown()


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


@pytest.mark.parametrize("defer", [False, True], ids=["on-start", "deferred-to-export"])
def test_llm_context_sets_the_four_attributes_on_llm_spans_only(exporter, defer: bool) -> None:
    provider = make_provider(exporter, defer=defer)
    tracer = provider.get_tracer("t")
    with llm_context(feature="refund-bot", tenant="acme", user_id="u-1", session_id="s-9"):
        with tracer.start_as_current_span("openai.chat", attributes=LLM):
            pass
        with tracer.start_as_current_span("db.query"):
            pass
    spans = by_name(exporter.get_finished_spans())
    assert {k: spans["openai.chat"].attributes[k] for k in ("llmrel.feature", "llmrel.tenant", "user.id",
                                                            "session.id")} == {
        "llmrel.feature": "refund-bot", "llmrel.tenant": "acme", "user.id": "u-1", "session.id": "s-9"}
    assert "llmrel.feature" not in spans["db.query"].attributes
    provider.shutdown()


def test_baggage_is_read_and_llm_context_wins_and_nests(provider, exporter) -> None:
    tracer = provider.get_tracer("t")
    token = context.attach(baggage.set_baggage("llmrel.tenant", "globex", baggage.set_baggage("user.id", "u-b")))
    try:
        with llm_context(feature="outer", tenant="acme"), llm_context(feature="inner"), \
                tracer.start_as_current_span("chat", attributes=LLM):
            pass
    finally:
        context.detach(token)
    attributes = exporter.get_finished_spans()[0].attributes
    assert (attributes["llmrel.feature"], attributes["llmrel.tenant"], attributes["user.id"]) == (
        "inner", "acme", "u-b")


def test_llm_context_is_not_propagated_as_baggage() -> None:
    with llm_context(tenant="acme", user_id="u-1"):
        assert baggage.get_all() == {}


def test_enrichment_never_raises_into_the_app(provider, exporter) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("boom")

    tracer = provider.get_tracer("t")
    token = context.attach(baggage.set_baggage("llmrel.feature", Unprintable()))
    try:
        with tracer.start_as_current_span("chat", attributes=LLM):
            pass
    finally:
        context.detach(token)
    assert [s.name for s in exporter.get_finished_spans()] == ["chat"]


@pytest.mark.parametrize(("policy", "expected_prompt", "redactions"), [
    (ContentPolicy.FULL, PROMPT, None),
    (ContentPolicy.REDACTED, PROMPT.replace("bob@example.com", "[REDACTED:EMAIL]")
     .replace("sk-abcdefghijklmnopqrstuvwxyz", "[REDACTED:API_KEY]"), 3),  # 2 in the attribute + 1 in the event
    (ContentPolicy.OFF, None, None),
])
def test_content_policy_on_export(exporter, policy, expected_prompt, redactions) -> None:
    provider = make_provider(exporter, policy=policy)
    with provider.get_tracer("t").start_as_current_span("chat", attributes={**LLM, "gen_ai.input.messages": PROMPT,
                                                                             "gen_ai.request.model": "m"}) as span:
        span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": "mail bob@example.com"})
    attributes = exporter.get_finished_spans()[0].attributes
    assert attributes.get("gen_ai.input.messages") == expected_prompt
    assert attributes.get("llmrel.redactions") == redactions
    assert attributes["gen_ai.request.model"] == "m"
    event_attributes = exporter.get_finished_spans()[0].events[0].attributes
    expected_event = {ContentPolicy.FULL: {"gen_ai.prompt": "mail bob@example.com"},
                      ContentPolicy.REDACTED: {"gen_ai.prompt": "mail [REDACTED:EMAIL]"},
                      ContentPolicy.OFF: {}}[policy]
    assert dict(event_attributes) == expected_event
    provider.shutdown()


def _trace(tracer, index: int, llm: bool) -> None:
    with tracer.start_as_current_span(f"request-{index}"), tracer.start_as_current_span(f"handler-{index}"):
        tracer.start_span(f"sibling-{index}").end()
        if llm:
            with tracer.start_as_current_span(f"chat-{index}", attributes=LLM), \
                    tracer.start_as_current_span(f"http-{index}"):
                pass


def test_sampler_keeps_every_llm_span_with_its_parent_chain_and_ratio_samples_the_rest(exporter) -> None:
    provider = make_provider(exporter, ratio=0.25)
    tracer = provider.get_tracer("t")
    for index in range(200):
        _trace(tracer, index, llm=index % 2 == 0)
    spans = exporter.get_finished_spans()
    ids = {span.context.span_id for span in spans}
    traces: dict[int, set[str]] = {}
    for span in spans:
        kind, index = span.name.split("-")
        traces.setdefault(int(index), set()).add(kind)
    llm_traces = {i: kinds for i, kinds in traces.items() if i % 2 == 0}
    plain_traces = {i: kinds for i, kinds in traces.items() if i % 2 == 1}
    assert len(llm_traces) == 100
    assert all(kinds >= {"request", "handler", "chat", "http"} for kinds in llm_traces.values())
    assert all(kinds == {"request", "handler", "sibling"} for kinds in plain_traces.values())
    assert len(plain_traces) == 22  # seeded trace ids: about 0.25 x 100
    orphans = [s.name for s in spans if s.parent is not None and s.parent.span_id not in ids]
    assert orphans == []
    promoted = [s for s in spans if s.attributes.get("llmrel.sampling.promoted")]
    assert {s.name.split("-")[0] for s in promoted} == {"request", "handler"}
    assert all(s.context.trace_flags.sampled for s in spans)
    provider.shutdown()


def test_unsampled_error_span_is_kept_with_its_ancestors(exporter) -> None:
    provider = make_provider(exporter, ratio=0.0)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("request"), tracer.start_as_current_span("handler"):
        tracer.start_span("fine").end()
        failing = tracer.start_span("db.query")
        failing.set_status(Status(StatusCode.ERROR, "timeout"))
        failing.end()
    with tracer.start_as_current_span("other-request"):
        pass
    assert sorted(s.name for s in exporter.get_finished_spans()) == ["db.query", "handler", "request"]
    provider.shutdown()


def test_sampler_from_arg() -> None:
    assert sampler_from_arg(None).ratio == 1.0
    assert sampler_from_arg("0.1").ratio == 0.1
    assert sampler_from_arg("lots").ratio == 1.0
    assert sampler_from_arg("0.5").get_description() == "LlmSampler{ratio=0.5}"
    with pytest.raises(ValueError):
        LlmSampler(1.5)


def test_pending_context_is_bounded_and_falls_back_to_setting_attributes(exporter) -> None:
    pending = PendingContext(max_spans=1)
    assert pending.record(1, {"llmrel.feature": "a"}) is True
    assert pending.record(2, {"llmrel.feature": "b"}) is False
    assert pending.take(1) == {"llmrel.feature": "a"}
    assert pending.take(1) is None
    provider = TracerProvider(sampler=LlmSampler(1.0))
    full = PendingContext(max_spans=0)  # an exporter that stopped draining
    provider.add_span_processor(EnrichmentSpanProcessor(full))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with llm_context(feature="direct"), provider.get_tracer("t").start_as_current_span("chat", attributes=LLM):
        pass
    assert exporter.get_finished_spans()[0].attributes["llmrel.feature"] == "direct"
    provider.shutdown()


def test_llm_span_after_its_parent_ended_keeps_no_state_behind(exporter) -> None:
    provider = make_provider(exporter, ratio=0.0)
    tracer = provider.get_tracer("t")
    promoting = next(p for p in provider._active_span_processor._span_processors
                     if isinstance(p, PromotingSpanProcessor))
    for index in range(50):  # fire-and-forget: the request ends before its background LLM call starts
        request = tracer.start_span(f"request-{index}")
        context = trace.set_span_in_context(request)
        request.end()
        with tracer.start_as_current_span(f"chat-{index}", context=context,
                                          attributes={"gen_ai.operation.name": "chat"}):
            pass
    assert len(exporter.get_finished_spans()) == 50  # every LLM span kept
    assert promoting._promoted == set() and promoting._parents == {}
    provider.shutdown()
