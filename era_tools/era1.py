"""Era1 files: execution-layer history before the merge, read only (era-format.md §6).

Layout:
    Version | (CompressedHeader | CompressedBody | CompressedReceipts | TotalDifficulty)*
            | Accumulator | BlockIndex

`Era1Reader` finds the BlockIndex from the end of the file and checks every untrusted length,
count and offset against the file size before reading or allocating anything.  Also here: a
small bounded RLP decoder (enough to split a block header into its fields), keccak-256, the
accumulator root (hash_tree_root of List[HeaderRecord, 8192]), the file-name rule, and
`check_era1_file`, which returns its findings instead of raising them.

Beside era.py: imports only e2store, framing, hashing and errors.  Knows nothing of consensus
era files, SSZ containers, LevelDB, HTTP or the terminal; it does not execute or validate
transactions, receipts or proof of work.
"""

from __future__ import annotations

import operator
import os
import re
import struct
from typing import Iterable, Iterator, NamedTuple

import numpy as np

from . import e2store, framing
from .e2store import (ACCUMULATOR, BLOCK_INDEX, COMPRESSED_BODY, COMPRESSED_HEADER,
                      COMPRESSED_RECEIPTS, HEADER_SIZE, TOTAL_DIFFICULTY, VERSION, Record)
from .errors import FormatError, hex0x
from .hashing import hash_layer, merkleize, mix_in_length

MAX_BLOCKS = 8192  # blocks per era1 file, and the accumulator list limit
ERA1_NAME_RE = re.compile(r"^(?P<network>.+)-(?P<epoch>\d{5,})-(?P<root>[0-9a-f]{8})\.era1$")
# Caps on one decompressed payload.  A header is a few hundred bytes; bodies and receipts of
# pre-merge blocks are at most a few MB.
MAX_HEADER_SIZE = 1 << 20
DEFAULT_MAX_PAYLOAD = 256 << 20
MAX_RLP_DEPTH = 32
HEADER_FIELDS_MIN = 15  # frontier .. berlin; london adds base_fee (16)
HEADER_FIELDS_MAX = 21
# Smallest possible index: header + start number + count (no offsets).
_INDEX_MIN = HEADER_SIZE + 16
_ERA1_TYPES = (COMPRESSED_HEADER, COMPRESSED_BODY, COMPRESSED_RECEIPTS, TOTAL_DIFFICULTY,
               ACCUMULATOR, BLOCK_INDEX, VERSION)


# --------------------------------------------------------------------------------------------
# keccak, RLP


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (the pre-standard SHA-3 Ethereum uses), 32 bytes."""
    from Crypto.Hash import keccak as _keccak  # imported on first use: ~50 ms of start-up

    return _keccak.new(digest_bits=256, data=bytes(data)).digest()


def keccak256_many(data: np.ndarray, starts, ends) -> bytes:
    """Keccak-256 of every slice data[starts[i]:ends[i]] of one C-contiguous uint8 numpy
    buffer, concatenated (32 * n bytes): the transaction hashes of a whole era.  Native batch
    when built (era_tools._keccak: one call, GIL released), else pycryptodome's one-shot C
    function called on pointers into the buffer (checked against keccak.new on first use),
    else keccak.new per slice."""
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    n = len(starts)
    if n == 0:
        return b""
    if len(ends) != n or starts.min() < 0 or ends.max() > len(data) or (ends < starts).any():
        raise ValueError("keccak256_many: a slice lies outside the buffer")
    if _native_keccak_many is not None:
        return _native_keccak_many(data, starts, ends)
    oneshot = _keccak_oneshot()
    if oneshot is None:
        mv = memoryview(data).cast("B")
        return b"".join([keccak256(mv[s:e]) for s, e in zip(starts.tolist(), ends.tolist())])
    f, ffi = oneshot
    out = np.empty(32 * n, dtype=np.uint8)
    base = ffi.cast("uint8_t *", data.ctypes.data)
    ob = ffi.cast("uint8_t *", out.ctypes.data)
    for i, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
        f(base + s, e - s, ob + 32 * i, 32, 64, 24, 1)  # capacity 64 bytes, 24 rounds, pad 0x01
    return out.tobytes()


try:  # optional native batch (pyproject's ext-modules)
    from ._keccak import keccak256_many as _native_keccak_many  # type: ignore
except ImportError:  # pragma: no cover - depends on the build
    _native_keccak_many = None


_ONESHOT: list = []


def _keccak_oneshot():
    """(keccak_oneshot, ffi) of pycryptodome's C library, once it gave the right digest."""
    if not _ONESHOT:
        found = None
        try:
            from Crypto.Hash import keccak as _keccak
            from Crypto.Util import _raw_api

            f, ffi = _keccak._raw_keccak_lib.keccak_oneshot, _raw_api.ffi
            probe = np.frombuffer(b"era_tools keccak probe" * 9, dtype=np.uint8).copy()
            out = np.zeros(32, dtype=np.uint8)
            f(ffi.cast("uint8_t *", probe.ctypes.data), len(probe),
              ffi.cast("uint8_t *", out.ctypes.data), 32, 64, 24, 1)
            if out.tobytes() == keccak256(probe.tobytes()):
                found = (f, ffi)
        except Exception:  # pragma: no cover - another pycryptodome build or backend
            found = None
        _ONESHOT.append(found)
    return _ONESHOT[0]


