"""The single-pass attribute scan and the JSON fast path agree with their plain definitions.

`scan_attributes` must pick, for every column, what trying the table's keys in priority order
would pick, whatever order the attributes arrive in; `parse_json` must decode exactly what
`json.loads` decodes. Both are checked on seeded random inputs against those definitions.
"""

from __future__ import annotations

import json
import random

import pytest

from llmrel.normalize import tables as t
from llmrel.normalize.scan import INPUT_TOKENS, KEY_SLOTS, PICKED_KEYS, scan_attributes
from llmrel.normalize.values import parse_json

COLUMN_AND_CONTENT_KEYS = sorted(t.COLUMN_KEYS | t.CONTENT_KEYS)
OTHER_KEYS = ["http.method", "traceloop.workflow.name", "gen_ai.prompt.0.content", "gen_ai.prompt.x",
              "llm.input_messages.3.message.role", "embedding.embeddings.0.embedding.vector", "custom"]


def first_non_empty(attrs: dict[str, str], keys: tuple[str, ...]) -> tuple[str, str | None]:
    return next(((k, attrs[k]) for k in keys if attrs.get(k)), ("", None))


def random_attrs(rng: random.Random) -> dict[str, str]:
    keys = rng.sample(COLUMN_AND_CONTENT_KEYS, rng.randint(0, 25)) + rng.sample(OTHER_KEYS, rng.randint(0, 4))
    rng.shuffle(keys)
    return {key: rng.choice(("", "0", "7", "x", "openai")) for key in keys}


def test_every_picked_key_has_one_slot_and_column_keys_are_all_known():
    assert {k for keys in PICKED_KEYS for k in keys} <= t.COLUMN_KEYS
    assert set(KEY_SLOTS) == t.COLUMN_KEYS | t.CONTENT_KEYS
    for slot, keys in enumerate(PICKED_KEYS):
        assert [KEY_SLOTS[k] for k in keys] == [(slot, rank) for rank in range(len(keys))]


def test_scan_picks_like_trying_the_keys_in_priority_order():
    rng = random.Random(20261126)
    for _ in range(3000):
        attrs = random_attrs(rng)
        values, keys, leftover, indexed = scan_attributes(attrs)
        for slot, priority in enumerate(PICKED_KEYS):
            assert (keys[slot], values[slot]) == first_non_empty(attrs, priority), (attrs, priority)
        assert leftover == {k: v for k, v in attrs.items() if k not in KEY_SLOTS}
        assert list(leftover) == [k for k in attrs if k not in KEY_SLOTS]
        assert indexed == [k for k in attrs if k.startswith(t.CONTENT_PREFIXES)]


def test_lower_priority_value_never_replaces_a_higher_one_whatever_the_order():
    low_first = {"llm.usage.prompt_tokens": "5", "gen_ai.usage.input_tokens": "9"}
    high_first = dict(reversed(low_first.items()))
    for attrs in (low_first, high_first):
        values, keys, _, _ = scan_attributes(attrs)
        assert (keys[INPUT_TOKENS], values[INPUT_TOKENS]) == ("gen_ai.usage.input_tokens", "9")
    values, keys, _, _ = scan_attributes({"gen_ai.usage.input_tokens": "", "llm.usage.prompt_tokens": "5"})
    assert (keys[INPUT_TOKENS], values[INPUT_TOKENS]) == ("llm.usage.prompt_tokens", "5")  # empty is absent


@pytest.mark.parametrize("raw", [
    '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]', '{"a": [1, 2.5, null, true]}',
    '[1] ', '[1]\n\t', ' [1]', '\ufeff[1]', '[1] x', '[1', '[', '{', '{"a":}', '[NaN, Infinity]', '{"a": 1}{}',
    '"text"', '7', 'null', '[]', '{}', '[' * 100_000, '["\\ud800"]', '[1]\u00a0', '{"k": 1, "k": 2}',
])
def test_parse_json_decodes_exactly_what_json_loads_decodes(raw):
    try:
        expected = json.loads(raw)
    except (ValueError, RecursionError):
        expected = None
    assert repr(parse_json(raw)) == repr(expected)


def test_parse_json_matches_json_loads_on_random_documents():
    rng = random.Random(7)
    alphabet = '[]{}",:0123456789.eE-+ \n\ttruefalsnul\\u"ab'
    for _ in range(20000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        raw = rng.choice(("[", "{")) + raw if rng.random() < 0.7 else raw
        try:
            expected = json.loads(raw)
        except (ValueError, RecursionError):
            expected = None
        assert repr(parse_json(raw)) == repr(expected), raw
