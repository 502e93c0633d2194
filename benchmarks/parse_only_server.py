"""The ceiling: a bare Python OTLP/gRPC receiver that only parses each request and acks it."""

from __future__ import annotations

import sys
import time
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def main() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                         options=[("grpc.max_receive_message_length", 64 << 20)])

    def export(body: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        ExportTraceServiceRequest.FromString(body)
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
