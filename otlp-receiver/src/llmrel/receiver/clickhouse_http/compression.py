"""Compression as ClickHouse clients use it over HTTP.

- HTTP level: request `Content-Encoding` gzip / deflate / zstd / lz4 (LZ4 frame), decoded as the body
  streams in; responses compressed for `Accept-Encoding` when `enable_http_compression=1`.
- ClickHouse's compressed blocks (`decompress=1` request bodies, `compress=1` responses; clickhouse-go
  with lz4/zstd, hence the OTel collector's clickhouseexporter by default): a 16-byte CityHash128
  checksum, method byte (0x82 LZ4, 0x90 ZSTD, 0x02 none), UInt32 compressed size (9-byte header
  included), UInt32 uncompressed size, payload.
"""

from __future__ import annotations

import gzip
import struct
import sys
import zlib
from collections.abc import Callable

import lz4.block
import lz4.frame
from clickhouse_cityhash.cityhash import CityHash128

from llmrel.receiver.clickhouse_http.errors import ClickHouseError

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

_LZ4, _ZSTD, _NONE = 0x82, 0x90, 0x02
_HEADER = struct.Struct("<BII")
_MAX_BLOCK = 1 << 30
HTTP_ENCODINGS = ("gzip", "deflate", "zstd", "lz4")

Decoder = Callable[[bytes], bytes]


def _zlib_decoder(wbits: int) -> Decoder:
    inflater = zlib.decompressobj(wbits)
    return inflater.decompress


def http_decoder(encoding: str | None) -> Decoder | None:
    """An incremental decoder for a request `Content-Encoding` (None for identity).

    Raises:
        ClickHouseError: UNKNOWN_FORMAT-like refusal for an encoding the interface does not read.
    """
    encoding = (encoding or "").strip().lower()
    if encoding in ("", "identity", "none"):
        return None
    if encoding == "gzip":
        return _zlib_decoder(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return _zlib_decoder(zlib.MAX_WBITS)
    if encoding == "zstd":
        return zstd.ZstdDecompressor().decompress
    if encoding == "lz4":
        return lz4.frame.LZ4FrameDecompressor().decompress
    raise ClickHouseError(48, f"Content-Encoding {encoding!r} is not supported (gzip, deflate, zstd, lz4)")


def response_encoding(accept: str | None) -> str | None:
    """The first encoding of `Accept-Encoding` the interface can produce."""
    offered = [part.split(";")[0].strip().lower() for part in (accept or "").split(",")]
    return next((e for e in offered if e in HTTP_ENCODINGS), None)


def http_encode(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data, 3)
    if encoding == "deflate":
        return zlib.compress(data, 3)
    if encoding == "zstd":
        return zstd.compress(data)
    return lz4.frame.compress(data)


def checksum(block: bytes) -> bytes:
    """ClickHouse's block checksum: CityHash128 v1.0.2 as two little-endian UInt64 halves (the package's
    integer carries them high half first)."""
    value = CityHash128(block)
    return (value >> 64).to_bytes(8, "little") + (value & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "little")


def compress_blocks(data: bytes, block_size: int = 1 << 20) -> bytes:
    """`data` as ClickHouse LZ4 compressed blocks."""
    out = []
    for start in range(0, len(data) or 1, block_size):
        chunk = data[start:start + block_size]
        payload = lz4.block.compress(chunk, store_size=False)
        body = _HEADER.pack(_LZ4, len(payload) + 9, len(chunk)) + payload
        out.append(checksum(body) + body)
    return b"".join(out)


class BlockDecoder:
    """Incremental reader of ClickHouse compressed blocks (checksums verified)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def __call__(self, data: bytes) -> bytes:
        self._buffer += data
        out = []
        while len(self._buffer) >= 25:
            method, size, raw_size = _HEADER.unpack_from(self._buffer, 16)
            if size < 9 or size > _MAX_BLOCK or raw_size > _MAX_BLOCK:
                raise ClickHouseError(271, f"Too large size of compressed block: {size}")
            if len(self._buffer) < 16 + size:
                break
            body = bytes(self._buffer[16:16 + size])
            if checksum(body) != bytes(self._buffer[:16]):
                raise ClickHouseError(40, "Checksum doesn't match: corrupted data in a compressed block")
            del self._buffer[:16 + size]
            out.append(_decompress_block(method, body[9:], raw_size))
        return b"".join(out)

    def finish(self) -> None:
        if self._buffer:
            raise ClickHouseError(271, "Cannot decompress: the body ends inside a compressed block")


def _decompress_block(method: int, payload: bytes, raw_size: int) -> bytes:
    try:
        if method == _LZ4:
            return lz4.block.decompress(payload, uncompressed_size=raw_size)
        if method == _ZSTD:
            return zstd.decompress(payload)
        if method == _NONE:
            return payload
    except Exception as exc:
        raise ClickHouseError(271, f"Cannot decompress a compressed block: {exc}") from None
    raise ClickHouseError(271, f"Unknown compression method in a compressed block: {method:#x}")
