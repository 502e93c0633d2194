"""Imports only go downward: llmrel_core <- llmrel core modules <- areas (receiver, analyzers, actions,
intel, grafana) <- composition root (llmrel.cli, whose `compose` builds serve, and llmrel.demo). Areas do
not import each other except where declared below; the server never imports the app-side package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"src/llmrel": "llmrel", "otlp-receiver/src/llmrel": "llmrel", "analyzers/src/llmrel": "llmrel",
           "actions/src/llmrel": "llmrel", "intel/src/llmrel": "llmrel", "grafana/src/llmrel": "llmrel",
           "core/src/llmrel_core": "llmrel_core",
           "instrumentation/src/llmrel_instrumentation": "llmrel_instrumentation"}
AREAS = ("receiver", "analyzers", "actions", "intel", "grafana")
TOP = ("cli", "demo")
# Areas that build on another area (the arrow points down): none; what two areas share lives in the core.
AREA_DEPENDS: dict[str, set[str]] = {}


def layer(module: str) -> tuple[int, str]:
    parts = module.split(".")
    if parts[0] == "llmrel_core":
        return 0, "core"
    if parts[0] == "llmrel_instrumentation":
        return 1, "app-side"
    if len(parts) > 1 and parts[1] in AREAS:
        return 2, parts[1]
    if len(parts) > 1 and parts[1] in TOP:
        return 3, parts[1]
    return 1, "llmrel"


def modules() -> list[tuple[str, Path]]:
    found = []
    for folder, package in SOURCES.items():
        base = ROOT / folder
        for path in sorted(base.rglob("*.py")):
            parts = path.relative_to(base).with_suffix("").parts
            name = ".".join([package, *parts]).removesuffix(".__init__")
            found.append((name, path))
    return found


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.split(".")[0] in ("llmrel", "llmrel_core", "llmrel_instrumentation")}


def wrong_way(importer: str, target: str) -> bool:
    (low, area), (high, other) = layer(importer), layer(target)
    if "app-side" in (area, other):  # the app-side package and the server share only the core
        return area != other and other != "core"
    if other == "core" or high < low or (high == low and high != 2):
        return False
    if high == 2 and low == 2:
        return area != other and other not in AREA_DEPENDS.get(area, set())
    return True


MODULES = modules()


def test_the_tree_is_scanned():
    assert len(MODULES) > 80


@pytest.mark.parametrize(("name", "path"), MODULES, ids=[m[0] for m in MODULES])
def test_imports_go_downward(name, path):
    assert sorted(t for t in imported(path) if wrong_way(name, t)) == []