def rlp_decode(data: bytes, where: str = "RLP", max_size: int = DEFAULT_MAX_PAYLOAD,
               max_depth: int = MAX_RLP_DEPTH):
    """Decode one RLP item that spans all of `data`: bytes, or a list of items.

    Rejects truncated, non-canonical and oversized input (and trailing bytes) with a
    FormatError naming `where` and the byte offset inside the RLP."""
    data = bytes(data)
    if len(data) > max_size:
        raise FormatError(f"{where}: RLP of {len(data)} bytes exceeds the limit {max_size}")
    if not data:
        raise FormatError(f"{where}: RLP offset 0: empty input")
    item, end = _rlp_item(data, 0, len(data), where, max_depth)
    if end != len(data):
        raise FormatError(f"{where}: RLP offset {end}: {len(data) - end} trailing bytes after "
                          "the item")
    return item


def _rlp_prefix(data: bytes, pos: int, end: int, where: str) -> tuple[bool, int, int]:
    """(is_list, payload_start, payload_end) of the item at `pos`, checked against `end`."""
    if pos >= end:
        raise FormatError(f"{where}: RLP offset {pos}: truncated (item expected)")
    b = data[pos]
    if b < 0x80:
        return False, pos, pos + 1
    if b < 0xB8 or 0xC0 <= b < 0xF8:  # short string / short list
        is_list = b >= 0xC0
        length = b - (0xC0 if is_list else 0x80)
        start = pos + 1
        if not is_list and length == 1 and start < end and data[start] < 0x80:
            raise FormatError(f"{where}: RLP offset {pos}: non-canonical: single byte "
                              f"0x{data[start]:02x} encoded as a string")
    else:  # long string 0xb8..0xbf, long list 0xf8..0xff
        is_list = b >= 0xF8
        ll = b - (0xF7 if is_list else 0xB7)
        if pos + 1 + ll > end:
            raise FormatError(f"{where}: RLP offset {pos}: truncated length of {ll} bytes")
        raw = data[pos + 1:pos + 1 + ll]
        if raw[0] == 0:
            raise FormatError(f"{where}: RLP offset {pos}: non-canonical: length with a "
                              "leading zero byte")
        length = int.from_bytes(raw, "big")
        if length < 56:
            raise FormatError(f"{where}: RLP offset {pos}: non-canonical: length {length} in "
                              "the long form")
        start = pos + 1 + ll
    if length > end - start:
        raise FormatError(f"{where}: RLP offset {pos}: {'list' if is_list else 'string'} of "
                          f"{length} bytes runs past the end of its container "
                          f"({end - start} bytes left)")
    return is_list, start, start + length


def _rlp_item(data: bytes, pos: int, end: int, where: str, depth: int):
    is_list, start, stop = _rlp_prefix(data, pos, end, where)
    if not is_list:
        return data[start:stop], stop
    if depth <= 0:
        raise FormatError(f"{where}: RLP offset {pos}: lists nested too deeply")
    items = []
    p = start
    while p < stop:
        item, p = _rlp_item(data, p, stop, where, depth - 1)
        items.append(item)
    return items, stop


