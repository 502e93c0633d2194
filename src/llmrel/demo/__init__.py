"""Local OpenAI-compatible LLM simulator and demo traffic (`llmrel demo`)."""

from __future__ import annotations

from llmrel.demo.config import Degradation, SimulatorConfig
from llmrel.demo.simulator import Simulator, SimulatorServer

__all__ = ["Degradation", "Simulator", "SimulatorConfig", "SimulatorServer"]
