"""The ceiling: the least any Python OTLP/gRPC receiver must do. It parses each request and decodes
every span into Python values (`llmrel.receiver.decode.decode_request`: ids, attributes, events,
links as `SpanRecord`s), then acks; nothing is normalized, encoded or stored. Run with the same
gRPC thread pool size as `llmrel serve`."""

from __future__ import annotations

import sys
import time
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from llmrel.receiver.decode import decode_request, parse_protobuf_request


def main() -> None:
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         options=[("grpc.max_receive_message_length", 64 << 20)])

    def export(body: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        decode_request(parse_protobuf_request(body))
        return ExportTraceServiceResponse()

    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService",
        {"Export": grpc.unary_unary_rpc_method_handler(
            export, request_deserializer=None,
            response_serializer=ExportTraceServiceResponse.SerializeToString)}),))
    port = server.add_insecure_port(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:0")
    server.start()
    print(port, flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
