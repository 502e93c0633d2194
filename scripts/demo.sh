#!/usr/bin/env bash
# Install, start llmrel on the embedded store (./llmrel-data), send demo LLM traffic through the real
# openai client under OpenTelemetry auto-instrumentation, print the report, and keep llmrel running.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
mkdir -p llmrel-data
export LLMREL_LOG_FORMAT="${LLMREL_LOG_FORMAT:-console}"
.venv/bin/llmrel serve >llmrel-data/serve.log 2>&1 &
SERVE_PID=$!
trap 'kill -TERM $SERVE_PID 2>/dev/null; wait $SERVE_PID 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 120); do
  if curl -sf http://127.0.0.1:4318/readyz >/dev/null 2>&1; then break; fi
  if ! kill -0 $SERVE_PID 2>/dev/null; then cat llmrel-data/serve.log; exit 1; fi
  sleep 0.5
done
echo "llmrel is running: OTLP gRPC :4317, OTLP/HTTP + API :4318 (log: llmrel-data/serve.log)"
.venv/bin/llmrel demo --calls "${DEMO_CALLS:-400}" --rate "${DEMO_RATE:-20}" --degrade-after "${DEMO_DEGRADE_AFTER:-10}"
sleep 2
.venv/bin/llmrel report --since 1h
echo
echo "llmrel keeps running; point your app at it:"
echo "  OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 OTEL_SERVICE_NAME=my-app opentelemetry-instrument python app.py"
echo "Ctrl-C stops it."
wait $SERVE_PID