def rlp_int(b: bytes, where: str = "RLP", what: str = "integer", max_bytes: int = 32) -> int:
    """A canonical RLP scalar (big-endian, no leading zero bytes, b'' is 0)."""
    if len(b) > max_bytes:
        raise FormatError(f"{where}: {what} of {len(b)} bytes exceeds {max_bytes} bytes")
    if b[:1] == b"\x00":
        raise FormatError(f"{where}: {what} 0x{bytes(b).hex()} has a leading zero byte")
    return int.from_bytes(b, "big")


def decode_header(rlp: bytes, where: str = "header") -> list[bytes]:
    """The fields of an RLP block header: a list of 15..21 byte strings (no nested lists)."""
    fields = rlp_decode(rlp, where, max_size=MAX_HEADER_SIZE, max_depth=1)
    if not isinstance(fields, list):
        raise FormatError(f"{where}: header RLP is a string, not a list")
    if not HEADER_FIELDS_MIN <= len(fields) <= HEADER_FIELDS_MAX:
        raise FormatError(f"{where}: header has {len(fields)} fields, expected "
                          f"{HEADER_FIELDS_MIN}..{HEADER_FIELDS_MAX}")
    if len(fields[0]) != 32:
        raise FormatError(f"{where}: header parent_hash is {len(fields[0])} bytes, expected 32")
    return fields


def header_fields(rlp: bytes, where: str = "header") -> tuple[bytes, int]:
    """(parent_hash, number) of an RLP block header (fields 0 and 8)."""
    fields = decode_header(rlp, where)
    return fields[0], rlp_int(fields[8], where, "header number", 8)


def header_difficulty(rlp: bytes, where: str = "header") -> int:
    """The difficulty of an RLP block header (field 7)."""
    return rlp_int(decode_header(rlp, where)[7], where, "header difficulty")


# --------------------------------------------------------------------------------------------
# Accumulator, naming


def accumulator_root(records: Iterable[tuple[bytes, int]]) -> bytes:
    """hash_tree_root(List[HeaderRecord, 8192]) of (block_hash, total_difficulty) pairs,
    HeaderRecord = Container{block_hash: Bytes32, total_difficulty: uint256}."""
    parts = []
    for block_hash, td in records:
        if len(block_hash) != 32:
            raise ValueError(f"block hash of {len(block_hash)} bytes, expected 32")
        if not 0 <= td < 1 << 256:
            raise ValueError(f"total difficulty {td} does not fit a uint256")
        if len(parts) == MAX_BLOCKS:
            raise ValueError(f"more than {MAX_BLOCKS} header records")
        parts.append(bytes(block_hash) + td.to_bytes(32, "little"))
    leaves = hash_layer(b"".join(parts)) if parts else b""  # each record: sha256(hash || td)
    return mix_in_length(merkleize(leaves, MAX_BLOCKS), len(parts))


def era1_file_name(network: str, epoch: int, root: bytes) -> str:
    return f"{network}-{epoch:05d}-{bytes(root[:4]).hex()}.era1"


def parse_era1_file_name(name: str):
    """(network, epoch, short_root_hex) of an era1 file name (a path is fine), or None."""
    m = ERA1_NAME_RE.match(os.path.basename(os.fspath(name)))
    if not m:
        return None
    return m.group("network"), int(m.group("epoch")), m.group("root")


# --------------------------------------------------------------------------------------------
# Reader


class Era1Block(NamedTuple):
    number: int
    header_rlp: bytes
    body_rlp: bytes
    receipts_rlp: bytes
    total_difficulty: int


class BlockGroup(NamedTuple):
    """The four records of one block."""

    header: Record
    body: Record
    receipts: Record
    total_difficulty: Record


