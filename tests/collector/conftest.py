"""Fixtures for the tests that run the real collector built by `scripts/build-collector.sh`."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.collector.collector_harness import AUTH_TOKEN, REPO_ROOT, Collector, LlmrelServer


@pytest.fixture(scope="session")
def otelcol() -> Path:
    """The collector binary: built with ocb on the first run (minutes), then taken from the cache."""
    done = subprocess.run([str(REPO_ROOT / "scripts" / "build-collector.sh")], capture_output=True, text=True,
                          timeout=3600, check=False)
    assert done.returncode == 0, f"scripts/build-collector.sh failed:\n{done.stderr[-5000:]}"
    binary = Path(done.stdout.strip().splitlines()[-1])
    assert binary.is_file(), binary
    return binary


@pytest.fixture
def llmrel_server(tmp_path: Path) -> Iterator[LlmrelServer]:
    """An `llmrel serve` (not yet started) with bearer auth on, stopped after the test."""
    server = LlmrelServer(tmp_path, AUTH_TOKEN)
    yield server
    server.stop()


@pytest.fixture
def start_collector(otelcol: Path, tmp_path: Path) -> Iterator[Callable[..., Collector]]:
    """Start the collector on a shipped config: `start_collector("forward.yaml", env={...})`."""
    started: list[Collector] = []

    def start(config: str, env: dict[str, str], overrides: tuple[str, ...] = ()) -> Collector:
        collector = Collector(otelcol, config, tmp_path, env, overrides)
        started.append(collector)
        return collector.start()

    yield start
    for collector in started:
        collector.stop()
