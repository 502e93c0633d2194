"""app -> collector (`forward.yaml` with LLMREL_OTLP_INSECURE=false) -> `llmrel serve` over TLS, as the docs
describe for any network that is not trusted. The certificate is a real X.509 one from a throw-away CA."""

from __future__ import annotations

import pytest
import trustme

from tests.collector.collector_harness import AUTH_TOKEN
from tests.collector.genai_app import GenAiApp, Request
from tests.instrumentation.serve import llmrel_serve, query_store

pytestmark = pytest.mark.collector


def test_the_collector_exports_to_llmrel_over_tls(tmp_path, start_collector):
    authority = trustme.CA()
    server = authority.issue_cert("localhost")
    chain, key, ca = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    key.write_bytes(server.private_key_pem.bytes())
    authority.cert_pem.write_to_path(str(ca))
    env = {"LLMREL_TLS_CERT_FILE": str(chain), "LLMREL_TLS_KEY_FILE": str(key), "LLMREL_AUTH_TOKEN": AUTH_TOKEN}
    with llmrel_serve(tmp_path / "store", env=env) as serve:
        collector = start_collector("forward.yaml", {
            "LLMREL_OTLP_ENDPOINT": f"localhost:{serve.grpc_port}", "LLMREL_AUTH_TOKEN": AUTH_TOKEN,
            "LLMREL_OTLP_INSECURE": "false", "LLMREL_OTLP_CA_FILE": str(ca)})
        app = GenAiApp(f"127.0.0.1:{collector.grpc_port}", seed=11)
        for _ in range(5):
            app.handle(Request())
        sent = app.flush()
        app.shutdown()
        collector.wait_metric("otelcol_exporter_sent_spans", len(sent), exporter="otlp_grpc/llmrel")
    stored = query_store(serve.url, "SELECT SpanId FROM otel_traces ORDER BY SpanId")
    assert [r[0] for r in stored] == sorted(format(s.context.span_id, "016x") for s in sent)