class Era1Reader:
    """Random access to one era1 file.  Opening reads the Version record, the BlockIndex and
    the record headers it points at; payloads are read only when asked.  Blocks are addressed
    by index i in [0, count): block number start_number + i."""

    def __init__(self, path: str | os.PathLike, max_payload: int = DEFAULT_MAX_PAYLOAD):
        self.path = os.fspath(path)
        self.name = os.path.basename(self.path)
        self.max_payload = max_payload
        self._f, self.size = e2store.open_for_reading(self.path)
        try:
            self._open()
        except BaseException:
            self._f.close()
            raise

    def _open(self) -> None:
        where, size = self.path, self.size
        if size < HEADER_SIZE:
            raise FormatError(f"{where}: offset 0: file of {size} bytes is too short")
        first = e2store.read_header(self._f, 0, size, where)
        if first.type != VERSION or first.length != 0:
            raise FormatError(f"{where}: offset 0: expected an empty Version record, found "
                              f"{e2store.type_name(first.type)} of {first.length} bytes")
        # BlockIndex: start u64 | offset[count] i64 | count u64, found from the end.
        least = HEADER_SIZE + (HEADER_SIZE + 32) + _INDEX_MIN  # Version, Accumulator, index
        if size < least:
            raise FormatError(f"{where}: offset {size}: file of {size} bytes is too short for "
                              f"an Accumulator and a BlockIndex (at least {least} bytes)")
        (count,) = struct.unpack("<Q", e2store.pread(self._f, 8, size - 8))
        room = (size - least) // 8
        if count > MAX_BLOCKS or count > room:
            raise FormatError(f"{where}: offset {size - 8}: BlockIndex count {count} is larger "
                              f"than {'the file allows' if count <= MAX_BLOCKS else MAX_BLOCKS}"
                              f" (at most {min(room, MAX_BLOCKS)})")
        if count == 0:
            raise FormatError(f"{where}: offset {size - 8}: BlockIndex count 0: no blocks")
        start = size - (8 * count + _INDEX_MIN)  # >= HEADER_SIZE + 40, by the check above
        raw = e2store.pread(self._f, HEADER_SIZE, start)
        if raw != e2store.encode_header(BLOCK_INDEX, 8 * count + 16):
            raise FormatError(
                f"{where}: offset {start}: BlockIndex count {count} (at offset {size - 8}) "
                f"puts a BlockIndex record of {8 * count + 16} bytes here, found record "
                f"header 0x{raw.hex()} ({e2store.type_name(raw[:2])})")
        rec = e2store.decode_header(raw, start, size, where)
        data = e2store.read_data(self._f, rec)  # 8 * count + 16 <= 65552 bytes
        (self.start_number,) = struct.unpack_from("<Q", data, 0)
        if self.start_number > (1 << 63) - MAX_BLOCKS:
            raise FormatError(f"{where}: offset {rec.data_offset}: BlockIndex start number "
                              f"{self.start_number} is out of range")
        self.index_offset = start
        acc_pos = start - (HEADER_SIZE + 32)
        acc = e2store.read_header(self._f, acc_pos, size, where)
        if acc.type != ACCUMULATOR or acc.length != 32:
            raise FormatError(f"{where}: offset {acc_pos}: expected a 32-byte Accumulator "
                              f"record before the BlockIndex, found "
                              f"{e2store.type_name(acc.type)} of {acc.length} bytes")
        self._acc_record = acc
        self.data_end = acc_pos  # block records lie in [8, data_end)
        rel = struct.unpack_from(f"<{count}q", data, 8)
        positions = []
        for i, r in enumerate(rel):
            pos = start + r
            field = rec.data_offset + 8 + 8 * i
            if not HEADER_SIZE <= pos <= self.data_end - HEADER_SIZE:
                raise FormatError(
                    f"{where}: offset {field}: BlockIndex offset {r} for block "
                    f"{self.start_number + i} resolves to {pos}, outside the block records "
                    f"[{HEADER_SIZE}, {self.data_end})")
            if positions and pos <= positions[-1]:
                raise FormatError(
                    f"{where}: offset {field}: BlockIndex offset for block "
                    f"{self.start_number + i} resolves to {pos}, not after the previous "
                    f"block's {positions[-1]}")
            h = e2store.read_header(self._f, pos, size, where)
            if h.type != COMPRESSED_HEADER or h.end > self.data_end:
                raise FormatError(
                    f"{where}: offset {pos}: BlockIndex entry for block {self.start_number + i}"
                    f" points at a {e2store.type_name(h.type)} record of {h.length} bytes, "
                    f"expected a CompressedHeader before offset {self.data_end}")
            positions.append(pos)
        self.positions = positions

    # -- index -------------------------------------------------------------------------------
    @property
    def count(self) -> int:
        return len(self.positions)

    @property
    def end_number(self) -> int:
        """The last block number in the file."""
        return self.start_number + self.count - 1

    @property
    def epoch(self) -> int:
        return self.start_number // MAX_BLOCKS

    def numbers(self) -> range:
        return range(self.start_number, self.start_number + self.count)

    def _check_i(self, i: int) -> int:
        i = operator.index(i)
        if not 0 <= i < self.count:
            raise IndexError(f"{self.path}: block index {i} outside [0, {self.count})")
        return i

    # -- records -----------------------------------------------------------------------------
    def _next(self, pos: int, rtype: bytes, number: int) -> Record:
        """The first record of type `rtype` at or after `pos`, skipping Empty and unknown
        records; any other era1 record type in between is an error."""
        while True:
            if pos + HEADER_SIZE > self.data_end:
                raise FormatError(f"{self.path}: offset {pos}: block {number}: "
                                  f"{e2store.type_name(rtype)} record missing before the "
                                  f"Accumulator at {self.data_end}")
            rec = e2store.read_header(self._f, pos, self.size, self.path)
            if rec.end > self.data_end:
                raise FormatError(f"{self.path}: offset {pos}: block {number}: "
                                  f"{e2store.type_name(rec.type)} record runs into the "
                                  f"Accumulator at {self.data_end}")
            if rec.type == rtype:
                return rec
            if rec.type in _ERA1_TYPES:
                raise FormatError(f"{self.path}: offset {pos}: block {number}: found a "
                                  f"{e2store.type_name(rec.type)} record, expected "
                                  f"{e2store.type_name(rtype)}")
            pos = rec.end

    def group(self, i: int) -> BlockGroup:
        """The record headers of block index i (checked types, inside the block records)."""
        number = self.start_number + self._check_i(i)
        h = self._next(self.positions[i], COMPRESSED_HEADER, number)
        b = self._next(h.end, COMPRESSED_BODY, number)
        r = self._next(b.end, COMPRESSED_RECEIPTS, number)
        t = self._next(r.end, TOTAL_DIFFICULTY, number)
        if t.length != 32:
            raise FormatError(f"{self.path}: offset {t.offset}: block {number}: "
                              f"TotalDifficulty record of {t.length} bytes, expected 32")
        return BlockGroup(h, b, r, t)

    def _payload(self, rec: Record, cap: int) -> bytes:
        return framing.decompress(e2store.read_data(self._f, rec), cap, where=self.path,
                                  base=rec.data_offset)

    def header_rlp(self, i: int) -> bytes:
        return self._payload(self.group(i).header, MAX_HEADER_SIZE)

    def body_rlp(self, i: int) -> bytes:
        return self._payload(self.group(i).body, self.max_payload)

    def receipts_rlp(self, i: int) -> bytes:
        return self._payload(self.group(i).receipts, self.max_payload)

    def total_difficulty(self, i: int) -> int:
        return int.from_bytes(e2store.read_data(self._f, self.group(i).total_difficulty),
                              "little")

    def accumulator_root(self) -> bytes:
        """The 32 bytes stored in the Accumulator record (not recomputed)."""
        return e2store.read_data(self._f, self._acc_record)

    def read_block(self, i: int) -> Era1Block:
        g = self.group(i)
        return Era1Block(self.start_number + i,
                         self._payload(g.header, MAX_HEADER_SIZE),
                         self._payload(g.body, self.max_payload),
                         self._payload(g.receipts, self.max_payload),
                         int.from_bytes(e2store.read_data(self._f, g.total_difficulty),
                                        "little"))

    def iter_blocks(self) -> Iterator[Era1Block]:
        """Era1Block(number, header_rlp, body_rlp, receipts_rlp, total_difficulty) in order."""
        for i in range(self.count):
            yield self.read_block(i)

    def records(self) -> Iterator[Record]:
        """Every record header in file order."""
        return e2store.iter_records(self._f, self.size, self.path)

    def expected_name(self, network: str) -> str:
        return era1_file_name(network, self.epoch, self.accumulator_root())

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "Era1Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# Checking a file


