"""Every key of the chain store, and the byte layout of every value.

One prefix byte per table; slots are 8-byte big-endian so LevelDB iterates in slot order.
See docs/store.md for the table of tables.  Nothing else in era_tools builds a key.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import StoreError, hex0x

SCHEMA_VERSION = 2
# Version 2 adds the per-era index table (`I`) and 8-byte era-table block references in `r`.
# A version 1 store is a valid version 2 store (it just has no `I` entries), so both are read;
# the first commit that writes an `I` entry into a version 1 store raises its version to 2.
READABLE_SCHEMA_VERSIONS = (1, 2)

# --- table prefixes -------------------------------------------------------------------------
P_META = b"m"          # m<name>                  -> metadata value
P_BLOCK = b"b"         # b<root 32>               -> snappy-framed SSZ SignedBeaconBlock
P_BLOCK_REF = b"r"     # r<root 32>               -> BlockRef (era file id, record offset), or
                       #                             slot u64 BE: the block's entry in an era table
P_SUMMARY = b"h"       # h<root 32>               -> slot u64 BE | parent_root 32
P_INDEX = b"i"         # i<slot u64 BE>           -> root 32, or b"" for an empty slot
P_INDEX_ERA = b"I"     # I<first slot u64 BE>     -> EraTable: the index of one whole era
P_STATE = b"s"         # s<slot u64 BE>           -> snappy-framed SSZ BeaconState (era boundary)
P_STATE_REF = b"S"     # S<slot u64 BE>           -> BlockRef-shaped reference to a state record
P_FILE = b"f"          # f<file id u32 BE>        -> JSON {path, name, size}

TABLES = {
    P_META: "meta", P_BLOCK: "blocks", P_BLOCK_REF: "block_refs", P_SUMMARY: "summaries",
    P_INDEX: "index", P_INDEX_ERA: "index_eras", P_STATE: "states", P_STATE_REF: "state_refs",
    P_FILE: "files",
}

# metadata names
META_SCHEMA_VERSION = b"schema_version"
META_NETWORK = b"network"
META_GVR = b"genesis_validators_root"
META_ANCHOR = b"anchor"
META_NEXT_FILE_ID = b"next_file_id"
META_SYNC = b"sync"    # JSON record of `era sync`: its stage and last status (docs/store.md)
SYNC_STAGES = ("checkpoint", "history", "follow")

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_REF = struct.Struct(">IQ")  # file id, record (header) offset in that file


def meta_key(name: bytes) -> bytes:
    return P_META + name


def block_key(root: bytes) -> bytes:
    return P_BLOCK + _root(root)


def block_ref_key(root: bytes) -> bytes:
    return P_BLOCK_REF + _root(root)


def summary_key(root: bytes) -> bytes:
    return P_SUMMARY + _root(root)


def index_key(slot: int) -> bytes:
    return P_INDEX + _U64.pack(slot)


def era_index_key(first_slot: int) -> bytes:
    return P_INDEX_ERA + _U64.pack(first_slot)


def state_key(slot: int) -> bytes:
    return P_STATE + _U64.pack(slot)


def state_ref_key(slot: int) -> bytes:
    return P_STATE_REF + _U64.pack(slot)


def file_key(file_id: int) -> bytes:
    return P_FILE + _U32.pack(file_id)


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key that starts with `prefix`."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


def _rows(prefix: bytes, cols) -> list:
    """Concatenate a prefix byte and numpy uint8 column blocks row-wise; one bytes per row."""
    n = len(cols[0])
    width = 1 + sum(c.shape[1] for c in cols)
    a = np.empty((n, width), dtype=np.uint8)
    a[:, 0] = prefix[0] if prefix else 0
    pos = 1
    for c in cols:
        a[:, pos:pos + c.shape[1]] = c
        pos += c.shape[1]
    if not prefix:
        a = a[:, 1:]
        width -= 1
    buf = a.tobytes()
    return [buf[i:i + width] for i in range(0, n * width, width)]


def _be64(values) -> np.ndarray:
    return np.asarray(values, dtype=">u8").view(np.uint8).reshape(-1, 8)


def index_keys(slots) -> list:
    """Bulk index_key over a numpy array of slots."""
    return _rows(P_INDEX, [_be64(slots)])


def block_ref_keys(roots: np.ndarray) -> list:
    return _rows(P_BLOCK_REF, [roots])


def summary_keys(roots: np.ndarray) -> list:
    return _rows(P_SUMMARY, [roots])


def summaries(slots, parents: np.ndarray) -> list:
    """Bulk encode_summary."""
    return _rows(b"", [_be64(slots), parents])


def slot_values(slots) -> list:
    """Bulk encode_u64 (the 8-byte era-table form of a block reference)."""
    return _rows(b"", [_be64(slots)])


def refs(file_id: int, offsets) -> list:
    """Bulk encode_ref."""
    ids = np.full(len(offsets), file_id, dtype=">u4").view(np.uint8).reshape(-1, 4)
    return _rows(b"", [ids, _be64(offsets)])


def slot_of_key(key: bytes) -> int:
    """The slot of an index/state/state_ref key."""
    return _U64.unpack_from(key, 1)[0]


def file_id_of_key(key: bytes) -> int:
    return _U32.unpack_from(key, 1)[0]


def _root(root: bytes) -> bytes:
    if len(root) != 32:
        raise ValueError(f"a root is 32 bytes, got {len(root)}")
    return bytes(root)


# --- values ---------------------------------------------------------------------------------
def encode_summary(slot: int, parent_root: bytes) -> bytes:
    return _U64.pack(slot) + _root(parent_root)


def decode_summary(value: bytes) -> tuple[int, bytes]:
    if len(value) != 40:
        raise StoreError(f"block summary of {len(value)} bytes, expected 40")
    return _U64.unpack_from(value, 0)[0], bytes(value[8:40])


def encode_ref(file_id: int, offset: int) -> bytes:
    return _REF.pack(file_id, offset)


def decode_ref(value: bytes) -> tuple[int, int]:
    if len(value) != _REF.size:
        raise StoreError(f"era file reference of {len(value)} bytes, expected {_REF.size}")
    return _REF.unpack(value)


def is_slot_ref(value: bytes) -> bool:
    """An `r` value of 8 bytes names the slot of the block's entry in an era table."""
    return len(value) == _U64.size


