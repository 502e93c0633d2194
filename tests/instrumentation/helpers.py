"""Run the test app under `opentelemetry-instrument` with environment variables only, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP = Path(__file__).with_name("llm_app.py")
INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")
# Library instrumentations that would add HTTP spans; the tests look at LLM spans.
NON_LLM_INSTRUMENTATIONS = "httpx,requests,urllib3,asyncio,threading,logging,fastapi,starlette,asgi"


@dataclass(frozen=True)
class AppRun:
    stdout: str
    stderr: str
    seconds: float


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The test process's environment without any OTel/llmrel settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "TRACELOOP_", "LLMREL_", "OPENINFERENCE_"))}
    env.update(extra)
    return env


def run_app(base_url: str, scenario: str, env: Mapping[str, str], instrumented: bool = True,
            timeout: float = 120) -> AppRun:
    """Run `llm_app.py` (under `opentelemetry-instrument` when `instrumented`) and return its output."""
    command = [sys.executable, str(APP), base_url, scenario]
    if instrumented:
        command = [str(INSTRUMENT), *command]
    env = clean_env({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": NON_LLM_INSTRUMENTATIONS, **env})
    started = time.monotonic()
    done = subprocess.run(command, env=env, text=True, capture_output=True, timeout=timeout)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    return AppRun(done.stdout, done.stderr, seconds)
