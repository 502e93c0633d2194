#!/usr/bin/env bash
# Install everything the tests need (venv, packages, the OpenTelemetry Collector built with ocb, the
# npm/Maven packages of the polyglot tests; all cached), lint, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
if [ -x scripts/build-collector.sh ]; then
  LLMREL_OTELCOL="$(./scripts/build-collector.sh | tail -n 1)"
  export LLMREL_OTELCOL
fi
./scripts/build-chgo.sh >/dev/null  # the clickhouse-go client of tests/clickhouse_http, cached
# npm and Maven packages of the Node.js and Java capture tests (tests/polyglot/), cached.
./scripts/polyglot-deps.sh node >/dev/null
./scripts/polyglot-deps.sh java >/dev/null
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
