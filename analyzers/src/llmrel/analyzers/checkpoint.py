"""The analyzer checkpoint format: versioned, typed, data only (JSON validated by pydantic on load).

A checkpoint is one row for the engine (format version, drift settings, rule state, counters,
the tailing watermark) plus one row per drift stream that changed since the previous checkpoint,
all written in a single insert. Nothing in a checkpoint is ever executed: every field is a number,
a string or a list of them, and a row that does not validate is rejected as a whole
(`CheckpointError`); the caller logs it, counts it and starts from history instead.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

FORMAT_VERSION = 3
_MAX_BLOB = 64 << 20


class CheckpointError(ValueError):
    """A stored checkpoint that is not a valid checkpoint of this version."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


Stat = Annotated[list[int | float], Field(min_length=6, max_length=6)]  # ints stay exact (ns times)
Event = Annotated[list[int], Field(min_length=2, max_length=2)]


class MonitorState(_Model):
    n: int = Field(ge=0)
    base_n: int = Field(ge=0)
    base_mean: float
    base_m2: float = Field(ge=0)
    prior_mean: float | None
    prior_var: float = Field(ge=0)
    last_finding_n: int
    last_cost: float
    pending: list[float] = Field(max_length=64)
    stats: list[Stat] = Field(min_length=2, max_length=2)
    events: list[Event] = Field(max_length=64)


class StreamRow(_Model):
    format: Literal[3]
    config: str
    key: list[str] = Field(min_length=3, max_length=4)
    calls: int = Field(ge=0)
    cum_cost: float
    last_ns: int
    model_counts: dict[str, int] = Field(max_length=1000)
    model_reference: list[str] | None
    last_model: str = ""
    monitors: dict[str, MonitorState] = Field(max_length=32)


class TraceEntry(_Model):
    trace_id: str
    count: int
    cost: float
    last_ns: int
    fired: bool
    failed: list[Annotated[list[str], Field(min_length=2, max_length=2)]]
    tools: int


class WindowEntry(_Model):
    key: list[str]
    start: int
    values: Annotated[list[float], Field(min_length=3, max_length=3)]
    fired: bool


class RuleState(_Model):
    fingerprint: str
    traces: list[TraceEntry] | None = None
    windows: list[WindowEntry] | None = None
    late_dropped: int = 0


class EngineRow(_Model):
    format: Literal[3]
    config: str
    rules: dict[str, RuleState]
    newest_ns: int
    calls_seen: int = Field(ge=0)


_M = TypeVar("_M", bound=_Model)


def config_id(config: dict[str, Any]) -> str:
    """A short stable id of the drift settings: streams saved under other settings are not resumed."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=list).encode()).hexdigest()[:16]


def dump(model: _Model) -> str:
    return model.model_dump_json()


def _load(cls: type[_M], blob: str) -> _M:
    if len(blob) > _MAX_BLOB:
        raise CheckpointError(f"{cls.__name__}: {len(blob)} bytes, more than {_MAX_BLOB}")
    try:
        head = json.loads(blob)
    except ValueError as exc:
        raise CheckpointError(f"{cls.__name__}: not JSON ({exc.__class__.__name__})") from None
    if not isinstance(head, dict) or head.get("format") != FORMAT_VERSION:
        found = head.get("format") if isinstance(head, dict) else type(head).__name__
        raise CheckpointError(f"{cls.__name__}: format {found!r}, this version reads {FORMAT_VERSION}")
    try:
        return cls.model_validate_json(blob)
    except ValidationError as exc:
        raise CheckpointError(f"{cls.__name__}: {exc.error_count()} invalid fields, first: "
                              f"{exc.errors()[0]['loc']} {exc.errors()[0]['msg']}") from None


def load_engine(blob: str) -> EngineRow:
    """Raises: CheckpointError."""
    return _load(EngineRow, blob)


def load_stream(blob: str) -> StreamRow:
    """Raises: CheckpointError."""
    return _load(StreamRow, blob)
