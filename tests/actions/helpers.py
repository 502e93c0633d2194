"""Running breaker test apps under `opentelemetry-instrument` and waiting on the breaker API."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.instrumentation.helpers import INSTRUMENT, NON_LLM_INSTRUMENTATIONS, clean_env

APP = Path(__file__).with_name("breaker_app.py")


@dataclass
class App:
    process: subprocess.Popen[str]
    stop_file: Path
    stdout: str = ""
    stderr: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)

    def stop(self, timeout_s: float = 60) -> App:
        self.stop_file.touch()
        self.stdout, self.stderr = self.process.communicate(timeout=timeout_s)
        assert self.process.returncode == 0, self.stderr
        self.calls = [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]
        return self


def start_app(base_url: str, stop_file: Path, env: Mapping[str, str], model: str = "gpt-4o",
              interval_s: float = 0.1, max_calls: int | None = None) -> App:
    """`breaker_app.py` under `opentelemetry-instrument` with the llmrel distro and `env`."""
    command = [str(INSTRUMENT), sys.executable, str(APP), base_url, str(stop_file), model, str(interval_s)]
    if max_calls is not None:
        command.append(str(max_calls))
    full_env = clean_env({"OTEL_PYTHON_DISTRO": "llmrel", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS":
                          NON_LLM_INSTRUMENTATIONS, "OTEL_BSP_SCHEDULE_DELAY": "200", **env})
    process = subprocess.Popen(command, env=full_env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return App(process, stop_file)


def breaker(api: str, scope: str) -> dict[str, Any] | None:
    views = httpx.get(f"{api}/api/v1/breakers", timeout=10).json()["breakers"]
    return next((v for v in views if v["scope"] == scope), None)


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, interval_s: float = 0.05) -> float:
    """Poll `check` until it returns something truthy; the time (time.time()) it did. Fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return time.time()
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
