"""Planted data for the intelligence layer, written to the real embedded store."""

from __future__ import annotations

from collections.abc import Sequence

from clickhouse_connect.driver.client import Client

from llmrel.model import LLM_CALL_COLUMNS, LlmCall
from tests.analyzers.helpers import T0, make_call

__all__ = ["T0", "insert_calls", "make_call"]


def insert_calls(client: Client, calls: Sequence[LlmCall]) -> None:
    client.insert("llm_calls", list(calls), column_names=list(LLM_CALL_COLUMNS))