class CheckResult(NamedTuple):
    """One check of `check_era1_file`: its name, whether it passed, a one-line detail (the
    first failure: block number, expected and actual), and that block number or None."""

    check: str
    ok: bool
    detail: str
    block: int | None


CHECKS = ("structure", "header chain", "total difficulty", "accumulator", "name")


class _Facts(NamedTuple):
    hash: bytes
    parent: bytes
    difficulty: int
    td: int


def _walk_structure(r: Era1Reader) -> tuple[list, list, int]:
    """Walk every record between the Version and the Accumulator.  Returns (failures, facts,
    skipped): failures as (detail, block) in file order, facts[i] a _Facts or None, and the
    number of Empty/unknown records skipped."""
    fails: list[tuple[str, int | None]] = []
    facts: list[_Facts | None] = [None] * r.count
    skipped = 0
    i = 0  # next block index expected
    state = 0  # which record of the group comes next
    order = (COMPRESSED_HEADER, COMPRESSED_BODY, COMPRESSED_RECEIPTS, TOTAL_DIFFICULTY)
    recs: list[Record] = []
    try:
        for rec in e2store.iter_records(r._f, r.size, r.path, start=HEADER_SIZE,
                                        stop=r.data_end):
            if rec.type not in _ERA1_TYPES:
                skipped += 1  # Empty and unknown records are skipped by their length (§1)
                continue
            number = r.start_number + i
            if i >= r.count:
                fails.append((f"offset {rec.offset}: {e2store.type_name(rec.type)} record "
                              f"after the {r.count} blocks of the BlockIndex", None))
                return fails, facts, skipped
            if rec.type != order[state]:
                fails.append((f"offset {rec.offset}: block {number}: expected a "
                              f"{e2store.type_name(order[state])} record, found "
                              f"{e2store.type_name(rec.type)}", number))
                return fails, facts, skipped
            if state == 0 and rec.offset != r.positions[i]:
                fails.append((f"offset {rec.offset}: block {number}: CompressedHeader record "
                              f"is here, the BlockIndex says {r.positions[i]}", number))
                return fails, facts, skipped
            recs.append(rec)
            state += 1
            if state < 4:
                continue
            try:
                facts[i] = _block_facts(r, recs, number)
            except FormatError as exc:
                fails.append((str(exc), number))
            recs, state, i = [], 0, i + 1
    except FormatError as exc:  # a record header that cannot be read
        fails.append((str(exc), r.start_number + i if i < r.count else None))
        return fails, facts, skipped
    if state:
        fails.append((f"offset {r.data_end}: block {r.start_number + i}: "
                      f"{e2store.type_name(order[state])} record missing before the "
                      "Accumulator", r.start_number + i))
    elif i != r.count:
        fails.append((f"offset {r.data_end}: {i} blocks before the Accumulator, the BlockIndex "
                      f"has {r.count}", r.start_number + i))
    return fails, facts, skipped


