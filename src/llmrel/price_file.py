"""The user price file: model aliases and custom per-million-token prices, validated with line numbers.

```yaml
aliases:                      # model name as the app reports it (request or response model)
  prod-gpt4o:                 # e.g. an Azure OpenAI deployment name
    model: gpt-4o             # the real model
    provider: openai          # optional: price with this provider instead of the call's
prices:                       # USD per million tokens, for fine-tuned or self-hosted models
  ft:gpt-4o-mini:acme::abc123:
    input_mtok: 0.30
    output_mtok: 1.20
    cache_read_mtok: 0.15     # optional, as are cache_write_mtok and output_reasoning_mtok
```
Model names match case-insensitively. `load_price_file` reports every problem at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from llmrel.config import ConfigError

PRICE_KEYS: tuple[str, ...] = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok",
                               "output_reasoning_mtok")
_ALIAS_KEYS = ("model", "provider")
_TOP_KEYS = ("aliases", "prices")


class PriceFileError(ConfigError, ValueError):
    """Raised with every problem of a price file, one `file:line: message` per line.

    A `ConfigError`, so start-up code that reports invalid configuration reports these too.
    """


@dataclass(frozen=True)
class ModelAlias:
    """Where a reported model name really points."""

    model: str
    provider: str | None = None


@dataclass(frozen=True)
class PriceFile:
    """Validated content of a price file; keys are lower-cased model names."""

    aliases: dict[str, ModelAlias] = field(default_factory=dict)
    prices: dict[str, dict[str, Decimal]] = field(default_factory=dict)


def load_price_file(path: Path) -> PriceFile:
    """Read and validate a price file.

    Raises:
        PriceFileError: listing every problem found, with its line where known.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PriceFileError(f"{path}: cannot read: {exc}") from None
    return parse_price_file(text, str(path))


def parse_price_file(text: str, name: str = "<prices>") -> PriceFile:
    """Validate price-file YAML `text`; `name` prefixes problem lines."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark else name
        raise PriceFileError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    problems = _Problems(name)
    result = PriceFile()
    if root is None:
        return result
    if not isinstance(root, MappingNode):
        problems.add(root, "top level must be a mapping with 'aliases' and/or 'prices'")
    else:
        for key_node, value_node in _entries(root, "", problems):
            if key_node.value == "aliases":
                _read_aliases(value_node, result.aliases, problems)
            elif key_node.value == "prices":
                _read_prices(value_node, result.prices, problems)
            else:
                problems.add(key_node, f"unknown key {key_node.value!r} (expected one of {', '.join(_TOP_KEYS)})")
    if problems.lines:
        raise PriceFileError("\n".join(message for _, message in sorted(problems.lines, key=lambda p: p[0])))
    return result


class _Problems:
    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[tuple[int, str]] = []

    def add(self, node: Node, message: str) -> None:
        line = node.start_mark.line + 1
        self.lines.append((line, f"{self.name}:{line}: {message}"))


def _entries(node: Node, where: str, problems: _Problems) -> list[tuple[ScalarNode, Node]]:
    """Key/value node pairs of a mapping with scalar keys; duplicates (case-insensitive) reported."""
    if not isinstance(node, MappingNode):
        problems.add(node, f"{where or 'value'}: must be a mapping")
        return []
    seen: set[str] = set()
    entries = []
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode) or not key_node.value:
            problems.add(key_node, f"{where}: keys must be non-empty strings")
            continue
        lowered = key_node.value.lower()
        if lowered in seen:
            problems.add(key_node, f"{where}{'.' if where else ''}{key_node.value}: duplicate key")
            continue
        seen.add(lowered)
        entries.append((key_node, value_node))
    return entries


def _string(node: Node) -> str | None:
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:str" and node.value.strip():
        return node.value.strip()
    return None


def _read_aliases(node: Node, aliases: dict[str, ModelAlias], problems: _Problems) -> None:
    for key_node, value_node in _entries(node, "aliases", problems):
        where = f"aliases.{key_node.value}"
        fields: dict[str, str] = {}
        for field_node, field_value in _entries(value_node, where, problems):
            if field_node.value not in _ALIAS_KEYS:
                problems.add(field_node, f"{where}: unknown key {field_node.value!r} (expected model, provider)")
            elif (value := _string(field_value)) is None:
                problems.add(field_value, f"{where}.{field_node.value}: must be a non-empty string")
            else:
                fields[field_node.value] = value
        if isinstance(value_node, MappingNode) and "model" not in fields:
            if not any(f.value == "model" for f, _ in value_node.value if isinstance(f, ScalarNode)):
                problems.add(value_node, f"{where}: 'model' is required")
            continue
        if "model" in fields:
            aliases[key_node.value.lower()] = ModelAlias(fields["model"], fields.get("provider"))


def _read_prices(node: Node, prices: dict[str, dict[str, Decimal]], problems: _Problems) -> None:
    for key_node, value_node in _entries(node, "prices", problems):
        where = f"prices.{key_node.value}"
        model_prices: dict[str, Decimal] = {}
        for field_node, field_value in _entries(value_node, where, problems):
            if field_node.value not in PRICE_KEYS:
                problems.add(field_node, f"{where}: unknown price {field_node.value!r} "
                                         f"(expected one of {', '.join(PRICE_KEYS)})")
                continue
            price = _price(field_value)
            if price is None:
                problems.add(field_value, f"{where}.{field_node.value}: must be a non-negative number "
                                          f"(USD per million tokens)")
            else:
                model_prices[field_node.value] = price
        if isinstance(value_node, MappingNode) and not value_node.value:
            problems.add(value_node, f"{where}: give at least one price")
        if model_prices:
            prices[key_node.value.lower()] = model_prices


def _price(node: Node) -> Decimal | None:
    if not isinstance(node, ScalarNode) or node.tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
        return None
    try:
        value = Decimal(node.value.replace("_", ""))
    except ArithmeticError:
        return None
    return value if value.is_finite() and value >= 0 else None
