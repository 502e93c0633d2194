"""The shared core type-checks under `mypy --strict`: the seams every layer builds on stay typed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STRICT = ["core/src/llmrel_core", "src/llmrel/model.py", "src/llmrel/durations.py", "src/llmrel/seams.py",
          "src/llmrel/calls_ingest.py", "src/llmrel/content_policy.py", "src/llmrel/native_rows.py",
          "src/llmrel/span_rows.py", "src/llmrel/findings.py", "src/llmrel/call_traits.py"]


def test_core_is_strictly_typed():
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", *STRICT], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "Success" in done.stdout


def test_packages_declare_their_types():
    for package in ("src/llmrel", "core/src/llmrel_core", "instrumentation/src/llmrel_instrumentation"):
        assert (ROOT / package / "py.typed").is_file(), package