class EraTable:
    """The index of one whole era in one value (prefix `I`), written by reference-mode
    front-fill in place of SPHR `i` entries, SPHR `h` summaries and 12-byte `r` references.

    Layout (all big-endian):
        file_id u32 | count u32 | first_parent 32 | positions u64[count] | roots 32[count]
    for the slots [first_slot, first_slot + count).  positions[k] is the e2store record
    offset of the block at slot first_slot + k in era file `file_id`, 0 for an empty slot.
    roots[k] is state.block_roots of the era: the root of the latest block at or before that
    slot (so an empty slot repeats the previous root).  first_parent is the parent_root of the
    era's first block (zero root when the era has no block).  Each block's summary follows:
    its parent is first_parent for the first block, else roots[k - 1].
    """

    HEAD = struct.Struct(">II32s")

    def __init__(self, first_slot: int, file_id: int, first_parent: bytes,
                 positions: np.ndarray, roots: np.ndarray):
        self.first_slot = first_slot
        self.file_id = file_id
        self.first_parent = first_parent
        self.positions = positions      # (count,) uint64 (any byte order)
        self.roots = roots              # (count, 32) uint8
        self.present = np.flatnonzero(positions)
        self.first_block = int(self.present[0]) if len(self.present) else None

    @property
    def count(self) -> int:
        return len(self.positions)

    @property
    def last_slot(self) -> int:
        return self.first_slot + self.count - 1

    def encode(self) -> bytes:
        n = self.count
        return b"".join((self.HEAD.pack(self.file_id, n, self.first_parent),
                         np.asarray(self.positions, dtype=">u8").tobytes(),
                         np.ascontiguousarray(self.roots, dtype=np.uint8).tobytes()))

    @staticmethod
    def decode(first_slot: int, value: bytes) -> "EraTable":
        if len(value) < EraTable.HEAD.size:
            raise StoreError(f"era index table at slot {first_slot}: {len(value)} bytes, "
                             "shorter than its header")
        fid, n, first_parent = EraTable.HEAD.unpack_from(value, 0)
        want = EraTable.HEAD.size + 40 * n
        if len(value) != want:
            raise StoreError(f"era index table at slot {first_slot}: {len(value)} bytes, "
                             f"expected {want} for {n} slots")
        h = EraTable.HEAD.size
        positions = np.frombuffer(value, dtype=">u8", count=n, offset=h)
        roots = np.frombuffer(value, dtype=np.uint8, count=32 * n, offset=h + 8 * n)
        return EraTable(first_slot, fid, bytes(first_parent), positions, roots.reshape(n, 32))

    def entry(self, slot: int) -> bytes:
        """b"" for an empty slot, else the block root at `slot` (inside the table)."""
        k = slot - self.first_slot
        return self.roots[k].tobytes() if self.positions[k] else b""

    def position(self, slot: int) -> int:
        return int(self.positions[slot - self.first_slot])

    def parent(self, slot: int) -> bytes:
        """parent_root of the block at `slot` (which must hold a block)."""
        k = slot - self.first_slot
        return self.first_parent if k == self.first_block else self.roots[k - 1].tobytes()

    def items(self, first: int, last: int, reverse: bool = False):
        """(slot, root or b"") for the slots of [first, last] inside the table."""
        a = max(first, self.first_slot) - self.first_slot
        z = min(last, self.last_slot) - self.first_slot
        if z < a:
            return
        step = -256 if reverse else 256
        starts = range(z - (z - a) % 256, a - 1, step) if reverse else range(a, z + 1, step)
        for c in starts:  # in chunks, so a caller that stops early pays little
            e = min(z, c + 255)
            roots = self.roots[c:e + 1].tobytes()
            present = (self.positions[c:e + 1] != 0).tolist()
            js = range(e - c, -1, -1) if reverse else range(e - c + 1)
            base = self.first_slot + c
            for j in js:
                yield base + j, (roots[32 * j:32 * j + 32] if present[j] else b"")


