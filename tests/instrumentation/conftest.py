"""Fixtures for the app-side instrumentation tests: the LLM simulator, shared by a test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmrel.demo import Simulator, SimulatorConfig
from llmrel.demo.simulator import SimulatorServer


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(seed=11, latency_median_s=0.0, ttft_median_s=0.0, output_tokens_median=20,
                             output_tokens_sigma=0.2, tool_call_rate=0.0)
    with Simulator(config).run() as server:
        yield server
