"""Cost from genai-prices' data and the user price file; `reprice` on the real embedded store."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage, calc_price

from llmrel.calls_ingest import reprice
from llmrel.model import LLM_CALL_COLUMNS, LlmCall
from llmrel.price_file import PriceFileError, load_price_file, parse_price_file
from llmrel.pricing import PRICING_WARNING_ATTRIBUTE, Pricer

DAY_NS = 86_400 * 10**9
JUNE_2026_NS = int(datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp()) * 10**9


def make_call(**fields: Any) -> LlmCall:
    values: dict[str, Any] = {
        "timestamp_ns": JUNE_2026_NS, "trace_id": "ab" * 16, "span_id": "cd" * 8, "parent_span_id": "",
        "span_name": "chat", "service_name": "support-bot", "service_version": "", "environment": "prod",
        "provider": "openai",
        "operation": "chat", "model": "", "request_model": "", "response_model": "", "input_tokens": None,
        "output_tokens": None, "cached_input_tokens": None, "cache_creation_input_tokens": None,
        "reasoning_tokens": None, "cost_usd": None, "cost_status": "unpriced", "duration_ns": 1_000_000,
        "time_to_first_token_ns": None, "is_streaming": False, "finish_reason": "stop", "status_code": "Unset",
        "status_message": "", "error_type": "", "temperature": None, "top_p": None, "max_tokens": None,
        "tool_calls": 0, "tool_name": "", "response_id": "", "server_address": "", "conversation_id": "",
        "session_id": "", "user_id": "", "feature": "", "tenant": "", "input_text": "", "output_text": "",
        "convention": "genai-semconv", "attributes": {},
    }
    values.update(fields)
    if not values["model"]:
        values["model"] = values["request_model"] or values["response_model"]
    return LlmCall(**values)


def genai_prices_cost(model: str, provider: str, timestamp_ns: int, **usage: int) -> float:
    when = datetime.fromtimestamp(timestamp_ns / 1e9, UTC)
    result = calc_price(Usage(**usage), model, provider_id=provider, genai_request_timestamp=when)
    return float(result.total_price)


def test_known_model_priced_exactly_as_genai_prices():
    call = make_call(request_model="gpt-4o", response_model="gpt-4o-2024-08-06", input_tokens=1300,
                     cached_input_tokens=1024, output_tokens=60, reasoning_tokens=12)
    priced = Pricer().price(call)
    assert priced.cost_status == "priced"
    # $2.5 / $1.25 cached / $10 per million tokens in genai-prices' data for gpt-4o.
    assert priced.cost_usd == float(Decimal(276) * Decimal("2.5") / 10**6 + Decimal(1024) * Decimal("1.25") / 10**6
                                    + Decimal(60) * Decimal(10) / 10**6)
    assert priced.cost_usd == genai_prices_cost("gpt-4o-2024-08-06", "openai", JUNE_2026_NS, input_tokens=1300,
                                                cache_read_tokens=1024, output_tokens=60,
                                                output_reasoning_tokens=12)
    assert priced._replace(cost_usd=None, cost_status="unpriced") == call


def test_dated_and_tiered_prices_follow_the_call_timestamp():
    pricer = Pricer()
    tokens = {"input_tokens": 300_000, "cached_input_tokens": 50_000, "cache_creation_input_tokens": 10_000,
              "output_tokens": 2_000}
    january = int(datetime(2026, 1, 10, tzinfo=UTC).timestamp()) * 10**9
    costs = []
    for when in (january, JUNE_2026_NS):
        call = make_call(timestamp_ns=when, provider="anthropic", request_model="claude-sonnet-4-6", **tokens)
        priced = pricer.price(call)
        expected = genai_prices_cost("claude-sonnet-4-6", "anthropic", when, input_tokens=300_000,
                                     cache_read_tokens=50_000, cache_write_tokens=10_000, output_tokens=2_000)
        assert (priced.cost_status, priced.cost_usd) == ("priced", expected)
        costs.append(priced.cost_usd)
    assert costs[0] > costs[1]  # the long-context tier was dropped on 2026-03-13
    small = pricer.price(make_call(timestamp_ns=january, provider="anthropic", request_model="claude-sonnet-4-6",
                                   input_tokens=1000, output_tokens=10))
    assert small.cost_usd == genai_prices_cost("claude-sonnet-4-6", "anthropic", january, input_tokens=1000,
                                               output_tokens=10)


def test_semconv_provider_names_map_to_genai_prices_providers():
    call = make_call(provider="azure.ai.openai", request_model="gpt-4o", input_tokens=1000, output_tokens=100)
    assert Pricer().price(call).cost_usd == genai_prices_cost("gpt-4o", "azure", JUNE_2026_NS, input_tokens=1000,
                                                              output_tokens=100)


def test_unknown_model_or_provider_is_unpriced_not_zero():
    pricer = Pricer()
    for call in (make_call(request_model="gpt-chat", response_model="gpt-chat-2024-01-01", input_tokens=13),
                 make_call(provider="ibm.watsonx.ai", request_model="gpt-4o", input_tokens=13),
                 make_call(request_model="", input_tokens=13)):
        assert (pricer.price(call).cost_usd, pricer.price(call).cost_status) == (None, "unpriced")


def test_no_token_counts_is_no_usage():
    priced = Pricer().price(make_call(request_model="gpt-4o", status_code="Error", error_type="RateLimitError"))
    assert (priced.cost_usd, priced.cost_status) == (None, "no_usage")


def test_embeddings_with_input_tokens_only():
    priced = Pricer().price(make_call(operation="embeddings", request_model="text-embedding-3-small",
                                      input_tokens=4000))
    assert priced.cost_usd == genai_prices_cost("text-embedding-3-small", "openai", JUNE_2026_NS, input_tokens=4000)


def test_inconsistent_counts_are_unpriced_with_a_warning():
    priced = Pricer().price(make_call(request_model="gpt-4o", input_tokens=10, cached_input_tokens=20))
    assert (priced.cost_usd, priced.cost_status) == (None, "unpriced")
    assert "exceed" in priced.attributes[PRICING_WARNING_ATTRIBUTE]


def test_lookups_are_cached_per_provider_and_model():
    pricer = Pricer()
    for n in range(1, 50):
        pricer.price(make_call(request_model="gpt-4o", input_tokens=n, output_tokens=n))
    pricer.price(make_call(request_model="nope", input_tokens=1))
    pricer.price(make_call(request_model="nope", input_tokens=2))
    assert pricer.cache_size() == 2


PRICE_FILE = """\
aliases:
  prod-4o:                 # an Azure OpenAI deployment name
    model: gpt-4o
    provider: openai
  support-ft: {model: "ft:gpt-4o-mini:acme:support:abc123"}
