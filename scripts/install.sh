#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install llmrel (core, server, app instrumentation) with test extras.
# Re-running is cheap: pip skips what is already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# `llmrel` names `llmrel-core` (and its `demo` extra `llmrel-instrumentation`) as path dependencies (`name @ file:///…`), which
# pip will not also take as editable in one command: resolve and install everything, then switch the
# three local packages to editable installs for development.
.venv/bin/python -m pip install --quiet ".[demo,test]"
.venv/bin/python -m pip install --quiet --no-deps -e ./core -e ./instrumentation -e .
