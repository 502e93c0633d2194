"""The one Native block the interface writes itself: clickhouse-go's server hello.

clickhouse-go (v2.38+) opens every HTTP connection with `SELECT displayName(), version(), revision(),
timezone()` and decodes that reply as Native at client revision 54460 (a BlockInfo header and a
serialization byte per column), then decodes every later reply at the revision the hello reported.
The engine writes Native at revision 0 only (it has no `client_protocol_version`), so the hello is
answered here, reporting revision 0: the driver then reads the engine's Native as it is.
"""

from __future__ import annotations

import re
import struct

HELLO = re.compile(r"^\s*SELECT\s+displayName\(\)\s*,\s*version\(\)\s*,\s*revision\(\)\s*,\s*timezone\(\)\s*"
                   r"(?:FORMAT\s+Native\s*)?;?\s*$", re.I)
_WITH_CUSTOM_SERIALIZATION = 54454  # DBMS_MIN_REVISION_WITH_CUSTOM_SERIALIZATION
SERVED_REVISION = 0


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _string(text: str) -> bytes:
    data = text.encode()
    return _varint(len(data)) + data


def hello_block(display_name: str, version: str, timezone: str, client_revision: int) -> bytes:
    """The hello's reply as Native for `client_revision` (BlockInfo when > 0, serialization bytes from 54454)."""
    out = bytearray()
    if client_revision > 0:
        out += _varint(1) + b"\x00" + _varint(2) + struct.pack("<i", -1) + _varint(0)  # BlockInfo
    out += _varint(4) + _varint(1)
    custom = b"\x00" if client_revision >= _WITH_CUSTOM_SERIALIZATION else b""
    for name, kind, value in (("displayName()", "String", _string(display_name)),
                              ("version()", "String", _string(version)),
                              ("revision()", "UInt32", struct.pack("<I", SERVED_REVISION)),
                              ("timezone()", "String", _string(timezone))):
        out += _string(name) + _string(kind) + custom + value
    return bytes(out)