prices:
  ft:gpt-4o-mini:acme:support:abc123:
    input_mtok: 0.30
    output_mtok: 1.20
    cache_read_mtok: 0.15
  llama-3.1-70b-local:
    input_mtok: 0
    output_mtok: 0
"""


@pytest.fixture
def price_file(tmp_path: Path) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(PRICE_FILE)
    return path


def test_alias_prices_a_deployment_name_as_the_real_model(price_file):
    pricer = Pricer(load_price_file(price_file))
    call = make_call(provider="azure.ai.openai", request_model="prod-4o", input_tokens=1000, output_tokens=100)
    assert pricer.price(call).cost_usd == genai_prices_cost("gpt-4o", "openai", JUNE_2026_NS, input_tokens=1000,
                                                            output_tokens=100)
    # An unknown response model falls back to the aliased request model.
    call = call._replace(response_model="prod-4o-v2")
    assert pricer.price(call).cost_status == "priced"


def test_custom_prices_for_fine_tuned_and_self_hosted_models(price_file, settings):
    pricer = Pricer.from_settings(settings.model_copy(update={"prices_file": price_file}))
    call = make_call(request_model="support-ft", input_tokens=2000, cached_input_tokens=1000, output_tokens=500)
    expected = Decimal(1000) * Decimal("0.30") / 10**6 + Decimal(1000) * Decimal("0.15") / 10**6 \
        + Decimal(500) * Decimal("1.20") / 10**6
    assert pricer.price(call).cost_usd == float(expected)
    direct = make_call(response_model="FT:gpt-4o-mini:acme:support:abc123", input_tokens=1, output_tokens=1)
    assert pricer.price(direct).cost_status == "priced"
    local = pricer.price(make_call(provider="ollama", request_model="llama-3.1-70b-local", input_tokens=9))
    assert (local.cost_usd, local.cost_status) == (0.0, "priced")


def test_bad_price_file_lists_every_problem_with_its_line():
    text = """\
