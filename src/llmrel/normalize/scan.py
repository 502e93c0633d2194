"""One pass over a span's attributes: picked column values, leftover attributes, indexed content keys.

Every attribute key is looked up once in a table built from `tables` (key -> column slot and
priority rank) instead of probing each priority tuple with `dict.get`. For each column slot the
non-empty value of the best-ranked key present wins, exactly like trying the keys in order.
"""

from __future__ import annotations

from llmrel.normalize import tables as t

PICKED_KEYS: tuple[tuple[str, ...], ...] = (
    t.PROVIDER_KEYS, t.REQUEST_MODEL_KEYS, t.RESPONSE_MODEL_KEYS, t.INPUT_TOKENS_KEYS, t.OUTPUT_TOKENS_KEYS,
    t.CACHE_READ_KEYS, t.CACHE_CREATION_KEYS, t.REASONING_KEYS, t.STREAMING_KEYS, t.TEMPERATURE_KEYS,
    t.TOP_P_KEYS, t.MAX_TOKENS_KEYS, t.FINISH_REASON_KEYS, t.TTFT_SECONDS_KEYS, t.ERROR_TYPE_KEYS,
    t.TOOL_NAME_KEYS, t.RESPONSE_ID_KEYS, t.SERVER_ADDRESS_KEYS, t.API_BASE_KEYS, t.CONVERSATION_ID_KEYS,
    t.SESSION_ID_KEYS, t.USER_ID_KEYS, t.FEATURE_KEYS, t.TENANT_KEYS,
)
"""Priority tuples read by picking; the position of each is its slot below."""

(PROVIDER, REQUEST_MODEL, RESPONSE_MODEL, INPUT_TOKENS, OUTPUT_TOKENS, CACHE_READ, CACHE_CREATION, REASONING,
 STREAMING, TEMPERATURE, TOP_P, MAX_TOKENS, FINISH_REASON, TTFT_SECONDS, ERROR_TYPE, TOOL_NAME, RESPONSE_ID,
 SERVER_ADDRESS, API_BASE, CONVERSATION_ID, SESSION_ID, USER_ID, FEATURE, TENANT) = range(len(PICKED_KEYS))

_DROPPED = len(PICKED_KEYS)  # slot of column and content keys that are not picked: read elsewhere, then dropped
_SLOT_COUNT = _DROPPED + 1
_UNRANKED = max(map(len, PICKED_KEYS))


def _key_slots() -> dict[str, tuple[int, int]]:
    slots = {key: (_DROPPED, 0) for key in t.COLUMN_KEYS | t.CONTENT_KEYS}
    for slot, keys in enumerate(PICKED_KEYS):
        for rank, key in enumerate(keys):
            if slots.get(key, (_DROPPED,))[0] != _DROPPED:
                raise ValueError(f"{key} feeds two columns")
            slots[key] = (slot, rank)
    return slots


KEY_SLOTS: dict[str, tuple[int, int]] = _key_slots()
"""Attribute key -> `(slot, rank)`; a key absent here stays in the row's leftover `attributes`."""


Scan = tuple[list[str | None], list[str], dict[str, str], list[str]]


def scan_attributes(attrs: dict[str, str]) -> Scan:
    """Sort every attribute into its column slot, the leftover attributes or the indexed content keys.

    Returns:
        `(values, keys, leftover, indexed)`: by slot, the winning non-empty value (or None) and its
        key (or ""); the attributes that are neither columns nor content, in span order; the keys
        starting with an indexed content prefix (`gen_ai.prompt.`, ...), in span order.
    """
    values: list[str | None] = [None] * _SLOT_COUNT
    keys = [""] * _SLOT_COUNT
    ranks = [_UNRANKED] * _SLOT_COUNT
    leftover: dict[str, str] = {}
    indexed: list[str] = []
    slot_of = KEY_SLOTS.get
    prefixes = t.CONTENT_PREFIXES
    for key, value in attrs.items():
        role = slot_of(key)
        if role is None:
            leftover[key] = value
            if key.startswith(prefixes):
                indexed.append(key)
        elif value:
            slot, rank = role
            if rank < ranks[slot]:
                ranks[slot] = rank
                values[slot] = value
                keys[slot] = key
    return values, keys, leftover, indexed
