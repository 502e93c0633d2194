"""The server installs and runs without the app-side package: no `llmrel-instrumentation`, OTel SDK,
instrumentations or `openai` in its required dependencies, and every server module imports with
those blocked (the demo, which needs them, is the `demo` extra)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import requires

from packaging.requirements import Requirement

APP_SIDE = ("llmrel-instrumentation", "openai", "opentelemetry-sdk", "opentelemetry-instrumentation",
            "opentelemetry-distro", "traceloop-sdk")


def test_required_dependencies_leave_out_the_app_side():
    required = [Requirement(r) for r in requires("llmrel") or [] if "extra ==" not in r]
    names = {r.name.lower() for r in required}
    assert "llmrel-core" in names and "clickhouse-connect" in names
    assert not {n for n in names if n.startswith(APP_SIDE)}


_IMPORT_EVERYTHING_BLOCKED = """
import importlib, pkgutil, sys
BLOCKED = ("llmrel_instrumentation", "openai", "opentelemetry.sdk", "opentelemetry.instrumentation", "traceloop")

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.startswith(BLOCKED):
            raise ImportError(f"app-side module {name} imported by the server")
        return None

sys.meta_path.insert(0, Block())
import llmrel
skipped = ("llmrel.demo", "llmrel.cli.demo")
names = [m.name for m in pkgutil.walk_packages(llmrel.__path__, "llmrel.") if not m.name.startswith(skipped)]
for name in names:
    importlib.import_module(name)
from llmrel.cli import app
print(len(names))
"""


def test_every_server_module_imports_without_the_app_side():
    done = subprocess.run([sys.executable, "-c", _IMPORT_EVERYTHING_BLOCKED], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) > 50  # receiver, analyzers, actions, grafana, core modules