aliases:
  prod-4o:
    provider: openai
  other: gpt-4o
  prod-4o: {model: x}
prices:
  my-model:
    input_mtok: -1
    output_mtok: cheap
    per_request: 0.1
  empty-model: {}
currency: EUR
"""
    with pytest.raises(PriceFileError) as raised:
        parse_price_file(text, "prices.yaml")
    assert str(raised.value).splitlines() == [
        "prices.yaml:3: aliases.prod-4o: 'model' is required",
        "prices.yaml:4: aliases.other: must be a mapping",
        "prices.yaml:5: aliases.prod-4o: duplicate key",
        "prices.yaml:8: prices.my-model.input_mtok: must be a non-negative number (USD per million tokens)",
        "prices.yaml:9: prices.my-model.output_mtok: must be a non-negative number (USD per million tokens)",
        "prices.yaml:10: prices.my-model: unknown price 'per_request' (expected one of input_mtok, output_mtok, "
        "cache_read_mtok, cache_write_mtok, output_reasoning_mtok)",
        "prices.yaml:11: prices.empty-model: give at least one price",
        "prices.yaml:12: unknown key 'currency' (expected one of aliases, prices)",
    ]


def test_price_file_that_is_not_yaml_or_not_a_mapping(tmp_path):
    with pytest.raises(PriceFileError, match=r"^prices.yaml:2: not valid YAML"):
        parse_price_file("aliases:\n\tprod-4o: {model: gpt-4o}\n", "prices.yaml")
    with pytest.raises(PriceFileError, match=r"^prices.yaml:1: top level must be a mapping"):
        parse_price_file("- gpt-4o\n", "prices.yaml")
    with pytest.raises(PriceFileError, match="cannot read"):
        load_price_file(tmp_path / "missing.yaml")
    assert parse_price_file("") == parse_price_file("# nothing yet\n")


def read_calls(store) -> list[tuple]:
    return store.query("SELECT SpanId, CostUSD, CostStatus, toUnixTimestamp64Nano(Timestamp), Attributes "
                       "FROM llm_calls ORDER BY SpanId").result_rows


def test_reprice_recomputes_stored_costs_in_the_range(store, price_file):
    before = Pricer()
    calls = [
        make_call(span_id=f"{i:016x}", timestamp_ns=JUNE_2026_NS + i * DAY_NS // 2 + 123, request_model=model,
                  input_tokens=1000, output_tokens=100, attributes={"k": str(i)})
        for i, model in enumerate(["support-ft", "gpt-4o", "support-ft", "support-ft", "mystery"])
    ]
    rows = [before.price(call) for call in calls]
    assert [r.cost_status for r in rows] == ["unpriced", "priced", "unpriced", "unpriced", "unpriced"]
    store.insert("llm_calls", rows, column_names=list(LLM_CALL_COLUMNS))

    after = Pricer(load_price_file(price_file))
    until = JUNE_2026_NS + 3 * DAY_NS // 2 + 123  # excludes the call at index 3
    assert reprice(store, after, JUNE_2026_NS, until) == 2  # index 0 and 2; gpt-4o unchanged, index 4 unknown

    expected_cost = float(Decimal(1000) * Decimal("0.30") / 10**6 + Decimal(100) * Decimal("1.20") / 10**6)
    stored = read_calls(store)  # no FINAL: the touched partitions were merged
    assert [(r[0], r[1], r[2]) for r in stored] == [
        ("0000000000000000", expected_cost, "priced"),
        ("0000000000000001", rows[1].cost_usd, "priced"),
        ("0000000000000002", expected_cost, "priced"),
        ("0000000000000003", None, "unpriced"),
        ("0000000000000004", None, "unpriced"),
    ]
    assert [(r[3], r[4]) for r in stored] == [(c.timestamp_ns, c.attributes) for c in calls]
    assert reprice(store, after, JUNE_2026_NS) == 1  # the rest of the range: index 3
    assert reprice(store, after, JUNE_2026_NS) == 0


def test_call_without_provider_is_priced_by_model_name():
    call = make_call(provider="", operation="embeddings", request_model="text-embedding-3-small", input_tokens=6)
    assert Pricer().price(call).cost_usd == genai_prices_cost("text-embedding-3-small", "openai", JUNE_2026_NS,
                                                              input_tokens=6)


def test_custom_reasoning_and_cache_write_prices():
    prices = parse_price_file("prices:\n  r1-local:\n    input_mtok: 1\n    cache_write_mtok: 2\n"
                              "    output_mtok: 4\n    output_reasoning_mtok: 8\n")
    call = make_call(request_model="R1-Local", input_tokens=100, cache_creation_input_tokens=40, output_tokens=50,
                     reasoning_tokens=30)
    expected = (Decimal(60) * 1 + Decimal(40) * 2 + Decimal(20) * 4 + Decimal(30) * 8) / 10**6
    assert Pricer(prices).price(call).cost_usd == float(expected)


def test_every_model_in_genai_prices_matches_calc_price_on_random_usage():
    """Seeded sample over genai-prices' whole bundled catalogue, dates and tiers included."""
    from genai_prices.data_snapshot import get_snapshot

    rng = random.Random(1126)
    pairs = [(p.id, m.id) for p in get_snapshot().providers for m in p.models]
    pricer = Pricer()
    checked = 0
    for provider, model in rng.sample(pairs, 300):
        when = int(datetime(2025, 6, 1, tzinfo=UTC).timestamp() * 10**9) + rng.randrange(0, 600 * DAY_NS)
        inputs = rng.choice([0, 900, 150_000, 250_000, 1_200_000])
        counts = {"input_tokens": inputs, "cache_read_tokens": rng.randint(0, inputs // 3),
                  "cache_write_tokens": rng.randint(0, inputs // 3), "output_tokens": rng.randint(1, 9000)}
        counts["output_reasoning_tokens"] = rng.randint(0, counts["output_tokens"])
        call = make_call(timestamp_ns=when, provider=provider, request_model=model,
                         input_tokens=counts["input_tokens"], cached_input_tokens=counts["cache_read_tokens"],
                         cache_creation_input_tokens=counts["cache_write_tokens"],
                         output_tokens=counts["output_tokens"], reasoning_tokens=counts["output_reasoning_tokens"])
        try:
            expected = genai_prices_cost(model, provider, when, **counts)
        except (LookupError, ValueError):
            assert pricer.price(call).cost_status == "unpriced"
            continue
        assert pricer.price(call).cost_usd == expected, (provider, model)
        checked += 1
    assert checked > 250


def test_grouped_by_the_requested_model_priced_by_the_exact_response_model():
    call = make_call(request_model="gpt-4o", response_model="gpt-4o-2024-05-13", input_tokens=1000,
                     output_tokens=100)
    assert call.model == "gpt-4o"
    priced = Pricer().price(call)
    exact = genai_prices_cost("gpt-4o-2024-05-13", "openai", JUNE_2026_NS, input_tokens=1000, output_tokens=100)
    assert priced.cost_usd == exact
    assert exact != genai_prices_cost("gpt-4o", "openai", JUNE_2026_NS, input_tokens=1000, output_tokens=100)
