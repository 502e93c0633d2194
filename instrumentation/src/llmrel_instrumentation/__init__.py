"""llmrel-instrumentation: zero-code LLM telemetry for apps under `opentelemetry-instrument`."""
