#!/usr/bin/env bash
# Create .venv (Python >= 3.11.5) and install llmrel (core, server, app instrumentation) with test extras.
# Re-running is cheap: pip skips what is already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."
# Python >= 3.11.5 (earlier 3.11 releases match the redaction rules' possessive quantifiers wrongly):
# $PYTHON if given, else the first suitable of python3, python3.13, python3.12, python3.11.
suitable() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11, 5))' 2>/dev/null; }
if [ -z "${PYTHON:-}" ]; then
  for candidate in python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null && suitable "$candidate"; then PYTHON="$candidate"; break; fi
  done
fi
if [ -z "${PYTHON:-}" ] || ! suitable "$PYTHON"; then
  echo "install: llmrel needs Python >= 3.11.5 (set PYTHON=/path/to/python3); found: $(python3 -V 2>&1)" >&2
  exit 1
fi
if [ -x .venv/bin/python ] && ! suitable .venv/bin/python; then
  echo "install: .venv has Python $(.venv/bin/python -V 2>&1 | cut -d' ' -f2), older than 3.11.5: recreating it" >&2
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# `llmrel` names `llmrel-core` (and its `demo` extra `llmrel-instrumentation`) as path dependencies (`name @ file:///…`), which
# pip will not also take as editable in one command: resolve and install everything, then switch the
# three local packages to editable installs for development.
.venv/bin/python -m pip install --quiet ".[demo,test]"
.venv/bin/python -m pip install --quiet --no-deps -e ./core -e ./instrumentation -e .
