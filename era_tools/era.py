"""Era files: SlotIndex, EraReader, EraWriter and the file-name rule.

Layout (era-format.md §4):
    Version | block* | state | other* | block SlotIndex | state SlotIndex
Era 0 has the genesis state and its state index only.

The reader finds both indices from the end of the file, checks every untrusted length and
offset against the file size before reading, and reads only what is asked.  The writer writes
`<...>.tmp`, fsyncs, names the file from the state it wrote, and renames.  Works on bytes and
files; knows nothing of LevelDB, HTTP or the terminal.
"""

from __future__ import annotations

import glob
import os
import re
import struct
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from . import e2store, framing
from .e2store import (COMPRESSED_BEACON_STATE, COMPRESSED_SIGNED_BEACON_BLOCK, HEADER_SIZE,
                      SLOT_INDEX, VERSION, Record)
from .errors import FormatError, VerificationError
from .ssz.layout import STATE_BLOCK_ROOTS, StateHead, state_prefix_size

ERA_NAME_RE = re.compile(r"^(?P<config>.+)-(?P<era>\d{5,})-(?P<root>[0-9a-f]{8})\.era$")

# StateHead and state_prefix_size (the BeaconState prefix that names a file) live with the other
# raw byte layouts in era_tools.ssz.layout; imported from here by older callers.


# --------------------------------------------------------------------------------------------
# SlotIndex


@dataclass(frozen=True)
class SlotIndex:
    """start_slot | offset[count] (i64, relative to the record header) | count."""

    start_slot: int
    positions: np.ndarray  # int64 absolute file positions, 0 for an empty slot
    record_offset: int

    @property
    def count(self) -> int:
        return len(self.positions)

    def position(self, slot: int) -> int:
        return int(self.positions[slot - self.start_slot])

    @staticmethod
    def encode(start_slot: int, positions, record_offset: int) -> bytes:
        """Record bytes (header included).  Empty slots (position 0) are written in the Nimbus
        form: an offset that resolves to file position 0."""
        pos = np.asarray(positions, dtype=np.int64)
        rel = pos - record_offset  # position 0 -> -record_offset (Nimbus)
        body = struct.pack("<Q", start_slot) + rel.astype("<i8").tobytes() + struct.pack(
            "<Q", len(pos))
        return e2store.encode_record(SLOT_INDEX, body)

    @staticmethod
    def decode(data: bytes, record_offset: int, where: str) -> "SlotIndex":
        """Parse the data of a SlotIndex record that starts at `record_offset`.  Accepts both
        empty-slot encodings (offset 0 and offset -record_offset)."""
        n = len(data)
        if n % 8 or n < 24:
            raise FormatError(f"{where}: offset {record_offset}: SlotIndex length {n} is not a "
                              "multiple of 8 of at least 24")
        (start_slot,) = struct.unpack_from("<Q", data, 0)
        (count,) = struct.unpack_from("<Q", data, n - 8)
        if count != n // 8 - 2:
            raise FormatError(f"{where}: offset {n - 8 + record_offset + HEADER_SIZE}: SlotIndex "
                              f"count {count} does not match its length {n} "
                              f"(expected {n // 8 - 2})")
        rel = np.frombuffer(data, dtype="<i8", count=count, offset=8).astype(np.int64)
        pos = rel + record_offset
        empty = (rel == 0) | (pos == 0)
        pos[empty] = 0
        bad = (~empty) & ((pos < HEADER_SIZE) | (pos + HEADER_SIZE > record_offset))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise FormatError(
                f"{where}: offset {record_offset + HEADER_SIZE + 8 + 8 * i}: SlotIndex offset "
                f"{int(rel[i])} for slot {start_slot + i} resolves to {int(pos[i])}, outside "
                f"the data before the index [8, {record_offset})")
        return SlotIndex(start_slot, pos, record_offset)


# --------------------------------------------------------------------------------------------
# Naming


def era_file_name(config_name: str, era: int, short_root: bytes) -> str:
    return f"{config_name}-{era:05d}-{bytes(short_root[:4]).hex()}.era"


def parse_era_file_name(name: str):
    """(config_name, era, short_root_hex) or None."""
    m = ERA_NAME_RE.match(os.path.basename(name))
    if not m:
        return None
    return m.group("config"), int(m.group("era")), m.group("root")


# --------------------------------------------------------------------------------------------
# Reader


