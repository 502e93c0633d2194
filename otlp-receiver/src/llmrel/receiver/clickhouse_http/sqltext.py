"""What the HTTP layer must know of a statement's text before the engine parses it: whether it is
one statement, its trailing `FORMAT`, and where an `INSERT ... FORMAT x`'s data begins."""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmrel.receiver.clickhouse_http.errors import ClickHouseError

_IDENT = r'(?:`(?:[^`\\]|\\.)+`|"(?:[^"\\]|\\.)+"|[A-Za-z_][A-Za-z0-9_]*)'
_INSERT = re.compile(
    rf"\s*INSERT\s+INTO\s+(?:TABLE\s+)?(?P<table>{_IDENT}(?:\s*\.\s*{_IDENT})?)\s*"
    r"(?P<columns>\((?:[^()]|\([^()]*\))*\))?\s*"
    r"(?:SETTINGS\s+(?P<settings>(?:[^F]|F(?!ORMAT\b))*?)\s*)?"
    r"FORMAT\s+(?P<format>[A-Za-z][A-Za-z0-9_]*)[ \t]*(?:\r?\n)?", re.I)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*(?:SETTINGS\b[^;]*)?;?\s*$", re.I)


def _skip(text: str, i: int) -> int:
    """Index after the string, quoted identifier, comment or heredoc starting at `i` (else `i`)."""
    c = text[i]
    if c in "'\"`":
        j = i + 1
        while j < len(text):
            if text[j] == "\\":
                j += 2
                continue
            if text[j] == c:
                if j + 1 < len(text) and text[j + 1] == c:  # doubled quote
                    j += 2
                    continue
                return j + 1
            j += 1
        raise ClickHouseError(62, f"Syntax error: unterminated quote at position {i + 1}")
    if text.startswith("--", i) or c == "#":
        end = text.find("\n", i)
        return len(text) if end < 0 else end + 1
    if text.startswith("/*", i):
        depth, j = 0, i
        while j < len(text):
            if text.startswith("/*", j):
                depth, j = depth + 1, j + 2
            elif text.startswith("*/", j):
                depth, j = depth - 1, j + 2
                if depth == 0:
                    return j
            else:
                j += 1
        raise ClickHouseError(62, f"Syntax error: unterminated comment at position {i + 1}")
    if c == "$":
        match = re.match(r"\$([A-Za-z0-9_]*)\$", text[i:])
        if match:
            end = text.find(match.group(0), i + len(match.group(0)))
            if end < 0:
                raise ClickHouseError(62, f"Syntax error: unterminated heredoc at position {i + 1}")
            return end + len(match.group(0))
    return i


def single_statement(text: str) -> str:
    """`text` without a trailing `;`.

    Raises:
        ClickHouseError: SYNTAX_ERROR when it holds more than one statement (as ClickHouse's HTTP interface).
    """
    i = 0
    while i < len(text):
        nxt = _skip(text, i)
        if nxt != i:
            i = nxt
            continue
        if text[i] == ";":
            rest, j = text[i + 1:], 0
            while j < len(rest):  # only blanks and comments may follow
                if rest[j].isspace():
                    j += 1
                    continue
                after = _skip(rest, j)
                if after == j or rest[j] in "'\"`$":
                    raise ClickHouseError(62, "Syntax error (Multi-statements are not allowed)")
                j = after
            return text[:i]
        i += 1
    return text


def output_format(text: str, default: str) -> str:
    """The format the statement's `FORMAT` clause names, else `default`."""
    match = _TRAILING_FORMAT.search(text)
    return match.group(1) if match else default


@dataclass(frozen=True)
class InsertHead:
    """`INSERT INTO table (columns) [SETTINGS ...] FORMAT fmt`, and the offset where its data begins."""

    table: str
    columns: str | None
    settings: str | None
    format: str
    data_offset: int

    @property
    def statement(self) -> str:
        columns = f" {self.columns}" if self.columns else ""
        settings = f" SETTINGS {self.settings}" if self.settings else ""
        return f"INSERT INTO {self.table}{columns}{settings} FORMAT {self.format}"

    def table_parts(self) -> tuple[str | None, str]:
        """(database or None, table), unquoted."""
        parts = [p.strip() for p in re.findall(_IDENT, self.table)]
        names = [p[1:-1] if p[:1] in "`\"" else p for p in parts]
        return (names[0], names[1]) if len(names) == 2 else (None, names[0])

    def column_names(self) -> list[str]:
        if not self.columns:
            return []
        return [(c[1:-1] if c[:1] in "`\"" else c) for c in
                (part.strip() for part in self.columns.strip()[1:-1].split(",")) if c]


def insert_head(text: str) -> InsertHead | None:
    """The head of an `INSERT ... FORMAT x` whose data follows in `text`, else None."""
    match = _INSERT.match(text)
    if match is None:
        return None
    return InsertHead(match.group("table"), match.group("columns"), match.group("settings"),
                      match.group("format"), match.end())
