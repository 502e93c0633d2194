"""Regenerate the committed Grafana files: `python -m llmrel.grafana.build [DIR]`.

DIR defaults to the repository's `grafana/` folder; a test fails when the committed files
differ from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from llmrel.grafana.provisioning import write_tree


def repository_grafana_dir() -> Path:
    """`grafana/` of the source checkout this module lives in."""
    return Path(__file__).resolve().parents[3]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0]) if args else repository_grafana_dir()
    for path in write_tree(directory):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
