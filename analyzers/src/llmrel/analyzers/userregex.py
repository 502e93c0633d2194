"""Regular expressions written in rule files, compiled for RE2: matching time linear in the text, always.

Python's `re` backtracks, so a rule such as `(a+)+$` on a long output would stall the analyzer
(and `/healthz` with it). RE2 (`google-re2`) guarantees linear time and bounded memory; in
exchange it has no look-around and no back-references, which `regex_problem` reports when a
rule file is validated. Patterns and the text they scan are capped too.
"""

from __future__ import annotations

from typing import Protocol

import re2

MAX_PATTERN_CHARS = 1_000
MAX_SCAN_CHARS = 200_000  # a rule sees the first 200,000 characters of a text, like `no_pii`
_MAX_MEMORY = 8 << 20  # bytes RE2 may use for one compiled pattern


class UserRegex(Protocol):
    """What checks use of a compiled rule regex."""

    @property
    def pattern(self) -> str: ...

    def search(self, text: str, /) -> object | None: ...


def _options(ignore_case: bool) -> re2.Options:
    options = re2.Options()
    options.case_sensitive = not ignore_case
    options.log_errors = False
    options.max_mem = _MAX_MEMORY
    return options


def compile_user_regex(pattern: str, ignore_case: bool = False) -> UserRegex:
    """The compiled pattern.

    Raises:
        ValueError: when the pattern is too long or not valid RE2 syntax.
    """
    problem = regex_problem(pattern)
    if problem:
        raise ValueError(problem)
    return re2.compile(pattern, _options(ignore_case))


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be a rule's regex (too long, not RE2 syntax), or `None`."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"regular expression longer than {MAX_PATTERN_CHARS} characters"
    try:
        re2.compile(pattern, _options(False))
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        return f"invalid regular expression (RE2 syntax: no look-around or back-references): {detail}"
    return None
