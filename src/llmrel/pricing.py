"""Cost of each `LlmCall` in USD from genai-prices' bundled data plus the user's price file.

`Pricer.price` runs for every received call, so everything that does not depend on the token
counts is resolved once per (provider, model) and cached: the genai-prices model, and for each
of its (dated) price sets the per-token coefficients. genai-prices prices tokens linearly once
the tier is known (cached-read and cache-write tokens are part of `input_tokens`, reasoning
tokens part of `output_tokens`), so a call costs a handful of `Decimal` multiplications and
the result is exactly what `genai_prices.calc_price` returns.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from genai_prices import Usage
from genai_prices.data_snapshot import DataSnapshot, get_snapshot
from genai_prices.types import ModelInfo, ModelPrice, TieredPrices

from llmrel.model import LlmCall
from llmrel.price_file import PriceFile, load_price_file

if TYPE_CHECKING:
    from llmrel.config import Settings

PRICED = "priced"
UNPRICED = "unpriced"
NO_USAGE = "no_usage"
PRICING_WARNING_ATTRIBUTE = "llmrel.pricing.warning"

# Calls whose cost is unknown, as conditions on `llm_calls` for every report and dashboard: a model
# without a price (`unpriced`), or a successful call that reported no token counts (`no_usage`, e.g. a
# stream without `include_usage`), which was billed an unknown amount. A failed call without usage is
# known to cost nothing: providers do not bill rejected requests.
UNPRICED_SQL = "CostStatus = 'unpriced'"
USAGE_UNKNOWN_SQL = "(CostStatus = 'no_usage' AND StatusCode != 'Error')"
COST_UNKNOWN_SQL = f"({UNPRICED_SQL} OR {USAGE_UNKNOWN_SQL})"

# `gen_ai.provider.name` values to genai-prices provider ids, where the names differ.
PRICE_PROVIDERS: dict[str, str] = {
    "azure.ai.openai": "azure", "azure.ai.inference": "azure", "aws.bedrock": "aws", "gcp.gemini": "google",
    "gcp.vertex_ai": "google", "gcp.gen_ai": "google", "mistral_ai": "mistral", "x_ai": "x-ai",
}

# Providers tried, in order, for a call that names no provider (e.g. a LangChain embedding span).
UNNAMED_PROVIDER_ORDER: tuple[str, ...] = ("openai", "anthropic", "google", "mistral", "x-ai", "deepseek",
                                           "cohere")

MAX_CACHED_MODELS = 10_000
_MILLION = 1_000_000
# Usage keys of genai-prices for the token counts an `LlmCall` carries.
_USAGE_KEYS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "output_reasoning_tokens")
# Each basis usage adds one unit on top of its parent (None: on top of nothing).
_BASIS: tuple[tuple[str, str | None], ...] = (
    ("input_tokens", None), ("cache_read_tokens", "input_tokens"), ("cache_write_tokens", "input_tokens"),
    ("output_tokens", None), ("output_reasoning_tokens", "output_tokens"),
)


@dataclass(frozen=True)
class _Coefficients:
    """Cost = constant + Σ coefficient x count, for one resolved (untiered) price set."""

    constant: Decimal
    per_token: tuple[Decimal, Decimal, Decimal, Decimal, Decimal]

    @classmethod
    def of(cls, price: ModelPrice) -> _Coefficients:
        def total(**usage: int) -> Decimal:
            return price.calc_price(Usage(**usage))["total_price"]

        constant = total()
        parents: dict[str, Decimal] = {}
        per_token = []
        for key, parent in _BASIS:
            usage = {key: _MILLION} if parent is None else {parent: _MILLION, key: _MILLION}
            cost = total(**usage) - constant
            parents[key] = cost
            per_token.append((cost - (parents[parent] if parent else 0)) / _MILLION)
        return cls(constant, tuple(per_token))  # type: ignore[arg-type]

    def cost(self, counts: tuple[int, int, int, int, int]) -> Decimal:
        c = self.per_token
        return (self.constant + c[0] * counts[0] + c[1] * counts[1] + c[2] * counts[2]
                + c[3] * counts[3] + c[4] * counts[4])


class _Rate:
    """Prices of one model: fixed, dated (conditional) and/or tiered by input tokens."""

    def __init__(self, model: ModelInfo | None, fixed: ModelPrice | None = None) -> None:
        self._model = model
        self._fixed = fixed if fixed is not None else (model.prices if isinstance(model.prices, ModelPrice)
                                                       else None)
        # Values keep their ModelPrice alive, so an id() key cannot be reused while cached.
        self._tiers: dict[int, tuple[ModelPrice, list[int]]] = {}
        self._coefficients: dict[tuple[int, int], tuple[ModelPrice, _Coefficients | None]] = {}

    def cost(self, counts: tuple[int, int, int, int, int], timestamp_ns: int) -> Decimal:
        price = self._fixed
        if price is None:
            assert self._model is not None
            price = self._model.get_prices(datetime.fromtimestamp(timestamp_ns / 1e9, UTC))
        tiers = self._tiers.get(id(price))
        if tiers is None:
            tiers = self._tiers[id(price)] = (price, _tier_starts(price))
        starts = tiers[1]
        tier = bisect.bisect_left(starts, counts[0]) if starts else 0
        key = (id(price), tier)
        cached = self._coefficients.get(key)
        if cached is None:
            try:
                coefficients = _Coefficients.of(_untiered(price, starts, tier))
            except ValueError:  # a price set genai-prices cannot split per token: price each call
                coefficients = None
            cached = self._coefficients[key] = (price, coefficients)
        if cached[1] is None:
            usage = Usage(**{k: n for k, n in zip(_USAGE_KEYS, counts, strict=True) if n})
            return price.calc_price(usage)["total_price"]
        return cached[1].cost(counts)


class Pricer:
    """Prices `LlmCall`s; caches per (provider, model), safe to share across threads.

    Args:
        price_file: user aliases and custom prices (see `llmrel.price_file`).
        snapshot: genai-prices data; the bundled snapshot by default (no network).
    """

    def __init__(self, price_file: PriceFile | None = None, snapshot: DataSnapshot | None = None) -> None:
        self.price_file = price_file or PriceFile()
        self.snapshot = snapshot or get_snapshot()
        self._rates: dict[tuple[str, str, str], _Rate | None] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Pricer:
        """A pricer with `settings.prices_file` loaded.

        Raises:
            PriceFileError: listing every problem in the price file.
        """
        return cls(load_price_file(settings.prices_file) if settings.prices_file else None)

    def price(self, call: LlmCall) -> LlmCall:
        """`call` with `cost_usd` and `cost_status` (`priced`, `unpriced` or `no_usage`) set."""
        raw = (call.input_tokens, call.cached_input_tokens, call.cache_creation_input_tokens,
               call.output_tokens, call.reasoning_tokens)
        if all(n is None for n in raw):
            return call._replace(cost_usd=None, cost_status=NO_USAGE)
        # The response model first: it names the exact (dated) model that served the call, while
        # `model` is the requested one the call is grouped by.
        key = (call.provider, call.response_model, call.request_model or call.model)
        rate = self._rates.get(key, _MISSING)
        if rate is _MISSING:
            if len(self._rates) >= MAX_CACHED_MODELS:  # bounded memory under arbitrary model names
                self._rates.clear()
            rate = self._rates[key] = self._resolve(*key)
        if rate is None:
            return call._replace(cost_usd=None, cost_status=UNPRICED)
        counts = tuple(n or 0 for n in raw)
        if counts[1] + counts[2] > counts[0] or counts[4] > counts[3]:
            return _unpriced_with_warning(call, "cached/cache-write tokens exceed input tokens, or reasoning "
                                                "tokens exceed output tokens")
        try:
            cost = rate.cost(counts, call.timestamp_ns)  # type: ignore[union-attr, arg-type]
        except ValueError as exc:  # genai-prices rejects this usage for this model's price set
            return _unpriced_with_warning(call, str(exc))
        return call._replace(cost_usd=float(cost), cost_status=PRICED)

    def _resolve(self, provider: str, response_model: str, request_model: str) -> _Rate | None:
        """The rate for the first of (response model, request model) that an alias, a custom price or
        genai-prices knows."""
        for name in dict.fromkeys(n for n in (response_model, request_model) if n):
            alias = self.price_file.aliases.get(name.lower())
            target_model = alias.model if alias else name
            target_provider = alias.provider if alias and alias.provider else provider
            custom = self.price_file.prices.get(target_model.lower())
            if custom is not None:
                return _Rate(None, ModelPrice(**custom))
            found = self._lookup(target_provider, target_model)
            if found is not None:
                return _Rate(found)
        return None

    def _lookup(self, provider: str, model: str) -> ModelInfo | None:
        """genai-prices' model for (provider, model); without a provider, the model-name match,
        then the first-party providers in `UNNAMED_PROVIDER_ORDER`."""
        provider_id = PRICE_PROVIDERS.get(provider, provider)
        candidates = (provider_id,) if provider_id else (None, *UNNAMED_PROVIDER_ORDER)
        for candidate in candidates:
            try:
                return self.snapshot.find_provider_model(model, None, candidate, None)[1]
            except LookupError:
                continue
        return None

    def cache_size(self) -> int:
        """Number of (provider, model) pairs resolved so far."""
        return len(self._rates)


_MISSING = object()


def _unpriced_with_warning(call: LlmCall, warning: str) -> LlmCall:
    attributes = {**call.attributes, PRICING_WARNING_ATTRIBUTE: warning}
    return call._replace(cost_usd=None, cost_status=UNPRICED, attributes=attributes)


def _tier_starts(price: ModelPrice) -> list[int]:
    """Sorted distinct input-token thresholds of every tiered price in `price`."""
    return sorted({tier.start for value in price.__dict__.values() if isinstance(value, TieredPrices)
                   for tier in value.tiers})


def _untiered(price: ModelPrice, starts: list[int], tier: int) -> ModelPrice:
    """`price` with each tiered value fixed at the tier that `tier` thresholds select."""
    if not starts:
        return price
    # genai-prices applies a tier when input tokens are strictly above its start.
    input_tokens = starts[tier - 1] + 1 if tier else 0
    resolved: dict[str, object] = {}
    for name, value in price.__dict__.items():
        if isinstance(value, TieredPrices):
            value = next((t.price for t in reversed(value.tiers) if input_tokens > t.start), value.base)
        resolved[name] = value
    return ModelPrice(**resolved)  # type: ignore[arg-type]
