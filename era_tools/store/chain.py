"""The chain store: finalized blocks, the slot -> root index, era-boundary states, an anchor.

    store = ChainStore.open(path, network)               # creates, or checks the network
    b = store.batch()
    b.put_block(slot, root, parent_root, framed)         # block + summary + index entry
    b.put_empty(slot)                                    # explicit empty slot
    b.put_state(slot, framed)                            # era-boundary state (snappy-framed)
    b.cover(first_slot, last_slot)                       # these slots are now fully indexed
    store.commit(b)                                      # ONE atomic LevelDB write batch:
                                                         # data, index and the new anchor

    store.anchor, store.covered_ranges(), store.gaps()
    store.index_entry(slot)      # None (unknown) | b"" (empty slot) | root
    store.block_root_at(slot)    # the block_roots[] meaning: root of the latest block <= slot
    store.get_block_framed(root), store.get_summary(root), store.get_state_framed(slot)

Blocks may be stored inline (framed bytes in LevelDB), as references into era files
(`put_block_ref`), which front-fill uses by default, or as references into the store's own
immutable block files (`put_blocks_file`, one per backfill commit: LevelDB would otherwise
rewrite every block on each compaction, since blocks are keyed by random roots).  Readers do
not care which.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from collections import OrderedDict

import numpy as np

from .. import e2store, framing
from ..config import Network, network_from_spec
from ..errors import ConfigError, StoreError, hex0x
from ..fileio import DirectFile
from . import schema
from .db import KV
from .schema import Anchor

MAX_OPEN_FILES = 64     # referenced era files kept open at once (LRU)
STATES_DIR = "states"  # era-boundary state files of put_state_file, inside the store directory
BLOCKS_DIR = "blocks"  # block files of put_blocks_file, inside the store directory


def _network_identity(net: Network) -> dict:
    return {"config_name": net.config_name, "preset_base": net.preset_base,
            "forks": [[f.name, f.epoch, f.version.hex()] for f in net.forks]}


class Batch:
    """Pending writes of one import step.  Nothing is visible until `ChainStore.commit`."""

    def __init__(self, store: "ChainStore"):
        self.store = store
        self.puts: dict[bytes, bytes] = {}
        self.index: dict[int, bytes] = {}        # slot -> root or b""
        self.summaries: dict[bytes, tuple] = {}  # root -> (slot, parent)
        self.ranges: list[tuple[int, int]] = []
        self.anchor: Anchor | None = None        # explicit override (set_anchor)
        self.new_files: dict[str, int] = {}
        self.raw: list = []                      # bulk (key, value) pairs
        self.bulk_summaries: list = []           # (root -> slot, roots, parents) per bulk put
        self.era_tables: list = []               # schema.EraTable per put_era_refs

    def __len__(self) -> int:
        return len(self.puts) + len(self.raw)

    def summary(self, root: bytes):
        if root in self.summaries:
            return self.summaries[root]
        for by_root, roots, parents in self.bulk_summaries:
            if root in by_root:
                j = roots.index(root)
                return by_root[root], parents[j].tobytes()
        for t in self.era_tables:
            slot = _table_slot_of_root(t, root)
            if slot is not None:
                return slot, t.parent(slot)
        return None

    def entry(self, slot: int):
        """This batch's index entry at `slot` (None when the batch does not index it)."""
        if slot in self.index:
            return self.index[slot]
        for t in self.era_tables:
            if t.first_slot <= slot <= t.last_slot:
                return t.entry(slot)
        return None

    def first_block_slot(self, first: int, last: int):
        """The lowest slot in [first, last] where this batch puts a block, or None."""
        best = None
        for s, r in self.index.items():
            if r and first <= s <= last and (best is None or s < best):
                best = s
        for t in self.era_tables:
            a = max(first, t.first_slot) - t.first_slot
            z = min(last, t.last_slot) - t.first_slot
            if z >= a:
                nz = np.flatnonzero(t.positions[a:z + 1])
                if len(nz):
                    s = t.first_slot + a + int(nz[0])
                    best = s if best is None else min(best, s)
        return best

    def put_block(self, slot: int, root: bytes, parent_root: bytes, framed: bytes) -> None:
        self.puts[schema.block_key(root)] = bytes(framed)
        self._summary_and_index(slot, root, parent_root)

    def put_block_ref(self, slot: int, root: bytes, parent_root: bytes, file_id: int,
                      record_offset: int) -> None:
        self.puts[schema.block_ref_key(root)] = schema.encode_ref(file_id, record_offset)
        self._summary_and_index(slot, root, parent_root)

    def _summary_and_index(self, slot, root, parent_root):
        self.puts[schema.summary_key(root)] = schema.encode_summary(slot, parent_root)
        self.puts[schema.index_key(slot)] = bytes(root)
        self.index[slot] = bytes(root)
        self.summaries[bytes(root)] = (slot, bytes(parent_root))

    def _bulk(self, slots, roots, parents, value_keys, values, first, last, skip):
        """Index [first, last] in one go: blocks at `slots` (numpy arrays), empty elsewhere;
        slots in `skip` (already indexed) are left alone.  Keys are built with numpy."""
        slots = np.asarray(slots, dtype=np.int64)
        if skip:
            keep = np.array([int(s) not in skip for s in slots], dtype=bool)
            slots, roots, parents = slots[keep], roots[keep], parents[keep]
            values = [v for v, k in zip(values, keep) if k]
        rkeys = schema.summary_keys(roots)
        sums = schema.summaries(slots, parents)
        raw = self.raw
        raw.extend(zip(value_keys(roots), values))
        raw.extend(zip(rkeys, sums))
        all_slots = np.arange(first, last + 1, dtype=np.int64)
        vals = [b""] * len(all_slots)
        root_list = [k[1:] for k in rkeys]
        for s, rt in zip((slots - first).tolist(), root_list):
            vals[s] = rt
        if skip:
            pairs = [(s, v) for s, v in zip(all_slots.tolist(), vals) if s not in skip]
            all_slots = np.array([p[0] for p in pairs], dtype=np.int64)
            vals = [p[1] for p in pairs]
        raw.extend(zip(schema.index_keys(all_slots), vals))
        self.index.update(zip(all_slots.tolist(), vals))
        self.bulk_summaries.append((dict(zip(root_list, slots.tolist())), root_list, parents))

    def put_block_refs(self, slots, roots, parents, file_id: int, record_offsets,
                       first: int, last: int, skip=()) -> None:
        """Bulk put_block_ref for one era: blocks at `slots`, empty slots elsewhere in
        [first, last]."""
        self._bulk(slots, roots, parents, schema.block_ref_keys,
                   schema.refs(file_id, record_offsets), first, last, skip)

    def put_era_refs(self, first: int, file_id: int, record_offsets, block_roots,
                     first_parent: bytes) -> None:
        """Index one whole era compactly: ONE era-table value (prefix `I`) for the slots
        [first, first + len(record_offsets)) plus one 8-byte `r` entry per block (root ->
        slot) instead of an `i`, an `h` and an `r` entry per slot.

        record_offsets: per slot, the block record's offset in era file `file_id`, 0 for an
        empty slot; block_roots: (count, 32) uint8, the era state's block_roots (an empty
        slot repeats the previous root); first_parent: parent_root of the era's first block.
        Readers see the same index, summaries and blocks as with put_block_refs.  Use it only
        for a range the store does not index yet (per-slot `i` entries take precedence)."""
        positions = np.asarray(record_offsets, dtype=np.uint64)
        roots = np.ascontiguousarray(block_roots, dtype=np.uint8).reshape(-1, 32)
        if len(roots) != len(positions):
            raise ValueError("one block root per slot")
        t = schema.EraTable(first, file_id, bytes(first_parent), positions, roots)
        self.era_tables.append(t)
        present = t.present
        self.raw.append((schema.era_index_key(first), t.encode()))
        self.raw.extend(zip(schema.block_ref_keys(roots[present]),
                            schema.slot_values(present + first)))

    def put_empty(self, slot: int) -> None:
        self.puts[schema.index_key(slot)] = b""
        self.index[slot] = b""

    def put_state(self, slot: int, framed: bytes) -> None:
        self.puts[schema.state_key(slot)] = bytes(framed)

    def put_state_ref(self, slot: int, file_id: int, record_offset: int) -> None:
        self.puts[schema.state_ref_key(slot)] = schema.encode_ref(file_id, record_offset)

    def put_state_file(self, slot: int, framed: bytes) -> None:
        """Store an era-boundary state as a file inside the store directory rather than as a
        LevelDB value (mainnet states are hundreds of MB; LevelDB would rewrite them on every
        compaction): `<store>/states/<slot:012d>.e2s`, an e2store file holding a Version
        record and one CompressedBeaconState record with `framed` as its data.

        The file is written now (tmp + fsync + rename + directory fsync), before the batch
        that references it (an `S` reference and an `f` entry, path relative to the store)
        commits.  A run killed in between leaves a file nothing references; the rerun, which
        finds no state at that slot, replaces it."""
        final, offsets = self._write_file(STATES_DIR, f"{slot:012d}",
                                          e2store.COMPRESSED_BEACON_STATE, [framed], "state")
        self.put_state_ref(slot, self.file_id(final), offsets[0])

    def put_blocks_file(self, blocks, name: str) -> None:
        """Store `blocks` ([(slot, root, parent_root, framed)]) in a new immutable e2store file
        inside the store directory, `<store>/blocks/<name>.e2s` (a Version record, then one
        CompressedSignedBeaconBlock record per block), and reference them from this batch.
        Written like `put_state_file`: complete and fsync'ed before the batch commits; a
        run killed in between leaves a file nothing references (`remove_unreferenced_files`)."""
        blocks = list(blocks)
        fid, offsets = self.write_blocks_file([b[3] for b in blocks], name)
        for (slot, root, parent, _), off in zip(blocks, offsets):
            self.put_block_ref(slot, root, parent, fid, off)

    def write_blocks_file(self, framed: list, name: str) -> tuple[int, list[int]]:
        """The file of `put_blocks_file` alone: (file id, record offsets), for callers that
        index the blocks themselves (front-fill's copy mode writes an era table over it)."""
        final, offsets = self._write_file(BLOCKS_DIR, name,
                                          e2store.COMPRESSED_SIGNED_BEACON_BLOCK, framed,
                                          "block")
        return self.file_id(final), offsets

    def _write_file(self, subdir: str, name: str, rtype: bytes, payloads, what: str):
        """tmp + fsync + rename + directory fsync of an e2store file in the store directory;
        (path, record offsets)."""
        if self.store.readonly:
            raise StoreError(f"{self.store.path}: the store is open read-only")
        d = os.path.join(self.store.path, subdir)
        final = os.path.join(d, f"{name}.e2s")
        n = 0
        while os.path.abspath(final) in self.store._file_ids:  # never replace a referenced file
            n += 1
            final = os.path.join(d, f"{name}.{n}.e2s")
        tmp = final + ".tmp"
        parts = [e2store.encode_record(e2store.VERSION, b"")]
        for data in payloads:
            parts.append(e2store.encode_header(rtype, len(data)))
            parts.append(data)
        try:
            os.makedirs(d, exist_ok=True)
            with DirectFile(tmp) as f:  # O_DIRECT: no page-cache copy before the fsync
                offsets = f.write_parts(parts)[1::2]  # the records' headers
            os.replace(tmp, final)
            fd = os.open(d, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StoreError(f"{final}: cannot write the {what} file: {exc.strerror}") from exc
        return final, offsets

    def file_id(self, path: str) -> int:
        """The id of a referenced era file, registering it in this batch if new.  A file
        inside the store directory is recorded by its path relative to the store."""
        path = os.path.abspath(path)
        fid = self.store._file_ids.get(path)
        if fid is None:
            fid = self.new_files.get(path)
        if fid is not None:
            return fid
        fid = self.store._next_file_id + len(self.new_files)
        self.new_files[path] = fid
        st = os.stat(path)
        home = os.path.abspath(self.store.path)
        stored = os.path.relpath(path, home) if os.path.commonpath([path, home]) == home \
            else path
        self.puts[schema.file_key(fid)] = json.dumps(
            {"path": stored, "name": os.path.basename(path), "size": st.st_size}).encode()
        return fid

    def cover(self, first: int, last: int) -> None:
        """Declare [first, last] fully indexed once this batch commits."""
        if last >= first:
            self.ranges.append((first, last))

    def set_anchor(self, anchor: Anchor) -> None:
        self.anchor = anchor


class ChainStore:
    def __init__(self, kv: KV, network: Network):
        self.kv = kv
        self.network = network
        self.path = kv.path
        self.readonly = kv.readonly
        self._file_ids: dict[str, int] = {}
        self._files: dict[int, dict] = {}
        # open referenced files, least recently used first: fid -> [file, readers]
        self._handles: OrderedDict[int, list] = OrderedDict()
        self._lock = threading.Lock()
        self._pending_meta: dict = {}
        self._made_dir = False  # this open created the store's directory
        self._tables: dict[int, schema.EraTable | None] = {}  # first slot -> table (cache)
        self.schema_version = schema.SCHEMA_VERSION
        for k, v in kv.iterate(schema.P_FILE):
            fid = schema.file_id_of_key(k)
            info = self._file_info(v)
            self._files[fid] = info
            self._file_ids[info["path"]] = fid
        self._next_file_id = max(self._files, default=-1) + 1

    def _file_info(self, value: bytes) -> dict:
        """An `f` entry, its path made absolute (relative paths are inside the store)."""
        info = json.loads(value)
        if not os.path.isabs(info["path"]):
            info["path"] = os.path.join(os.path.abspath(self.path), info["path"])
        return info

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, path, network: Network | None = None, readonly: bool = False,
             create: bool = True) -> "ChainStore":
        """Open (or create) the store at `path`.

        A new store needs `network` with its genesis_validators_root.  An existing store must
        hold the same network (config name, preset, fork schedule, genesis_validators_root),
        else StoreError.  With network=None the stored one is used."""
        path = os.fspath(path)
        if not readonly and not create and not os.path.exists(os.path.join(path, "CURRENT")):
            raise StoreError(f"{path}: no chain store here")
        made_here = not readonly and create and not os.path.exists(path)
        kv = KV.open(path, create=create, readonly=readonly)
        try:
            raw_version = kv.get(schema.meta_key(schema.META_SCHEMA_VERSION))
            if raw_version is None:
                empty = next(iter(kv.iterate(b"", include_value=False)), None) is None
                if readonly and empty:  # a run killed after making the store, before writing
                    raise StoreError(f"{path}: an empty chain store (a run stopped before "
                                     "its first write); rerun the command that made it")
                if readonly:
                    raise StoreError(f"{path}: not a chain store (no schema version)")
                if not empty:
                    raise StoreError(f"{path}: not a chain store (a LevelDB database with "
                                     "other data and no schema version)")
                if network is None:
                    raise StoreError(f"{path}: a new chain store needs a network")
                if network.genesis_validators_root is None:
                    raise StoreError(f"{path}: network {network.name} has no "
                                     "genesis_validators_root; pass a genesis.json")
                # The metadata is written with the first import step; a run that fails
                # before importing anything removes the directory it made (close()).
                store = cls(kv, network)
                store._made_dir = made_here
                store._pending_meta = {
                    schema.meta_key(schema.META_SCHEMA_VERSION): schema.encode_u64(
                        schema.SCHEMA_VERSION),
                    schema.meta_key(schema.META_NETWORK): json.dumps(
                        network.to_spec_json(), sort_keys=True).encode(),
                    schema.meta_key(schema.META_GVR): network.genesis_validators_root,
                }
                return store
            try:
                version = schema.decode_u64(raw_version)
            except struct.error:
                raise StoreError(f"{path}: corrupt store: schema version is "
                                 f"{hex0x(raw_version)}, not 8 bytes") from None
            if version not in schema.READABLE_SCHEMA_VERSIONS:
                raise StoreError(f"{path}: store schema version {version}, this era_tools "
                                 "reads versions "
                                 f"{', '.join(map(str, schema.READABLE_SCHEMA_VERSIONS))}")
            raw_net = kv.get(schema.meta_key(schema.META_NETWORK))
            if raw_net is None:
                raise StoreError(f"{path}: corrupt store: no network record")
            try:
                stored = network_from_spec(json.loads(raw_net))
            except (TypeError, ValueError, AttributeError, ConfigError) as exc:
                raise StoreError(f"{path}: corrupt store: its network record does not load "
                                 f"({type(exc).__name__}: {exc})") from None
            gvr = kv.get(schema.meta_key(schema.META_GVR))
            stored = stored.with_genesis(genesis_validators_root=gvr)
            if network is not None:
                if _network_identity(network) != _network_identity(stored):
                    raise StoreError(
                        f"{path}: the store holds network {stored.config_name} "
                        f"(forks {_fork_text(stored)}), not {network.config_name} "
                        f"(forks {_fork_text(network)})")
                if network.genesis_validators_root is not None and \
                        network.genesis_validators_root != gvr:
                    raise StoreError(
                        f"{path}: the store holds genesis_validators_root {hex0x(gvr)}, "
                        f"expected {hex0x(network.genesis_validators_root)} (another network)")
                store = cls(kv, network.with_genesis(genesis_validators_root=gvr))
            else:
                store = cls(kv, stored)
            store.schema_version = version
            return store
        except BaseException:
            kv.close()
            raise

    def close(self) -> None:
        """Close; a store this open created that never committed anything (a run that failed
        before its first import) is removed again, directory and all."""
        for f, _ in self._handles.values():
            f.close()
        self._handles.clear()
        self.kv.close()
        if self._made_dir and self._pending_meta:
            import shutil

            shutil.rmtree(self.path, ignore_errors=True)
            self._made_dir = False

    def __enter__(self) -> "ChainStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- metadata --------------------------------------------------------------------------
    @property
    def genesis_validators_root(self) -> bytes:
        return self.network.genesis_validators_root

    @property
    def sphr(self) -> int:
        return self.network.slots_per_historical_root

    @property
    def anchor(self) -> Anchor:
        raw = self.kv.get(schema.meta_key(schema.META_ANCHOR))
        return Anchor.decode(raw) if raw else Anchor()

    def covered_ranges(self) -> list[tuple[int, int]]:
        return list(self.anchor.covered)

    def gaps(self) -> list[tuple[int, int]]:
        return schema.gaps(self.covered_ranges())

    def is_covered(self, first: int, last: int) -> bool:
        return any(a <= first and last <= b for a, b in self.covered_ranges())

    # -- reads -----------------------------------------------------------------------------
    def index_entry(self, slot: int) -> bytes | None:
        """None: slot not indexed; b"": an empty slot; else the block root at that slot."""
        v = self.kv.get(schema.index_key(slot))
        if v is not None:
            return v
        t = self.era_table(slot)
        return None if t is None else t.entry(slot)

    def era_table(self, slot: int) -> schema.EraTable | None:
        """The compact era index table holding `slot`, if one does (see schema.EraTable)."""
        first = slot - slot % self.sphr
        if first in self._tables:
            return self._tables[first]
        v = self.kv.get(schema.era_index_key(first))
        t = None if v is None else schema.EraTable.decode(first, v)
        if t is not None and not t.first_slot <= slot <= t.last_slot:
            t = None
        if len(self._tables) >= 16:
            self._tables.pop(next(iter(self._tables)))
        self._tables[first] = t
        return t

    def _tables_in(self, first: int, last: int, reverse: bool = False):
        """Era tables overlapping [first, last], in slot order (or reversed), read lazily."""
        lo = max(0, first - first % self.sphr)
        for k in self.kv.iterate(schema.P_INDEX_ERA, start=schema.era_index_key(lo),
                                 stop=schema.era_index_key(last + 1), reverse=reverse,
                                 include_value=False):
            t = self.era_table(schema.slot_of_key(k))
            if t is not None and t.last_slot >= first:
                yield t

    def _index_items(self, first: int, last: int, reverse: bool = False):
        """(slot, root or b"") over [first, last]: per-slot `i` entries merged with era tables
        (an `i` entry wins where both exist)."""
        per_slot = ((schema.slot_of_key(k), v) for k, v in self.kv.iterate(
            schema.P_INDEX, start=schema.index_key(first), stop=schema.index_key(last + 1),
            reverse=reverse))
        tables = self._tables_in(first, last, reverse)
        from_tables = (item for t in tables for item in t.items(first, last, reverse))
        a, b = next(per_slot, None), next(from_tables, None)
        before = (lambda x, y: x > y) if reverse else (lambda x, y: x < y)
        while a is not None or b is not None:
            if b is None or (a is not None and (a[0] == b[0] or before(a[0], b[0]))):
                if b is not None and a[0] == b[0]:
                    b = next(from_tables, None)
                yield a
                a = next(per_slot, None)
            else:
                yield b
                b = next(from_tables, None)

    def iter_index(self, first: int, last: int, reverse: bool = False):
        """(key, root or b"") for indexed slots in [first, last], in slot order (descending
        with reverse=True); schema.slot_of_key(key) gives the slot.  Compact era tables are
        read through the same interface."""
        for slot, v in self._index_items(first, last, reverse):
            yield schema.index_key(slot), v

    def block_root_at(self, slot: int) -> bytes | None:
        """The root of the latest block at or before `slot` (the state.block_roots meaning),
        or None when that is not known from the index."""
        expect = slot
        for s, v in self._index_items(0, slot, reverse=True):
            if s != expect:
                return None  # a hole in the index
            if v:
                return bytes(v)
            expect -= 1
        return None

    def _table_ref(self, root: bytes):
        """(table, slot) of a block indexed through an era table, else None."""
        ref = self.kv.get(schema.block_ref_key(root))
        if ref is None or not schema.is_slot_ref(ref):
            return None
        slot = schema.decode_u64(ref)
        t = self.era_table(slot)
        if t is None or not t.position(slot) or t.entry(slot) != bytes(root):
            raise StoreError(f"{self.path}: block {hex0x(root)} refers to slot {slot} of an "
                             "era index table that does not hold it")
        return t, slot

    def get_summary(self, root: bytes) -> tuple[int, bytes] | None:
        v = self.kv.get(schema.summary_key(root))
        if v is not None:
            return schema.decode_summary(v)
        tr = self._table_ref(root)
        return None if tr is None else (tr[1], tr[0].parent(tr[1]))

    def has_block(self, root: bytes) -> bool:
        return self.get_summary(root) is not None

    def get_block_framed(self, root: bytes) -> bytes | None:
        v = self.kv.get(schema.block_key(root))
        if v is not None:
            return v
        ref = self.kv.get(schema.block_ref_key(root))
        if ref is None:
            return None
        if schema.is_slot_ref(ref):
            t, slot = self._table_ref(root)
            fid, off = t.file_id, t.position(slot)
        else:
            fid, off = schema.decode_ref(ref)
        return self._read_ref(fid, off, e2store.COMPRESSED_SIGNED_BEACON_BLOCK,
                              f"block {hex0x(root)}")

    def era_file_blocks(self, first: int, last: int):
        """When every slot of [first, last] (one era) is indexed by one era table and nothing
        overrides it: (era file path, file size, slots, record offsets) of its blocks, for
        copying them straight from the referenced era file.  Else None."""
        t = self.era_table(first)
        if t is None or t.first_slot != first or t.last_slot != last:
            return None
        if any(True for _ in self.kv.iterate(schema.P_INDEX, start=schema.index_key(first),
                                             stop=schema.index_key(last + 1),
                                             include_value=False)):
            return None
        info = self._files.get(t.file_id)
        if info is None:
            raise StoreError(f"{self.path}: era index at slot {first} references unknown era "
                             f"file id {t.file_id}")
        return info["path"], info["size"], t.present + first, t.positions[t.present].astype(
            np.int64)

    def get_block_ssz(self, root: bytes) -> bytes | None:
        framed = self.get_block_framed(root)
        return None if framed is None else framing.decompress(
            framed, where=f"{self.path}: block {hex0x(root)}")

    def has_state(self, slot: int) -> bool:
        return (self.kv.get(schema.state_key(slot)) is not None
                or self.kv.get(schema.state_ref_key(slot)) is not None)

    def get_state_framed(self, slot: int) -> bytes | None:
        v = self.kv.get(schema.state_key(slot))
        if v is not None:
            return v
        ref = self.kv.get(schema.state_ref_key(slot))
        if ref is None:
            return None
        fid, off = schema.decode_ref(ref)
        return self._read_ref(fid, off, e2store.COMPRESSED_BEACON_STATE, f"state slot {slot}")

    def state_file_record(self, slot: int):
        """When the state at `slot` is stored as a reference into an era file (and not inline):
        (era file path, file size, record offset).  Else None."""
        if self.kv.get(schema.state_key(slot)) is not None:
            return None
        ref = self.kv.get(schema.state_ref_key(slot))
        if ref is None:
            return None
        fid, off = schema.decode_ref(ref)
        info = self._files.get(fid)
        if info is None:
            raise StoreError(f"{self.path}: state slot {slot} references unknown era file id "
                             f"{fid}")
        return info["path"], info["size"], off

    def get_state(self, slot: int) -> bytes | None:
        """The uncompressed SSZ of the era-boundary state at `slot`, if stored."""
        framed = self.get_state_framed(slot)
        return None if framed is None else framing.decompress(
            framed, where=f"{self.path}: state slot {slot}")

    def state_slots(self) -> list[int]:
        out = [schema.slot_of_key(k) for k in self.kv.iterate(schema.P_STATE,
                                                               include_value=False)]
        out += [schema.slot_of_key(k) for k in self.kv.iterate(schema.P_STATE_REF,
                                                                include_value=False)]
        return sorted(set(out))

    def referenced_files(self) -> dict[int, dict]:
        return dict(self._files)

    def referenced_file_counts(self) -> dict[str, int]:
        """How many referenced files are era files, the store's block files, state files."""
        out = {"era": 0, "blocks": 0, "states": 0}
        home = os.path.abspath(self.path)
        for info in self._files.values():
            sub = os.path.relpath(os.path.dirname(info["path"]), home)
            kind = "blocks" if sub == BLOCKS_DIR else "states" if sub == STATES_DIR else "era"
            out[kind] += 1
        return out

    def _read_ref(self, fid: int, offset: int, rtype: bytes, what: str) -> bytes:
        info = self._files.get(fid)
        if info is None:
            raise StoreError(f"{self.path}: {what} references unknown era file id {fid}")
        f = self._acquire(fid, info, what)
        try:
            try:
                rec = e2store.read_header(f, offset, info["size"], info["path"])
            except Exception as exc:
                raise StoreError(f"{info['path']}: offset {offset}: bad reference for {what}: "
                                 f"{exc}") from exc
            if rec.type != rtype:
                raise StoreError(f"{info['path']}: offset {offset}: {what} reference points "
                                 f"at a {e2store.type_name(rec.type)} record")
            return e2store.read_data(f, rec)
        finally:
            self._release(fid)

    def _acquire(self, fid: int, info: dict, what: str):
        """An open handle of referenced file `fid`, counted as in use until `_release`.  At
        most MAX_OPEN_FILES stay open (mainnet has ~1,400 era files); only idle handles are
        closed, so a reader in another thread never loses its file mid-read."""
        with self._lock:
            entry = self._handles.get(fid)
            if entry is None:
                try:
                    f = open(info["path"], "rb")
                except OSError as exc:
                    raise StoreError(f"{info['path']}: referenced era file for {what} cannot "
                                     f"be opened: {exc.strerror}") from exc
                size = e2store.file_size_of(f)
                if size != info["size"]:
                    f.close()
                    raise StoreError(f"{info['path']}: referenced era file changed size "
                                     f"({size} bytes, {info['size']} when front-filled)")
                entry = self._handles[fid] = [f, 1]
                excess = len(self._handles) - MAX_OPEN_FILES
                for old in [k for k, (_, users) in self._handles.items() if users == 0][
                        :max(0, excess)]:
                    self._handles.pop(old)[0].close()
            else:
                self._handles.move_to_end(fid)
                entry[1] += 1
            return entry[0]

    def _release(self, fid: int) -> None:
        with self._lock:
            self._handles[fid][1] -= 1

    # -- writes ----------------------------------------------------------------------------
    def batch(self) -> Batch:
        return Batch(self)

    def put_blocks_batch(self, blocks=(), empty_slots=(), states=(), cover=None) -> None:
        """Convenience: blocks = [(slot, root, parent_root, framed)], states = [(slot, framed)],
        cover = (first, last) or None; one atomic commit."""
        b = self.batch()
        for slot, root, parent, framed in blocks:
            b.put_block(slot, root, parent, framed)
        for s in empty_slots:
            b.put_empty(s)
        for slot, framed in states:
            b.put_state(slot, framed)
        if cover:
            b.cover(*cover)
        self.commit(b)

    def set_anchor(self, anchor: Anchor) -> None:
        b = self.batch()
        b.set_anchor(anchor)
        self.commit(b)

    # -- the `era sync` record -------------------------------------------------------------
    def sync_record(self) -> dict | None:
        """The JSON record `era sync` keeps (its stage, the last status), or None."""
        raw = self.kv.get(schema.meta_key(schema.META_SYNC))
        if raw is None:
            return None
        try:
            rec = json.loads(raw)
        except ValueError as exc:
            raise StoreError(f"{self.path}: the sync record is corrupt: {exc}") from None
        if not isinstance(rec, dict) or rec.get("stage") not in schema.SYNC_STAGES:
            raise StoreError(f"{self.path}: the sync record names no known stage")
        return rec

    def put_sync_record(self, record: dict) -> None:
        """Replace the sync record (one atomic write; the anchor is unchanged)."""
        if record.get("stage") not in schema.SYNC_STAGES:
            raise ValueError(f"unknown sync stage {record.get('stage')!r}")
        b = self.batch()
        b.puts[schema.meta_key(schema.META_SYNC)] = json.dumps(record, sort_keys=True).encode()
        b.set_anchor(self.anchor)
        self.commit(b)

    def commit(self, b: Batch) -> None:
        """Write the batch's data, index and the updated anchor in one write batch."""
        anchor = b.anchor if b.anchor is not None else self._next_anchor(b)
        puts = dict(self._pending_meta)
        puts.update(b.puts)
        puts[schema.meta_key(schema.META_ANCHOR)] = anchor.encode()
        if b.era_tables and self.schema_version < 2:
            puts[schema.meta_key(schema.META_SCHEMA_VERSION)] = schema.encode_u64(2)
        self.kv.write(b.raw + list(puts.items()) if b.raw else puts)
        if b.era_tables and self.schema_version < 2:
            self.schema_version = 2
        for t in b.era_tables:
            self._tables.pop(t.first_slot, None)
        self._pending_meta = {}
        self._file_ids.update(b.new_files)
        for path, fid in b.new_files.items():
            self._files[fid] = self._file_info(puts[schema.file_key(fid)])
        self._next_file_id += len(b.new_files)

    def _next_anchor(self, b: Batch) -> Anchor:
        old = self.anchor
        covered = list(old.covered)
        for a, z in b.ranges:
            covered = schema.add_range(covered, a, z)
        if not covered:
            return Anchor(covered=[])
        top = covered[-1]

        def entry(slot):
            e = b.entry(slot)
            return e if e is not None else self.index_entry(slot)

        def summary(root):
            return b.summary(root) or self.get_summary(root)

        # newest: the top of the newest range, with the latest block root at or before it
        newest_slot = top[1]
        newest_root = None
        s = newest_slot
        while s >= top[0]:
            e = entry(s)
            if e:
                newest_root = e
                break
            s -= 1
        # oldest block of the newest range
        oldest = None
        pending = b.first_block_slot(top[0], top[1])
        for s, v in self._index_items(top[0], top[1]):
            if v:
                oldest = s
                break
        if pending is not None and (oldest is None or pending < oldest):
            oldest = pending
        anchor = Anchor(newest_slot=newest_slot, newest_root=newest_root,
                        covered=covered)
        if oldest is not None:
            root = entry(oldest)
            anchor.oldest_block_slot = oldest
            anchor.oldest_block_root = root
            sm = summary(root)
            anchor.oldest_block_parent = sm[1] if sm else None
        return anchor

    def dump(self) -> list:
        """Every (key, value) of the store in key order (tests compare stores with this)."""
        return [(bytes(k), bytes(v)) for k, v in self.kv.items()]

    # -- status ----------------------------------------------------------------------------
    def table_stats(self) -> dict:
        out = {}
        for prefix, name in schema.TABLES.items():
            n = sum(1 for _ in self.kv.iterate(prefix, include_value=False))
            size = self.kv.approximate_size(prefix, schema.prefix_end(prefix))
            out[name] = {"entries": n, "approx_bytes": size}
        return out

    def remove_unreferenced_files(self) -> list[str]:
        """Delete the store's own state and block files that no committed entry references
        (left by a run killed between writing a file and committing its batch) and stray
        `.tmp` files.  Only for the store's single writer.  Returns the removed paths."""
        if self.readonly:
            raise StoreError(f"{self.path}: the store is open read-only")
        known = {os.path.abspath(info["path"]) for info in self._files.values()}
        removed = []
        for sub in (STATES_DIR, BLOCKS_DIR):
            d = os.path.join(self.path, sub)
            try:
                names = os.listdir(d)
            except OSError:
                continue
            for n in names:
                p = os.path.abspath(os.path.join(d, n))
                if p not in known and (n.endswith(".e2s") or n.endswith(".e2s.tmp")):
                    try:
                        os.remove(p)
                        removed.append(p)
                    except OSError:
                        pass
        return removed

    def disk_bytes(self) -> int:
        """Bytes on disk: the LevelDB files and the state and block files inside the store."""
        total = 0
        for d in (self.path, os.path.join(self.path, STATES_DIR),
                  os.path.join(self.path, BLOCKS_DIR)):
            try:
                names = os.listdir(d)
            except OSError:
                continue
            for n in names:
                p = os.path.join(d, n)
                try:
                    if os.path.isfile(p):
                        total += os.path.getsize(p)
                except OSError:
                    pass
        return total


def _table_slot_of_root(t: schema.EraTable, root: bytes):
    """The slot of the block `root` in era table `t`, or None."""
    want = np.frombuffer(bytes(root), dtype=np.uint8)
    hit = np.flatnonzero((t.roots[t.present] == want).all(axis=1))
    return None if not len(hit) else t.first_slot + int(t.present[hit[0]])


def _fork_text(net: Network) -> str:
    return ", ".join(f"{f.name}@{f.epoch}:0x{f.version.hex()}" for f in net.forks)
