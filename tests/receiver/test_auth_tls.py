"""Who may send: no open port by accident, no token that silently disables auth, TLS on both listeners.

Certificates are real X.509 certificates from a throw-away CA (trustme), checked by grpcio's and
httpx's own TLS stacks.
"""

from __future__ import annotations

import ssl
import subprocess

import grpc
import httpx
import pytest
import trustme
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from llmrel.config import ConfigError, is_loopback, load_settings
from tests.instrumentation.helpers import clean_env
from tests.instrumentation.serve import LLMREL
from tests.otlp_builders import chat_span, request
from tests.receiver.conftest import export_raw

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.mark.parametrize(("token", "problem"), [
    ("", "is empty"), ("two words", "printable ASCII"), ("caf\u00e9", "printable ASCII")])
def test_a_token_that_cannot_protect_anything_is_a_configuration_error(token, problem):
    with pytest.raises(ConfigError, match=problem):
        load_settings(auth_token=token)


def test_an_empty_token_in_the_environment_stops_serve(tmp_path):
    done = subprocess.run([str(LLMREL), "serve", "--clickhouse-url", f"chdb://{tmp_path}/store"],
                          env=clean_env({"LLMREL_AUTH_TOKEN": ""}), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "auth_token" in done.stderr and "is empty" in done.stderr


@pytest.mark.parametrize(("endpoint", "loopback"), [
    ("127.0.0.1:4317", True), ("127.8.9.1:1", True), ("localhost:4317", True), ("[::1]:4317", True),
    ("0.0.0.0:4317", False), ("[::]:4317", False), ("10.0.0.5:4317", False), ("llmrel.internal:4317", False)])
def test_loopback_endpoints(endpoint, loopback):
    assert is_loopback(endpoint) is loopback


def test_serving_other_hosts_without_a_token_is_refused_unless_allowed(make_receiver, tmp_path):
    with pytest.raises(ConfigError, match="LLMREL_AUTH_TOKEN"):
        make_receiver(grpc_endpoint="0.0.0.0:0")
    receiver = make_receiver(http_endpoint="0.0.0.0:0", allow_unauthenticated=True)
    assert receiver.http_port
    done = subprocess.run([str(LLMREL), "serve", "--clickhouse-url", f"chdb://{tmp_path}/store",
                           "--grpc-endpoint", "0.0.0.0:0", "--http-endpoint", "127.0.0.1:0"],
                          env=clean_env({}), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "0.0.0.0:0" in done.stderr and "LLMREL_ALLOW_UNAUTHENTICATED" in done.stderr


def test_tls_files_go_together(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="set both or neither"):
        load_settings(tls_cert_file=cert)


@pytest.fixture
def tls_files(tmp_path):
    authority = trustme.CA()
    server = authority.issue_cert("localhost", "127.0.0.1")
    chain, key, ca = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    key.write_bytes(server.private_key_pem.bytes())
    authority.cert_pem.write_to_path(str(ca))
    return chain, key, ca


def test_grpc_and_http_serve_tls(make_receiver, query, tls_files):
    chain, key, ca = tls_files
    receiver = make_receiver(tls_cert_file=chain, tls_key_file=key, auth_token="s3cret")
    token = (("authorization", "Bearer s3cret"),)
    credentials = grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())
    with grpc.secure_channel(f"localhost:{receiver.grpc_port}", credentials) as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        reply = call(request([chat_span(1)]).SerializeToString(), metadata=token, timeout=10)
    assert not ExportTraceServiceResponse.FromString(reply).HasField("partial_success")
    response = httpx.post(f"https://localhost:{receiver.http_port}/v1/traces",
                          verify=ssl.create_default_context(cafile=str(ca)),
                          content=request([chat_span(2)]).SerializeToString(), timeout=10,
                          headers={"Content-Type": "application/x-protobuf", "Authorization": "Bearer s3cret"})
    assert response.status_code == 200
    assert query("SELECT count() FROM otel_traces") == [(2,)]
    with pytest.raises(grpc.RpcError) as caught:  # plaintext is not spoken on a TLS port
        export_raw(receiver.grpc_port, request([chat_span(3)]).SerializeToString(), metadata=token, timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{receiver.http_port}/healthz", timeout=5)


def test_the_cli_asks_a_tls_server_trusting_only_its_certificate(make_receiver, tls_files):
    from llmrel.running import ask_running_server

    chain, key, _ = tls_files
    receiver = make_receiver(tls_cert_file=chain, tls_key_file=key, auth_token="s3cret")
    client_settings = receiver.settings.model_copy(update={"http_endpoint": f"0.0.0.0:{receiver.http_port}"})
    data = ask_running_server(client_settings, "/api/v1/report", {"since": "1h"})
    assert data["totals"]["calls"] == 0
    other = trustme.CA().issue_cert("localhost", "127.0.0.1")  # same names, another certificate
    other_chain = chain.with_name("other.pem")
    other_chain.write_bytes(b"".join(blob.bytes() for blob in other.cert_chain_pems))
    impostor = client_settings.model_copy(update={"tls_cert_file": other_chain})
    assert ask_running_server(impostor, "/api/v1/report", {"since": "1h"}) is None  # TLS refused: not asked