def encode_u64(n: int) -> bytes:
    return _U64.pack(n)


def decode_u64(value: bytes) -> int:
    return _U64.unpack(value)[0]


@dataclass
class Anchor:
    """The shape Lighthouse's AnchorInfo / Prysm's BackfillStatus use, plus covered ranges.

    oldest_block_*: the lowest block whose whole ancestry back to `covered[0][0]` is indexed
    (for a store filled from genesis, the genesis block).  newest_*: the highest finalized
    slot indexed and the block root at that slot.  covered: disjoint, sorted, inclusive slot
    ranges [a, b] whose index entries are all present (empty slots explicit).
    """

    oldest_block_slot: int | None = None
    oldest_block_root: bytes | None = None
    oldest_block_parent: bytes | None = None
    newest_slot: int | None = None
    newest_root: bytes | None = None
    covered: list = field(default_factory=list)

    def to_json(self) -> dict:
        d = asdict(self)
        for k in ("oldest_block_root", "oldest_block_parent", "newest_root"):
            if d[k] is not None:
                d[k] = hex0x(d[k])
        d["covered"] = [[a, b] for a, b in self.covered]
        return d

    @staticmethod
    def from_json(d: dict) -> "Anchor":
        def b(v):
            return None if v is None else bytes.fromhex(v[2:])

        return Anchor(d.get("oldest_block_slot"), b(d.get("oldest_block_root")),
                      b(d.get("oldest_block_parent")), d.get("newest_slot"),
                      b(d.get("newest_root")), [tuple(r) for r in d.get("covered", [])])

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True).encode()

    @staticmethod
    def decode(value: bytes) -> "Anchor":
        try:
            return Anchor.from_json(json.loads(value))
        except (ValueError, TypeError, AttributeError) as exc:
            raise StoreError(f"anchor record is corrupt: {exc}") from exc


def add_range(ranges, a: int, b: int) -> list:
    """Union of sorted disjoint inclusive ranges with [a, b]; adjacent ranges merge."""
    out = []
    for (x, y) in sorted(list(ranges) + [(a, b)]):
        if out and x <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], y))
        else:
            out.append((x, y))
    return out


def gaps(ranges) -> list:
    """The holes between sorted covered ranges."""
    return [(ranges[i][1] + 1, ranges[i + 1][0] - 1) for i in range(len(ranges) - 1)]