class EraReader:
    """Random access to one era file.  Opening reads only the two indices."""

    def __init__(self, path: str | os.PathLike, max_payload: int = framing.DEFAULT_MAX_SIZE):
        self.path = os.fspath(path)
        self.name = os.path.basename(self.path)
        self.max_payload = max_payload
        self._f, self.size = e2store.open_for_reading(self.path)
        try:
            self._open()
        except BaseException:
            self._f.close()
            raise

    # -- structure ---------------------------------------------------------------------------
    def _where(self) -> str:
        return self.path

    def _read_index_ending_at(self, end: int) -> SlotIndex:
        where = self.path
        if end < HEADER_SIZE + 8 + 24:
            raise FormatError(f"{where}: offset {end}: no room for a SlotIndex before this point")
        (count,) = struct.unpack("<Q", e2store.pread(self._f, 8, end - 8))
        if count > (end - HEADER_SIZE) // 8:
            raise FormatError(f"{where}: offset {end - 8}: SlotIndex count {count} is larger "
                              f"than the file allows")
        start = end - (8 * count + 24)
        if start < HEADER_SIZE:
            raise FormatError(f"{where}: offset {end - 8}: SlotIndex count {count} puts the "
                              f"index before the start of the file")
        rec = e2store.read_header(self._f, start, self.size, where)
        if rec.type != SLOT_INDEX or rec.end != end:
            raise FormatError(
                f"{where}: offset {start}: expected a SlotIndex record of {8 * count + 16} "
                f"bytes ending at {end}, found {e2store.type_name(rec.type)} of {rec.length}")
        return SlotIndex.decode(e2store.read_data(self._f, rec), start, where)

    def _open(self) -> None:
        where = self.path
        if self.size < HEADER_SIZE:
            raise FormatError(f"{where}: offset 0: file of {self.size} bytes is too short")
        first = e2store.read_header(self._f, 0, self.size, where)
        if first.type != VERSION or first.length != 0:
            raise FormatError(f"{where}: offset 0: expected an empty Version record, found "
                              f"{e2store.type_name(first.type)} of {first.length} bytes")
        self.state_index = self._read_index_ending_at(self.size)
        if self.state_index.count != 1:
            raise FormatError(f"{where}: offset {self.state_index.record_offset}: state "
                              f"SlotIndex has count {self.state_index.count}, expected 1")
        self.state_slot = self.state_index.start_slot
        self.block_index: SlotIndex | None = None
        if self.state_slot != 0:
            self.block_index = self._read_index_ending_at(self.state_index.record_offset)
            bi = self.block_index
            sphr = bi.count
            if sphr & (sphr - 1) or self.state_slot % sphr or \
                    bi.start_slot != self.state_slot - sphr:
                raise FormatError(
                    f"{where}: offset {bi.record_offset}: block SlotIndex covers "
                    f"[{bi.start_slot}, {bi.start_slot + sphr - 1}] which does not end an era "
                    f"at state slot {self.state_slot}")
        self.slots_per_historical_root = self.block_index.count if self.block_index else None
        self.era = self.state_slot // self.slots_per_historical_root if self.block_index else 0
        self.data_end = (self.block_index or self.state_index).record_offset
        if self.state_index.positions[0] == 0:
            raise FormatError(f"{where}: offset {self.state_index.record_offset}: state "
                              "SlotIndex marks the state as missing")

    @property
    def start_slot(self) -> int | None:
        return self.block_index.start_slot if self.block_index else None

    @property
    def end_slot(self) -> int | None:
        """Last slot whose block this era holds."""
        return self.state_slot - 1 if self.block_index else None

    def slots(self) -> range:
        if not self.block_index:
            return range(0)
        return range(self.block_index.start_slot, self.state_slot)

    def block_slots(self) -> list[int]:
        if not self.block_index:
            return []
        nz = np.flatnonzero(self.block_index.positions)
        return [int(i) + self.block_index.start_slot for i in nz]

    def empty_slots(self) -> list[int]:
        if not self.block_index:
            return []
        z = np.flatnonzero(self.block_index.positions == 0)
        return [int(i) + self.block_index.start_slot for i in z]

    # -- records -----------------------------------------------------------------------------
    def _record_at(self, pos: int, rtype: bytes, what: str) -> Record:
        rec = e2store.read_header(self._f, pos, self.size, self.path)
        if rec.type != rtype:
            raise FormatError(f"{self.path}: offset {pos}: {what} points at a "
                              f"{e2store.type_name(rec.type)} record, expected "
                              f"{e2store.type_name(rtype)}")
        if rec.end > self.data_end:
            raise FormatError(f"{self.path}: offset {pos}: {what} record runs into the index "
                              f"at {self.data_end}")
        return rec

    def block_record(self, slot: int) -> Record | None:
        if not self.block_index or not (self.block_index.start_slot <= slot < self.state_slot):
            raise KeyError(slot)
        pos = self.block_index.position(slot)
        if pos == 0:
            return None
        return self._record_at(pos, COMPRESSED_SIGNED_BEACON_BLOCK, f"slot {slot}")

    def block_framed(self, slot: int) -> bytes | None:
        """The snappy-framed SSZ bytes of the block at `slot`, or None for an empty slot."""
        rec = self.block_record(slot)
        return None if rec is None else e2store.read_data(self._f, rec)

    def _decompress(self, rec: Record, data: bytes, mutable: bool = False) -> bytes:
        return framing.decompress(data, self.max_payload, where=self.path,
                                  base=rec.data_offset, mutable=mutable)

    def block_ssz(self, slot: int, mutable: bool = False) -> bytes | None:
        """The uncompressed SSZ SignedBeaconBlock at `slot` (None: empty); `mutable`: as a
        bytearray, without the final copy (framing.decompress)."""
        rec = self.block_record(slot)
        if rec is None:
            return None
        return self._decompress(rec, e2store.read_data(self._f, rec), mutable)

    def iter_block_records(self) -> Iterator[tuple[int, Record]]:
        for slot in self.block_slots():
            yield slot, self.block_record(slot)

    def iter_blocks(self) -> Iterator[tuple[int, bytes]]:
        """(slot, uncompressed SSZ SignedBeaconBlock) in slot order."""
        for slot, rec in self.iter_block_records():
            yield slot, self._decompress(rec, e2store.read_data(self._f, rec))

    def iter_blocks_framed(self) -> Iterator[tuple[int, bytes]]:
        for slot, rec in self.iter_block_records():
            yield slot, e2store.read_data(self._f, rec)

    def state_record(self) -> Record:
        return self._record_at(int(self.state_index.positions[0]), COMPRESSED_BEACON_STATE,
                               f"state slot {self.state_slot}")

    def state_framed(self) -> bytes:
        return e2store.read_data(self._f, self.state_record())

    def state_ssz(self, mutable: bool = False) -> bytes:
        """The uncompressed SSZ BeaconState; `mutable`: as a bytearray, without a copy of it."""
        rec = self.state_record()
        return self._decompress(rec, e2store.read_data(self._f, rec), mutable)

    def state_head(self, slots_per_historical_root: int | None = None) -> StateHead:
        """slot, genesis_validators_root, block_roots, state_roots, ... of the era state,
        decompressing only the chunks that hold them."""
        sphr = self.slots_per_historical_root or slots_per_historical_root
        rec = self.state_record()
        need = state_prefix_size(sphr) if sphr else STATE_BLOCK_ROOTS
        prefix = framing.decompress_prefix(e2store.read_data(self._f, rec), need,
                                           where=self.path, base=rec.data_offset)
        head = StateHead.parse(prefix, sphr, self.path)
        if head.slot != self.state_slot:
            raise FormatError(f"{self.path}: offset {rec.offset}: state slot {head.slot} does "
                              f"not match its SlotIndex slot {self.state_slot}")
        return head

    def records(self) -> Iterator[Record]:
        """Every record header in file order."""
        return e2store.iter_records(self._f, self.size, self.path)

    # -- naming ------------------------------------------------------------------------------
    def expected_name(self, config_name: str, head: StateHead | None = None) -> str:
        head = head or self.state_head()
        return era_file_name(config_name, self.era, head.short_root(self.era))

    # -- decoding (needs the network's fork schedule) ----------------------------------------
    def block(self, slot: int, network):
        from . import ssz

        data = self.block_ssz(slot)
        if data is None:
            return None
        return ssz.decode_block(data, network.fork_name_at_slot(slot), network.preset_base)

    def state(self, network):
        from . import ssz

        return ssz.decode_state(self.state_ssz(), network.fork_name_at_slot(self.state_slot),
                                network.preset_base)

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "EraReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def era_files_in(paths) -> list[str]:
    """Expand files and directories into era file paths, sorted by name.  An s3:// URL
    is an object (ending in .era) or a prefix, expanded to the .era objects directly
    under it."""
    out = []
    for p in paths:
        p = os.fspath(p)
        if p.startswith("s3://"):
            from . import objstore

            out.extend(objstore.files_in(p, ".era"))
        elif os.path.isdir(p):  # its .era files, not subdirectories that happen to be so named
            out.extend(os.path.join(p, n) for n in os.listdir(p)
                       if n.endswith(".era") and not os.path.isdir(os.path.join(p, n)))
        else:
            out.append(p)
    return sorted(out, key=lambda x: (os.path.dirname(x), os.path.basename(x)))


