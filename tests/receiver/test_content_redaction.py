"""Server-side redaction (`LLMREL_CONTENT_POLICY=redacted`) on a real receiver: hostile content shapes."""

from __future__ import annotations

from tests.otlp_builders import chat_span, request
from tests.receiver.conftest import export_raw


def test_deeply_nested_content_is_stored_redacted_with_the_rest_of_the_request(make_receiver, query):
    """`'[' * 500` in a content attribute made `redact()` raise: the request answered INTERNAL and lost its spans."""
    receiver = make_receiver(content_policy="redacted")
    spans = [chat_span(1, extra={"gen_ai.input.messages": "[" * 500}),
             chat_span(2, extra={"gen_ai.input.messages": "[" * 500 + "]" * 500}),
             chat_span(3, extra={"gen_ai.input.messages": "[" * 200_000 + "mail bob@example.com"}),
             chat_span(4, extra={"gen_ai.input.messages": '[{"role":"user","content":"call +33 6 12 34 56 78"}]'})]
    export_raw(receiver.grpc_port, request(spans).SerializeToString())
    rows = query("SELECT SpanAttributes['gen_ai.input.messages'] FROM otel_traces ORDER BY SpanId")
    assert len(rows) == 4
    assert rows[0][0] == "[" * 500
    assert "bob@example.com" not in rows[2][0] and "[REDACTED:EMAIL]" in rows[2][0]
    assert rows[3][0] == '[{"role": "user", "content": "call [REDACTED:PHONE]"}]'
