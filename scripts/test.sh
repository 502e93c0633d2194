#!/usr/bin/env bash
# Install everything the tests need (venv, packages, the OpenTelemetry Collector built with ocb,
# cached), lint, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
if [ -x scripts/build-collector.sh ]; then
  LLMREL_OTELCOL="$(./scripts/build-collector.sh | tail -n 1)"
  export LLMREL_OTELCOL
fi
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