def contents_equal(path_a: str, path_b: str) -> bool:
    """Same records, same decompressed SSZ: how era files are compared (encoders differ)."""
    with EraReader(path_a) as a, EraReader(path_b) as b:
        if (a.era, a.state_slot, a.slots_per_historical_root) != (
                b.era, b.state_slot, b.slots_per_historical_root):
            return False
        if a.block_slots() != b.block_slots():
            return False
        for (sa, da), (sb, db) in zip(a.iter_blocks(), b.iter_blocks()):
            if sa != sb or da != db:
                return False
        return a.state_ssz() == b.state_ssz()


# --------------------------------------------------------------------------------------------
# Writer


class EraWriter:
    """Write one era file atomically.

        with EraWriter(out_dir, "mainnet", era=5, slots_per_historical_root=8192) as w:
            w.add_block(slot, ssz=...)         # ascending slots; or framed=...
            w.set_state(ssz=...)               # the state at era * SPHR
        w.path                                 # the final, named file

    Blocks and the state may be given uncompressed (`ssz=`) or already snappy-framed
    (`framed=`), which is copied through unchanged.
    """

    def __init__(self, out_dir: str | os.PathLike, config_name: str, era: int,
                 slots_per_historical_root: int, fsync: bool = True):
        self.out_dir = os.fspath(out_dir)
        self.config_name = config_name
        self.era = era
        self.sphr = slots_per_historical_root
        self.fsync = fsync
        self.start_slot = (era - 1) * self.sphr if era > 0 else None
        self.state_slot = era * self.sphr
        self.tmp_path = os.path.join(self.out_dir, f"{config_name}-{era:05d}.era.tmp")
        self.path: str | None = None
        self._positions = np.zeros(self.sphr if era > 0 else 0, dtype=np.int64)
        self._last_slot = -1
        self._state_prefix: bytes | None = None
        self._state_pos = 0
        os.makedirs(self.out_dir, exist_ok=True)
        self._f = open(self.tmp_path, "wb")
        self._pos = 0
        self._write(e2store.encode_record(VERSION, b""))

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self._pos += len(data)

    def add_block(self, slot: int, ssz: bytes | None = None, framed: bytes | None = None) -> None:
        if self.era == 0:
            raise FormatError("era 0 holds no blocks")
        if self._state_prefix is not None:
            raise FormatError("blocks must be written before the state")
        if not (self.start_slot <= slot < self.state_slot):
            raise FormatError(f"slot {slot} is outside era {self.era} "
                              f"[{self.start_slot}, {self.state_slot - 1}]")
        if slot <= self._last_slot:
            raise FormatError(f"slot {slot} written after slot {self._last_slot}")
        self._last_slot = slot
        data = framed if framed is not None else framing.compress(ssz)
        self._positions[slot - self.start_slot] = self._pos
        self._write(e2store.encode_record(COMPRESSED_SIGNED_BEACON_BLOCK, data))

    def copy_block_records(self, slots, offsets, src_fd: int, src_offset: int,
                           length: int) -> None:
        """Copy `length` bytes of consecutive whole CompressedSignedBeaconBlock records from
        file descriptor `src_fd` at `src_offset` unchanged (os.copy_file_range: no copy
        through user space where the OS allows it).  The record of slots[i] starts at
        offsets[i] within those bytes; slots ascend and follow the blocks already written.
        The caller has checked the record headers (type, length) in the source."""
        slots = [int(x) for x in slots]
        if self.era == 0:
            raise FormatError("era 0 holds no blocks")
        if self._state_prefix is not None:
            raise FormatError("blocks must be written before the state")
        if not slots or len(slots) != len(offsets):
            raise ValueError("one offset per slot, at least one slot")
        if slots[0] <= self._last_slot or any(b <= a for a, b in zip(slots, slots[1:])):
            raise FormatError(f"slots {slots[0]}..{slots[-1]} written out of order (after "
                              f"slot {self._last_slot})")
        if not (self.start_slot <= slots[0] and slots[-1] < self.state_slot):
            raise FormatError(f"slots {slots[0]}..{slots[-1]} are outside era {self.era} "
                              f"[{self.start_slot}, {self.state_slot - 1}]")
        pos = self._pos
        self._copy_from(src_fd, src_offset, length)
        for slot, off in zip(slots, offsets):
            self._positions[slot - self.start_slot] = pos + int(off)
        self._last_slot = slots[-1]

    def copy_state_record(self, src_fd: int, record_offset: int, prefix: bytes) -> int:
        """Copy the whole CompressedBeaconState record at `record_offset` of file descriptor
        `src_fd` unchanged (os.copy_file_range where the OS allows it).  `prefix`: the first
        state_prefix_size(SPHR) bytes of its decompressed SSZ (names the file).  Returns the
        record's size."""
        if self._state_prefix is not None:
            raise FormatError("the state was already written")
        rec = e2store.decode_header(os.pread(src_fd, HEADER_SIZE, record_offset),
                                    record_offset, os.fstat(src_fd).st_size, "state source")
        if rec.type != COMPRESSED_BEACON_STATE:
            raise FormatError(f"state source: offset {record_offset}: a "
                              f"{e2store.type_name(rec.type)} record, not a "
                              "CompressedBeaconState")
        head = StateHead.parse(prefix, self.sphr, f"era {self.era} state")
        if head.slot != self.state_slot:
            raise FormatError(f"era {self.era}: state slot {head.slot}, expected "
                              f"{self.state_slot}")
        self._state_prefix = bytes(prefix)
        self._state_head = head
        self._state_pos = self._pos
        self._copy_from(src_fd, record_offset, HEADER_SIZE + rec.length)
        return HEADER_SIZE + rec.length

    def _copy_from(self, src_fd: int, src_offset: int, length: int) -> None:
        """Append `length` bytes of `src_fd` at `src_offset` to the file."""
        self._f.flush()
        dst, pos, done = self._f.fileno(), self._pos, 0
        while done < length:
            try:
                n = os.copy_file_range(src_fd, dst, length - done, src_offset + done,
                                       pos + done)
            except (AttributeError, OSError):  # no copy_file_range here: through a buffer
                n = os.pwrite(dst, os.pread(src_fd, min(length - done, 1 << 24),
                                            src_offset + done), pos + done)
            if n <= 0:
                raise FormatError(f"offset {src_offset + done}: source ended {length - done} "
                                  "bytes early while copying records")
            done += n
        self._f.seek(pos + length)
        self._pos += length
        self.start_writeback(pos)

    def start_writeback(self, since: int = 0) -> None:
        """Start writing the bytes written since offset `since` back to disk now (when the
        writer fsyncs), so that finish()'s fsync has less left to wait for."""
        if self.fsync and hasattr(os, "posix_fadvise"):
            self._f.flush()
            os.posix_fadvise(self._f.fileno(), since, self._pos - since,
                             os.POSIX_FADV_DONTNEED)

    def set_state(self, ssz: bytes | None = None, framed: bytes | None = None) -> None:
        if self._state_prefix is not None:
            raise FormatError("the state was already written")
        need = state_prefix_size(self.sphr)
        if ssz is not None:
            prefix = bytes(ssz[:need])
            data = framing.compress(ssz)
        else:
            prefix = framing.decompress_prefix(framed, need, where=f"era {self.era} state")
            data = framed
        head = StateHead.parse(prefix, self.sphr, f"era {self.era} state")
        if head.slot != self.state_slot:
            raise FormatError(f"era {self.era}: state slot {head.slot}, expected "
                              f"{self.state_slot}")
        self._state_prefix = prefix
        self._state_head = head
        self._state_pos = self._pos
        self._write(e2store.encode_record(COMPRESSED_BEACON_STATE, data))

    def finish(self) -> str:
        if self._state_prefix is None:
            raise FormatError(f"era {self.era}: no state written")
        if self.era > 0:
            self._write(SlotIndex.encode(self.start_slot, self._positions, self._pos))
        self._write(SlotIndex.encode(self.state_slot, [self._state_pos], self._pos))
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())
        self._f.close()
        name = era_file_name(self.config_name, self.era, self._state_head.short_root(self.era))
        final = os.path.join(self.out_dir, name)
        pattern = os.path.join(glob.escape(self.out_dir),
                               f"{glob.escape(self.config_name)}-{self.era:05d}-*.era")
        for existing in glob.glob(pattern):
            if os.path.basename(existing) != name:
                self.abort()
                raise VerificationError(
                    f"{existing}: refusing to write {name}: a different file for era "
                    f"{self.era} exists")
        if os.path.exists(final):
            if not contents_equal(final, self.tmp_path):
                self.abort()
                raise VerificationError(f"{final}: refusing to overwrite: the existing file "
                                        "has different contents")
            os.unlink(self.tmp_path)
        else:
            os.replace(self.tmp_path, final)
            if self.fsync:
                fsync_dir(self.out_dir)
        self.path = final
        return final

    def abort(self) -> None:
        if not self._f.closed:
            self._f.close()
        try:
            os.unlink(self.tmp_path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "EraWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            if self.path is None:
                self.finish()
        else:
            self.abort()


def fsync_dir(path: str) -> None:
    """Make a rename in `path` durable (best effort where directories can't be fsynced)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