def _block_facts(r: Era1Reader, recs: list[Record], number: int) -> _Facts:
    hdr, body, rcpt, tdrec = recs
    header = r._payload(hdr, MAX_HEADER_SIZE)
    r._payload(body, r.max_payload)
    r._payload(rcpt, r.max_payload)
    where = f"{r.path}: offset {hdr.data_offset}: block {number} header"
    fields = decode_header(header, where)
    got = rlp_int(fields[8], where, "number", 8)
    if got != number:
        raise FormatError(f"{where}: number {got}, expected {number} (start {r.start_number} "
                          f"+ {number - r.start_number})")
    if tdrec.length != 32:
        raise FormatError(f"{r.path}: offset {tdrec.offset}: block {number}: TotalDifficulty "
                          f"record of {tdrec.length} bytes, expected 32")
    td = int.from_bytes(e2store.read_data(r._f, tdrec), "little")
    return _Facts(keccak256(header), fields[0], rlp_int(fields[7], where, "difficulty"), td)


def check_era1_file(path: str | os.PathLike) -> list[CheckResult]:
    """Check one era1 file; findings are returned, not raised.  One CheckResult per check of
    CHECKS, in that order (only "structure" when the file cannot be opened):

    - structure: records in order, every payload decompresses, each header decodes and has
      number start_number + i, TotalDifficulty records are 32 bytes, start is epoch-aligned;
    - header chain: each header's parent_hash is the keccak of the previous header;
    - total difficulty: non-decreasing, and td[i] == td[i-1] + difficulty of header i;
    - accumulator: the root recomputed from the headers and TDs equals the stored one;
    - name: `<network>-<epoch:05d>-<short root>.era1` with this file's epoch and stored root.
    """
    path = os.fspath(path)
    try:
        reader = Era1Reader(path)
    except FormatError as exc:
        return [CheckResult("structure", False, str(exc), None)]
    out: list[CheckResult] = []
    with reader as r:
        fails, facts, skipped = _walk_structure(r)
        if r.start_number % MAX_BLOCKS or r.start_number % MAX_BLOCKS + r.count > MAX_BLOCKS:
            fails.insert(0, (f"BlockIndex covers blocks {r.start_number}..{r.end_number}, not "
                             f"within one epoch of {MAX_BLOCKS} blocks starting at a multiple "
                             f"of {MAX_BLOCKS}", r.start_number))
        if fails:
            detail, block = fails[0]
            if not detail.startswith(r.path):
                detail = f"{r.path}: {detail}"
            out.append(CheckResult("structure", False, detail, block))
        else:
            out.append(CheckResult(
                "structure", True, f"{r.count} blocks {r.start_number}..{r.end_number}"
                + (f", {skipped} Empty/unknown records skipped" if skipped else ""), None))
        out.append(_check_chain(r, facts))
        out.append(_check_td(r, facts))
        out.append(_check_accumulator(r, facts))
        out.append(_check_name(r))
    return out


