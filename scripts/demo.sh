#!/usr/bin/env bash
# Install, start llmrel on the embedded store (./llmrel-data), send demo LLM traffic through the real
# openai client under OpenTelemetry auto-instrumentation, print the report, and keep llmrel running
# until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

GRPC_PORT=4317
HTTP_PORT=4318
SERVE_PID=""

stop_serve() {
  if [[ -n "$SERVE_PID" ]] && kill -0 "$SERVE_PID" 2>/dev/null; then
    kill -TERM "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  SERVE_PID=""
}
# Ctrl-C is how this demo ends: stop llmrel cleanly and exit 0 (make reports no error).
on_interrupt() {
  trap - INT TERM
  echo
  echo "Stopping llmrel (the data stays in ./llmrel-data) ..."
  stop_serve
  exit 0
}
trap on_interrupt INT TERM
trap stop_serve EXIT

echo "Installing llmrel into .venv (the first run downloads packages for a minute or two) ..."
./scripts/install.sh

mkdir -p llmrel-data
export LLMREL_LOG_FORMAT="${LLMREL_LOG_FORMAT:-console}"
# The demo's rules: the default pack with a shorter drift baseline memory (scripts/demo-rules.yaml).
export LLMREL_RULES_FILE="${LLMREL_RULES_FILE:-$PWD/scripts/demo-rules.yaml}"
# The demo's read-only ClickHouse user, for Grafana on the light profile (a demo-only password).
export LLMREL_READER_PASSWORD="${LLMREL_READER_PASSWORD:-llmrel-demo}"
# In a session of its own (where setsid exists), so Ctrl-C reaches the demo apps first and llmrel still
# receives the spans they flush on the way out; the trap then stops it.
detach=()
if command -v setsid >/dev/null; then detach=(setsid); fi
"${detach[@]}" .venv/bin/llmrel serve --grpc-endpoint "127.0.0.1:$GRPC_PORT" --http-endpoint "127.0.0.1:$HTTP_PORT" \
  >llmrel-data/serve.log 2>&1 &
SERVE_PID=$!

# Ready when *our* process says it listens (it binds both ports exclusively, so nothing else answers
# for it) and its /readyz answers.
ready=""
for _ in $(seq 1 240); do
  if ! kill -0 "$SERVE_PID" 2>/dev/null; then
    echo "llmrel did not start:" >&2
    cat llmrel-data/serve.log >&2
    exit 1
  fi
  if grep -q "llmrel listening (pid $SERVE_PID)" llmrel-data/serve.log 2>/dev/null \
      && curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.5
done
if [[ -z "$ready" ]]; then
  echo "llmrel did not become ready in 2 minutes; its log:" >&2
  cat llmrel-data/serve.log >&2
  exit 1
fi
echo "llmrel is running (pid $SERVE_PID): OTLP gRPC :$GRPC_PORT, OTLP/HTTP + API :$HTTP_PORT (log: llmrel-data/serve.log)"
echo "ClickHouse HTTP interface :8123 (user llmrel_reader, password $LLMREL_READER_PASSWORD); Grafana on it:" \
  "docker compose --profile light up grafana-light"
echo "Sending demo traffic for about a minute; the simulated provider degrades after ${DEMO_DEGRADE_AFTER:-20} s ..."

.venv/bin/llmrel demo --receiver "http://127.0.0.1:$GRPC_PORT" --calls "${DEMO_CALLS:-400}" \
  --rate "${DEMO_RATE:-20}" --degrade-after "${DEMO_DEGRADE_AFTER:-20}"
sleep 2
.venv/bin/llmrel report --since 1h --api "http://127.0.0.1:$HTTP_PORT"
cat <<EOF

llmrel keeps running. The commands are in .venv: activate it first (or prefix them with .venv/bin/):
  source .venv/bin/activate
  llmrel report --since 1h                 # the report again; llmrel findings --since 1h for findings
  OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:$GRPC_PORT OTEL_SERVICE_NAME=my-app opentelemetry-instrument python app.py
Ctrl-C stops llmrel.
EOF
wait "$SERVE_PID"
