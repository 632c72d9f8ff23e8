"""Snappy framing (the stream format of Google's framing_format.txt) for e2store payloads.

The only importer of the snappy library (cramjam).  Every decompression is bounded: chunk
headers are walked first, the exact output size is computed and checked against a cap, and only
then is a buffer of that size allocated.  CRC-32C of every chunk is checked by the engine.
Knows nothing of e2store, era files, SSZ types or I/O.
"""

from __future__ import annotations

import cramjam

from .errors import FormatError

STREAM_IDENTIFIER = b"\xff\x06\x00\x00sNaPpY"
MAX_CHUNK_UNCOMPRESSED = 65536
CHUNK_COMPRESSED = 0x00
CHUNK_UNCOMPRESSED = 0x01
CHUNK_PADDING = 0xFE
CHUNK_STREAM_IDENTIFIER = 0xFF
# Default cap on one decompressed payload: a mainnet state is a few hundred MB.
DEFAULT_MAX_SIZE = 4 * 1024**3


def compress(data: bytes) -> bytes:
    """Snappy-frame `data` (stream identifier, chunks with masked CRC-32C)."""
    if not data:  # the engine emits nothing for empty input; a stream still has its identifier
        return STREAM_IDENTIFIER
    return bytes(cramjam.snappy.compress(data))


def _varint(buf, pos: int, end: int, where: str) -> int:
    result = shift = 0
    for i in range(5):
        if pos + i >= end:
            raise FormatError(f"{where}: truncated snappy length varint")
        b = buf[pos + i]
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result
        shift += 7
    raise FormatError(f"{where}: snappy length varint too long")


def walk(data, where: str = "payload", base: int = 0, stop_after: int | None = None):
    """Check the chunk structure of a framed stream.

    Returns a list of (chunk_start, chunk_end, uncompressed_len) for data chunks.  With
    `stop_after`, stops once that many uncompressed bytes are covered.  Offsets in errors are
    `base + position` so callers can name file offsets.
    """
    mv = memoryview(data)
    n = len(mv)
    if n < len(STREAM_IDENTIFIER) or bytes(mv[:10]) != STREAM_IDENTIFIER:
        raise FormatError(f"{where}: offset {base}: missing snappy stream identifier")
    pos = 10
    chunks = []
    total = 0
    while pos < n:
        if pos + 4 > n:
            raise FormatError(f"{where}: offset {base + pos}: truncated snappy chunk header")
        ctype = mv[pos]
        clen = mv[pos + 1] | (mv[pos + 2] << 8) | (mv[pos + 3] << 16)
        body = pos + 4
        end = body + clen
        if end > n:
            raise FormatError(
                f"{where}: offset {base + pos}: snappy chunk length {clen} runs past the end "
                f"of the payload ({n - body} bytes left)")
        if ctype == CHUNK_COMPRESSED or ctype == CHUNK_UNCOMPRESSED:
            if clen < 4:
                raise FormatError(f"{where}: offset {base + pos}: snappy chunk too short for CRC")
            if ctype == CHUNK_COMPRESSED:
                ulen = _varint(mv, body + 4, end, f"{where}: offset {base + body + 4}")
            else:
                ulen = clen - 4
            if ulen > MAX_CHUNK_UNCOMPRESSED:
                raise FormatError(
                    f"{where}: offset {base + pos}: snappy chunk of {ulen} bytes exceeds 65536")
            chunks.append((pos, end, ulen))
            total += ulen
            if stop_after is not None and total >= stop_after:
                break
        elif ctype == CHUNK_STREAM_IDENTIFIER:
            if bytes(mv[pos:end]) != STREAM_IDENTIFIER:
                raise FormatError(f"{where}: offset {base + pos}: bad snappy stream identifier")
        elif 0x02 <= ctype <= 0x7F:
            raise FormatError(
                f"{where}: offset {base + pos}: reserved unskippable snappy chunk type 0x{ctype:02x}")
        # 0x80-0xfe: skippable
        pos = end
    return chunks


def uncompressed_length(data, where: str = "payload", base: int = 0) -> int:
    return sum(c[2] for c in walk(data, where, base))


def decompress(data, max_size: int = DEFAULT_MAX_SIZE, where: str = "payload",
               base: int = 0) -> bytes:
    """Decompress a framed stream into a buffer of exactly the announced size (≤ max_size)."""
    chunks = walk(data, where, base)
    total = sum(c[2] for c in chunks)
    if total > max_size:
        raise FormatError(
            f"{where}: offset {base}: decompressed size {total} exceeds the limit {max_size}")
    if total == 0:
        return b""
    out = bytearray(total)
    try:
        written = cramjam.snappy.decompress_into(bytes(data) if not isinstance(data, (bytes, bytearray)) else data, out)
    except Exception as exc:  # cramjam.DecompressionError and buffer errors
        raise FormatError(f"{where}: offset {base}: bad snappy data: {exc}") from exc
    if written != total:
        raise FormatError(
            f"{where}: offset {base}: snappy data decompressed to {written} bytes, "
            f"chunk headers announced {total}")
    return bytes(out)


def decompress_prefix(data, nbytes: int, where: str = "payload", base: int = 0) -> bytes:
    """The first `nbytes` of the uncompressed stream, decompressing only the chunks needed
    (CRC-checked).  Returns fewer bytes if the stream is shorter."""
    chunks = walk(data, where, base, stop_after=nbytes)
    if not chunks:
        return b""
    end = chunks[-1][1]
    mv = memoryview(data)
    partial = STREAM_IDENTIFIER + bytes(mv[10:end])
    total = sum(c[2] for c in chunks)
    out = bytearray(total)
    try:
        cramjam.snappy.decompress_into(partial, out)
    except Exception as exc:
        raise FormatError(f"{where}: offset {base}: bad snappy data: {exc}") from exc
    return bytes(out[:nbytes])