def _first_missing(r: Era1Reader, facts) -> int | None:
    for i, f in enumerate(facts):
        if f is None:
            return r.start_number + i
    return None


def _unreadable(r: Era1Reader, facts, check: str) -> CheckResult | None:
    """The failed `check` for the first block whose records the structure walk could not read
    (that block could not be checked), or None."""
    missing = _first_missing(r, facts)
    if missing is None:
        return None
    return CheckResult(check, False,
                       f"{r.path}: block {missing}: not checked, its records are unreadable",
                       missing)


def _check_chain(r: Era1Reader, facts) -> CheckResult:
    for i in range(1, len(facts)):
        a, b = facts[i - 1], facts[i]
        if a is None or b is None:
            continue  # reported by the structure check
        if b.parent != a.hash:
            n = r.start_number + i
            return CheckResult("header chain", False,
                               f"{r.path}: block {n}: parent_hash {hex0x(b.parent)}, expected "
                               f"keccak of block {n - 1}'s header {hex0x(a.hash)}", n)
    unreadable = _unreadable(r, facts, "header chain")
    if unreadable is not None:
        return unreadable
    return CheckResult("header chain", True, f"{len(facts)} headers linked by parent hash", None)


def _check_td(r: Era1Reader, facts) -> CheckResult:
    for i in range(1, len(facts)):
        a, b = facts[i - 1], facts[i]
        if a is None or b is None:
            continue
        n = r.start_number + i
        if b.td < a.td:
            return CheckResult("total difficulty", False,
                               f"{r.path}: block {n}: total difficulty {b.td} is less than "
                               f"block {n - 1}'s {a.td}", n)
        if b.td != a.td + b.difficulty:
            return CheckResult("total difficulty", False,
                               f"{r.path}: block {n}: total difficulty {b.td}, expected "
                               f"{a.td + b.difficulty} (block {n - 1}'s {a.td} + difficulty "
                               f"{b.difficulty})", n)
    unreadable = _unreadable(r, facts, "total difficulty")
    if unreadable is not None:
        return unreadable
    return CheckResult("total difficulty", True,
                       f"{facts[0].td}..{facts[-1].td}, each the previous plus the difficulty",
                       None)


def _check_accumulator(r: Era1Reader, facts) -> CheckResult:
    stored = r.accumulator_root()
    missing = _first_missing(r, facts)
    if missing is not None:
        return CheckResult("accumulator", False,
                           f"{r.path}: cannot recompute the accumulator: block {missing} is "
                           "unreadable", missing)
    got = accumulator_root((f.hash, f.td) for f in facts)
    if got != stored:
        return CheckResult("accumulator", False,
                           f"{r.path}: offset {r._acc_record.offset}: stored accumulator root "
                           f"{hex0x(stored)}, recomputed {hex0x(got)}", None)
    return CheckResult("accumulator", True, hex0x(stored), None)


def _check_name(r: Era1Reader) -> CheckResult:
    parsed = parse_era1_file_name(r.name)
    want_root = r.accumulator_root()[:4].hex()
    if parsed is None:
        return CheckResult("name", False,
                           f"{r.path}: not an era1 file name <network>-<epoch:05d>-<8 hex>.era1 "
                           f"(expected <network>-{r.epoch:05d}-{want_root}.era1)", None)
    network, epoch, short = parsed
    if epoch != r.epoch or short != want_root:
        return CheckResult("name", False,
                           f"{r.path}: named epoch {epoch} root {short}, expected "
                           f"{era1_file_name(network, r.epoch, r.accumulator_root())}",
                           r.start_number if epoch != r.epoch else None)
    return CheckResult("name", True, r.name, None)
