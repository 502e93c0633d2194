"""ClickHouse errors as its HTTP interface sends them: `Code: N. DB::Exception: ... (NAME)`, the
`X-ClickHouse-Exception-Code` header and the HTTP status ClickHouse maps each code to."""

from __future__ import annotations

import re

_STATUS = {
    194: 401,
    192: 403, 193: 403, 497: 403, 516: 403,
    6: 400, 25: 400, 26: 400, 27: 400, 36: 400, 38: 400, 41: 400, 53: 400, 62: 400, 72: 400, 117: 400,
    44: 400, 8: 400, 15: 400, 321: 400, 167: 400, 168: 400, 457: 400, 456: 400,
    60: 404, 46: 404, 47: 404, 50: 404, 56: 404, 73: 404, 81: 404, 115: 404, 78: 404,
    159: 408, 381: 411, 229: 413, 48: 501,
    209: 503, 439: 503,
}
_NAMES = {
    36: "BAD_ARGUMENTS", 48: "NOT_IMPLEMENTED", 62: "SYNTAX_ERROR", 73: "UNKNOWN_FORMAT", 81: "UNKNOWN_DATABASE",
    115: "UNKNOWN_SETTING", 164: "READONLY", 194: "REQUIRED_PASSWORD", 202: "TOO_MANY_SIMULTANEOUS_QUERIES",
    229: "QUERY_IS_TOO_LARGE", 373: "SESSION_IS_LOCKED", 381: "HTTP_LENGTH_REQUIRED", 439: "CANNOT_SCHEDULE_TASK",
    452: "SETTING_CONSTRAINT_VIOLATION", 457: "BAD_QUERY_PARAMETER", 497: "ACCESS_DENIED",
    516: "AUTHENTICATION_FAILED", 1000: "POCO_EXCEPTION", 1001: "STD_EXCEPTION", 433: "CANNOT_DECOMPRESS",
    40: "CHECKSUM_DOESNT_MATCH", 271: "CANNOT_DECOMPRESS", 0: "OK",
}
_ENGINE_ERROR = re.compile(r"Code: (\d+)\. (?:DB::Exception: )?(.*)", re.S)
_TRAILING_NAME = re.compile(r"\s*\(([A-Z][A-Z0-9_]+)\)\s*$")
_NESTED_CODE = re.compile(r"^(?:\S+: )?Code: \d+\. DB::Exception: ")


class ClickHouseError(Exception):
    """An error to send as ClickHouse does."""

    def __init__(self, code: int, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.name = name or _NAMES.get(code, "UNKNOWN_EXCEPTION")

    @property
    def status(self) -> int:
        return _STATUS.get(self.code, 500)

    def body(self, version: str) -> bytes:
        return f"Code: {self.code}. DB::Exception: {self.message}. ({self.name}) (version {version})\n".encode()


def from_engine(error: BaseException) -> ClickHouseError:
    """The engine's own error (`Code: N. DB::Exception: ... (NAME)`) as a `ClickHouseError`."""
    text = str(error).strip()
    match = _ENGINE_ERROR.match(text)
    if match is None:
        return ClickHouseError(1001, text or type(error).__name__)
    code, message = int(match.group(1)), match.group(2)
    name = None
    while (trailing := _TRAILING_NAME.search(message)) is not None:  # the name, maybe repeated by nesting
        name = name or trailing.group(1)
        message = message[:trailing.start()]
    message = _NESTED_CODE.sub("", message).rstrip(". ")
    return ClickHouseError(code, message, name)
