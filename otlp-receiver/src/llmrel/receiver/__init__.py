"""OTLP receiver: gRPC :4317 and HTTP :4318, decoding into `SpanRecord`s and committing to ClickHouse."""
