"""One writer of `llm_calls`: only `llmrel.calls_ingest` inserts into it, whichever way spans arrive
(the receiver over OTLP, `llmrel analyze` over spans another writer stored). The analyzers read calls
and write findings: they never import the normalizer, pricing or the content policy themselves."""

from __future__ import annotations

import re

import pytest

from .test_import_direction import MODULES, imported

OWNER = "llmrel.calls_ingest"
# an insert whose table is `llm_calls`: SQL text, or a client/helper call naming the table (quoted or
# through a constant), e.g. `INSERT INTO llm_calls`, `client.insert("llm_calls", ...)`, `raw_insert(CALLS_TABLE`
_INSERTS_CALLS = re.compile(
    r"INSERT\s+INTO\s+[`\"]?(?:\w+[`\"]?\.[`\"]?)?llm_calls\b"
    r"|insert\w*\(\s*(?:table\s*=\s*)?(?:[\"']llm_calls[\"']|CALLS_TABLE\b)",
    re.IGNORECASE)
_CALL_MAKING = ("llmrel.normalize", "llmrel.pricing", "llmrel.price_file", "llmrel.content_policy",
                "llmrel.calls_ingest")


def test_the_pattern_sees_every_way_of_writing_an_insert():
    for text in ('client.insert("llm_calls", rows)', "self._insert('llm_calls', cols, blocks)",
                 'client.raw_insert(CALLS_TABLE, cols, insert_block=body)', "INSERT INTO llm_calls (TraceId)",
                 "insert into `db`.`llm_calls` FORMAT Native", 'client.insert(table="llm_calls", data=rows)'):
        assert _INSERTS_CALLS.search(text), text
    for text in ("SELECT TraceId FROM llm_calls", 'client.insert("llm_findings", rows)',
                 "INSERT INTO llm_calls_archive"):
        assert not _INSERTS_CALLS.search(text), text


def test_the_owner_is_where_the_inserts_are():
    owner = dict(MODULES)[OWNER]
    # the receiver's encoded rows, stored spans' calls, repriced calls
    assert len(_INSERTS_CALLS.findall(owner.read_text())) == 3


@pytest.mark.parametrize(("name", "path"), MODULES, ids=[m[0] for m in MODULES])
def test_no_other_module_inserts_calls(name, path):
    if name != OWNER:
        assert _INSERTS_CALLS.findall(path.read_text()) == []


@pytest.mark.parametrize(("name", "path"), [m for m in MODULES if m[0].startswith("llmrel.analyzers")],
                         ids=[m[0] for m in MODULES if m[0].startswith("llmrel.analyzers")])
def test_analyzers_do_not_make_calls(name, path):
    assert sorted(t for t in imported(path) if t.startswith(_CALL_MAKING)) == []
