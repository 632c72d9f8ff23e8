"""e2store records: an 8-byte header (2-byte type, uint32 LE length, 2 reserved zero bytes),
then `length` bytes of data, back to back.

Every length is checked against the file size before anything is read or allocated.
Works on file objects and paths; knows nothing of snappy, SSZ or era semantics.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO, Iterator, NamedTuple

from .errors import FormatError

HEADER_SIZE = 8

VERSION = b"\x65\x32"
EMPTY = b"\x00\x00"
COMPRESSED_SIGNED_BEACON_BLOCK = b"\x01\x00"
COMPRESSED_BEACON_STATE = b"\x02\x00"
SLOT_INDEX = b"\x69\x32"
# era1 (execution layer) record types, read only
COMPRESSED_HEADER = b"\x03\x00"
COMPRESSED_BODY = b"\x04\x00"
COMPRESSED_RECEIPTS = b"\x05\x00"
TOTAL_DIFFICULTY = b"\x06\x00"
ACCUMULATOR = b"\x07\x00"
BLOCK_INDEX = b"\x66\x32"

TYPE_NAMES = {
    VERSION: "Version",
    EMPTY: "Empty",
    COMPRESSED_SIGNED_BEACON_BLOCK: "CompressedSignedBeaconBlock",
    COMPRESSED_BEACON_STATE: "CompressedBeaconState",
    SLOT_INDEX: "SlotIndex",
    COMPRESSED_HEADER: "CompressedHeader",
    COMPRESSED_BODY: "CompressedBody",
    COMPRESSED_RECEIPTS: "CompressedReceipts",
    TOTAL_DIFFICULTY: "TotalDifficulty",
    ACCUMULATOR: "Accumulator",
    BLOCK_INDEX: "BlockIndex",
}


def type_name(t: bytes) -> str:
    return TYPE_NAMES.get(t, "unknown 0x" + t.hex())


class Record(NamedTuple):
    offset: int  # file position of the header
    type: bytes
    length: int  # data length, header not counted

    @property
    def data_offset(self) -> int:
        return self.offset + HEADER_SIZE

    @property
    def end(self) -> int:
        return self.offset + HEADER_SIZE + self.length


def encode_header(rtype: bytes, length: int) -> bytes:
    if len(rtype) != 2:
        raise ValueError("record type must be 2 bytes")
    if not 0 <= length < 2**32:
        raise FormatError(f"record of {length} bytes does not fit an e2store header")
    return rtype + struct.pack("<I", length) + b"\x00\x00"


def encode_record(rtype: bytes, data: bytes) -> bytes:
    return encode_header(rtype, len(data)) + bytes(data)


def decode_header(raw: bytes, offset: int, file_size: int, where: str) -> Record:
    """Parse and check one header read at `offset` of a file of `file_size` bytes."""
    if len(raw) < HEADER_SIZE:
        raise FormatError(f"{where}: offset {offset}: truncated record header "
                          f"({len(raw)} of 8 bytes)")
    rtype = bytes(raw[0:2])
    (length,) = struct.unpack_from("<I", raw, 2)
    if raw[6] != 0 or raw[7] != 0:
        raise FormatError(f"{where}: offset {offset}: reserved header bytes are "
                          f"0x{bytes(raw[6:8]).hex()}, expected 0x0000")
    if offset + HEADER_SIZE + length > file_size:
        raise FormatError(
            f"{where}: offset {offset}: {type_name(rtype)} record length {length} runs past "
            f"the end of the file ({file_size - offset - HEADER_SIZE} bytes left)")
    return Record(offset, rtype, length)


def read_header(f: BinaryIO, offset: int, file_size: int, where: str) -> Record:
    if offset < 0 or offset + HEADER_SIZE > file_size:
        raise FormatError(f"{where}: offset {offset}: record header outside the file "
                          f"({file_size} bytes)")
    return decode_header(pread(f, HEADER_SIZE, offset), offset, file_size, where)


def read_data(f: BinaryIO, rec: Record) -> bytes:
    return pread(f, rec.length, rec.data_offset)


def pread(f: BinaryIO, n: int, offset: int) -> bytes:
    own = getattr(f, "pread", None)  # objstore.RangeFile: ranged GETs, thread-safe
    if own is not None:
        data = own(n, offset)
    else:
        try:
            data = os.pread(f.fileno(), n, offset)
        except (AttributeError, OSError, ValueError):
            f.seek(offset)
            data = f.read(n)
    if len(data) < n:  # the file shrank under us
        raise FormatError(f"{getattr(f, 'name', 'file')}: offset {offset}: short read "
                          f"({len(data)} of {n} bytes)")
    return data


def iter_records(f: BinaryIO, file_size: int, where: str, start: int = 0,
                 stop: int | None = None) -> Iterator[Record]:
    """Headers from `start` to `stop` (default: end of file), without reading data."""
    stop = file_size if stop is None else stop
    pos = start
    while pos < stop:
        rec = read_header(f, pos, file_size, where)
        if rec.end > stop:
            raise FormatError(f"{where}: offset {pos}: {type_name(rec.type)} record runs past "
                              f"offset {stop}")
        yield rec
        pos = rec.end


def file_size_of(f: BinaryIO) -> int:
    size = getattr(f, "size", None)  # objstore.RangeFile
    return size if size is not None else os.fstat(f.fileno()).st_size


def version_of(path, f: BinaryIO | None = None) -> tuple | None:
    """What identifies the bytes at `path` now (of the open file `f`, when given): another
    value after the file or object was replaced or changed; None for a missing object."""
    if isinstance(path, str) and path.startswith("s3://"):
        from . import objstore

        info = objstore.head(path)
        return None if info is None else (info.size, info.etag, info.mtime_ns)
    st = os.fstat(f.fileno()) if f is not None else os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def open_for_reading(path: str) -> tuple[BinaryIO, int]:
    """(file, size) of an e2store file; FormatError naming `path` if it cannot be opened.
    An s3:// URL opens as an objstore.RangeFile (ranged GETs with read-ahead)."""
    if isinstance(path, str) and path.startswith("s3://"):
        from . import objstore

        rf = objstore.open_file(path)
        return rf, rf.size
    try:
        f: BinaryIO = open(path, "rb")
    except OSError as exc:
        raise FormatError(f"{path}: cannot open: {exc.strerror}") from exc
    return f, file_size_of(f)
