"""Snappy framing (the stream format of Google's framing_format.txt) for e2store payloads.

The only importer of the snappy library (cramjam).  Every decompression is bounded: chunk
headers are walked first, the exact output size is computed and checked against a cap, and only
then is a buffer of that size allocated.  CRC-32C of every chunk is checked by the engine.
Knows nothing of e2store, era files, SSZ types or I/O.
"""

from __future__ import annotations

import threading

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
               base: int = 0, mutable: bool = False) -> bytes | bytearray:
    """Decompress a framed stream into a buffer of exactly the announced size (≤ max_size).

    `mutable=True` returns that bytearray itself instead of a bytes copy (for big states:
    saves a copy of hundreds of MB, and that much peak memory)."""
    chunks = walk(data, where, base)
    total = sum(c[2] for c in chunks)
    if total > max_size:
        raise FormatError(
            f"{where}: offset {base}: decompressed size {total} exceeds the limit {max_size}")
    if total == 0:
        return b""
    out = bytearray(total)
    try:
        written = cramjam.snappy.decompress_into(data, out)  # any buffer, no copy
    except Exception as exc:  # cramjam.DecompressionError and buffer errors
        raise FormatError(f"{where}: offset {base}: bad snappy data: {exc}") from exc
    if written != total:
        raise FormatError(
            f"{where}: offset {base}: snappy data decompressed to {written} bytes, "
            f"chunk headers announced {total}")
    return out if mutable else bytes(out)


def decompress_exact(data, length: int, where: str = "payload") -> bytearray:
    """Decompress a framed stream that must inflate to exactly `length` bytes, a size the
    caller has already bounded (e.g. a chunk header it checked against a limit).  Skips the
    chunk-header walk of `decompress`: the engine writes into a buffer of `length` bytes and
    fails on overflow, a shorter result is refused here, and CRCs are checked as always."""
    out = bytearray(length)
    decompress_into(data, out, where)
    return out


_scratch = threading.local()


def decompress_scratch(data, length: int, where: str = "payload") -> memoryview:
    """`decompress_exact` into this thread's reused buffer (no fresh zeroed buffer per
    payload): a view of `length` bytes, valid until this thread's next call.  For callers
    that only read the result (hash it, copy parts out) before the next payload."""
    buf = getattr(_scratch, "buf", None)
    if buf is None or len(buf) < length:
        buf = _scratch.buf = bytearray(max(length, 1 << 20))
    out = memoryview(buf)[:length]
    decompress_into(data, out, where)
    return out


def decompress_into(data, out, where: str = "payload") -> None:
    """Decompress a framed stream into `out`, a writable buffer (a slice of a bigger one) of
    exactly its uncompressed length as `uncompressed_length` reported it (CRCs checked; the
    engine fails on overflow, a shorter result is refused here)."""
    length = len(memoryview(out))
    try:
        written = cramjam.snappy.decompress_into(data, out)
    except Exception as exc:  # cramjam.DecompressionError and buffer errors
        raise FormatError(f"{where}: bad snappy data: {exc}") from exc
    if written != length:
        raise FormatError(f"{where}: snappy data decompressed to {written} bytes, expected "
                          f"{length}")


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


def peek_prefix(data, nbytes: int, where: str = "payload", base: int = 0) -> bytes:
    """The first `nbytes` of the uncompressed stream, decoded from the start of the first data
    chunk only as far as needed.  Unlike `decompress_prefix` the chunk's CRC is *not* checked
    (it covers the whole chunk), so the caller must decompress and check the whole payload
    later and compare what it read here.  For reading a block header out of a 64 KB chunk
    without inflating all of it.  Falls back to `decompress_prefix` when the first chunk holds
    fewer than `nbytes` bytes."""
    mv = memoryview(data)
    n = len(mv)
    if n < 14 or bytes(mv[:10]) != STREAM_IDENTIFIER:
        return decompress_prefix(data, nbytes, where, base)  # raises the right error
    ctype = mv[10]
    clen = mv[11] | (mv[12] << 8) | (mv[13] << 16)
    body, end = 14, 14 + clen
    if ctype not in (CHUNK_COMPRESSED, CHUNK_UNCOMPRESSED) or end > n or clen < 4:
        return decompress_prefix(data, nbytes, where, base)
    if ctype == CHUNK_UNCOMPRESSED:
        if clen - 4 < nbytes:
            return decompress_prefix(data, nbytes, where, base)
        return bytes(mv[body + 4:body + 4 + nbytes])
    pos = body + 4
    ulen = 0
    for shift in range(0, 35, 7):  # the raw block's uncompressed length (varint)
        if pos >= end:
            raise FormatError(f"{where}: offset {base + pos}: truncated snappy length varint")
        b = mv[pos]
        pos += 1
        ulen |= (b & 0x7F) << shift
        if not b & 0x80:
            break
    else:
        raise FormatError(f"{where}: offset {base + pos}: snappy length varint too long")
    if ulen < nbytes:
        return decompress_prefix(data, nbytes, where, base)
    out = bytearray()
    while len(out) < nbytes:
        if pos >= end:
            raise FormatError(f"{where}: offset {base + pos}: snappy chunk ends early")
        tag = mv[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                if pos + extra > end:
                    raise FormatError(f"{where}: offset {base + pos}: truncated literal length")
                length = int.from_bytes(mv[pos:pos + extra], "little")
                pos += extra
            length += 1
            if pos + length > end:
                raise FormatError(f"{where}: offset {base + pos}: snappy literal of {length} "
                                  "bytes runs past its chunk")
            take = min(length, nbytes - len(out))
            out += mv[pos:pos + take]
            pos += length
            continue
        if kind == 1:
            if pos + 1 > end:
                raise FormatError(f"{where}: offset {base + pos}: truncated snappy copy")
            length = 4 + ((tag >> 2) & 7)
            offset = ((tag >> 5) << 8) | mv[pos]
            pos += 1
        else:
            width = 2 if kind == 2 else 4
            if pos + width > end:
                raise FormatError(f"{where}: offset {base + pos}: truncated snappy copy")
            length = 1 + (tag >> 2)
            offset = int.from_bytes(mv[pos:pos + width], "little")
            pos += width
        if offset == 0 or offset > len(out):
            raise FormatError(f"{where}: offset {base + pos}: snappy copy offset {offset} "
                              f"outside the {len(out)} bytes decoded so far")
        for _ in range(min(length, nbytes - len(out))):  # may overlap its own output
            out.append(out[-offset])
    return bytes(out)
