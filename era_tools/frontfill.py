"""Front-fill: load history from era files into the chain store, oldest first.

For each era file, before it touches the store:
  * roots: every block's hash_tree_root(message) equals state.block_roots[slot % SPHR]; an
    empty slot repeats the previous root; the file name's short root equals the one computed
    from the state; genesis_validators_root is the store's;
  * links: the era's first block's parent is the previous era's last root, and the state's
    state_roots[0] equals hash_tree_root(previous era state) when that state is at hand;
  * the store: every slot the store already indexes agrees with the era, and where the store
    holds newer blocks (a checkpoint sync), the era root at the oldest stored block's parent
    slot equals that block's parent_root.  A mismatch there is fatal and nothing is written.

Each era is one atomic write batch (blocks or references, summaries, index, state, anchor), so
a killed run resumes at the first era not yet covered.

Blocks are either referenced by era file + record offset (mode "reference", the default: see
BENCHMARKS.md) or copied, with the state, into files of the store's own (mode "copy":
`blocks/era-NNNNN.e2s` and `states/`, so the era files may be deleted afterwards) and indexed
the same way.  An era the store does not index yet is written compactly: one era-table value
(`I`, the era's record offsets and block_roots) and one root -> slot entry per block (see
docs/store.md); an era that overlaps slots already indexed is written per slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import framing
from .era import EraReader, era_files_in, parse_era_file_name
from .errors import FormatError, StoreError, VerificationError, hex0x
from .ssz import layout
from .ssz.layout import StateHead
from .store import ChainStore, schema

ZERO_ROOT = b"\x00" * 32
MODES = ("reference", "copy")
CHECKS = ("roots", "index")


@dataclass
class FrontfillResult:
    eras_written: list = field(default_factory=list)
    eras_skipped: list = field(default_factory=list)
    slots_indexed: int = 0
    blocks: int = 0
    bytes_read: int = 0
    gaps: list = field(default_factory=list)  # (first era, last era) between the files given
                                              # that the store does not hold either


@dataclass
class _Era:
    """One era file.  Its reader and state head (512 KB of roots on mainnet) are held only
    while needed, so front-filling all of mainnet (~1,600 files) keeps at most two open."""

    path: str
    era: int
    sphr: int
    last_root: bytes | None = None     # block_roots at the era's last slot (era > 0)
    reader: EraReader | None = None
    head: StateHead | None = None

    def open(self) -> tuple[EraReader, StateHead]:
        if self.reader is None:
            r = EraReader(self.path)
            try:
                if self.head is None:
                    self.head = r.state_head(self.sphr)
            except BaseException:
                r.close()
                raise
            self.reader = r
        return self.reader, self.head

    def close(self, keep_head: bool = False) -> None:
        if self.reader is not None:
            self.reader.close()
        self.reader = None
        if not keep_head:
            self.head = None


# State heads kept from the names pass for the import pass (512 KB each on mainnet): up to
# this many bytes, so a run over all of mainnet still holds only a bounded amount.
_HEAD_CACHE_BYTES = 64 << 20


def block_roots_check(reader: EraReader, head: StateHead, prev_root: bytes | None) -> dict:
    """After era_tools.verify's roots level passed on the file (every block hashes to its
    state.block_roots entry): the block slots, empty slots and parent links from the block
    prefixes, also across the era boundary (`prev_root`).  Returns {slot: (root,
    parent_root)} for its blocks."""
    sphr = head.sphr
    out = {}
    where = reader.path
    last = prev_root
    for slot in reader.slots():
        want = head.block_root_at(slot)
        rec = reader.block_record(slot)
        if rec is None:
            if last is not None and want != last:
                raise VerificationError(
                    f"{where}: slot {slot}: empty slot but block_roots[{slot % sphr}] is "
                    f"{hex0x(want)}, not the previous root {hex0x(last)}")
            last = want
            continue
        data = framing.decompress_prefix(reader.block_framed(slot), layout.BLOCK_HEAD, where=where,
                                         base=rec.data_offset)
        if len(data) < layout.BLOCK_HEAD:
            raise FormatError(f"{where}: offset {rec.offset}: block too short")
        root = want  # checked against the block by the roots level
        bslot = layout.block_slot(data)
        parent = layout.block_parent(data)
        if bslot != slot:
            raise VerificationError(f"{where}: offset {rec.offset}: block slot {bslot} at "
                                    f"index slot {slot}")
        if last is not None and parent != last:
            raise VerificationError(
                f"{where}: slot {slot}: block parent_root {hex0x(parent)} does not link to "
                f"the previous block root {hex0x(last)}")
        if slot == 0 and parent != ZERO_ROOT:
            raise VerificationError(f"{where}: slot 0: genesis block parent_root "
                                    f"{hex0x(parent)} is not zero")
        out[slot] = (root, parent)
        last = root
    return out


def _state_root(state_ssz: bytes, network, slot: int) -> bytes:
    from .verify import state_root

    return state_root(state_ssz, network.fork_name_at_slot(slot), network.preset_base)


def roots_level(reader: EraReader, head: StateHead, network, prev_root: bytes | None) -> dict:
    """Check one era file at the `roots` level and return {slot: (root, parent_root)}.

    Uses era_tools.verify's roots level (hash every block against state.block_roots, empty
    slots, file name), then a cheap pass over the block prefixes for the parent links (also
    across the era boundary, which a single-file check cannot see)."""
    from . import verify

    report = verify.verify_file(reader.path, network, "roots")
    if not report.ok:
        f = report.first_failure()
        raise VerificationError(f.message if reader.path in f.message
                                else f"{reader.path}: {f.message}")
    return block_roots_check(reader, head, prev_root)


def frontfill(store: ChainStore, paths, mode: str = "reference", check: str = "roots",
              link_states: bool = True,
              progress: Callable[[int], None] | None = None,
              era_tables: bool = True) -> FrontfillResult:
    """Fill `store` from the era files in `paths` (files or directories).

    era_tables=False writes reference mode's index per slot (`i`, `h`, 12-byte `r`) even for
    fresh eras: the layout before era tables, kept for comparisons (bench_frontfill.py)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    net = store.network
    sphr = net.slots_per_historical_root
    files = era_files_in(paths)
    remote = [p for p in files if p.startswith("s3://")]
    if remote and mode != "copy":  # a store must not reference objects it cannot pread
        raise StoreError(f"{remote[0]}: mode {mode} indexes era files in place on this "
                         "machine; from a bucket use --mode copy")
    if mode == "copy":
        store.remove_unreferenced_files()  # files of a run killed before their commit
    eras: list[_Era] = []
    res = FrontfillResult()
    try:
        # -- pass 1: every file's state head: names and network (then closed again) -------
        seen = {}
        kept = 0
        for p in files:
            e = _Era(p, -1, sphr)
            eras.append(e)
            r, head = e.open()
            parsed = parse_era_file_name(p)
            era = e.era = r.era
            if r.slots_per_historical_root not in (None, sphr):
                raise VerificationError(f"{p}: SLOTS_PER_HISTORICAL_ROOT "
                                        f"{r.slots_per_historical_root}, the store's network "
                                        f"{net.config_name} has {sphr}")
            if head.genesis_validators_root != store.genesis_validators_root:
                raise VerificationError(
                    f"{p}: genesis_validators_root {hex0x(head.genesis_validators_root)} is not "
                    f"the store's {hex0x(store.genesis_validators_root)} (another network)")
            if parsed is None:
                raise FormatError(f"{p}: not an era file name (<config>-<era>-<root>.era)")
            cfg, name_era, short = parsed
            if cfg != net.config_name:
                raise VerificationError(f"{p}: file names network {cfg!r}, the store holds "
                                        f"{net.config_name!r}")
            if name_era != era:
                raise VerificationError(f"{p}: file name says era {name_era}, its state is "
                                        f"at slot {r.state_slot} (era {era})")
            if short != head.short_root(era).hex():
                raise VerificationError(
                    f"{p}: file name root {short} does not match the root computed from its "
                    f"state, {head.short_root(era).hex()}")
            if era in seen:
                raise VerificationError(f"{p}: era {era} is also given as {seen[era]}")
            seen[era] = p
            if era > 0:
                e.last_root = head.block_root_at(r.state_slot - 1)
            kept += len(head.block_roots) + len(head.state_roots)
            e.close(keep_head=kept <= _HEAD_CACHE_BYTES)
        eras.sort(key=lambda e: e.era)

        # -- pass 2: where the store already has newer history, the eras must link to it ---
        _check_store_links(store, eras, sphr)

        # -- pass 3: one era per batch ----------------------------------------------------
        prev: _Era | None = None
        for e in eras:
            start, end = (e.era - 1) * sphr, e.era * sphr - 1
            state_slot = e.era * sphr
            if e.era == 0:
                done = store.has_state(0)
            else:
                done = store.is_covered(start, end) and store.has_state(state_slot)
            if not done:
                e.open()
                _import_era(store, e, prev, mode, check, link_states, res, era_tables)
                res.eras_written.append(e.era)
            else:
                res.eras_skipped.append(e.era)
            if progress and e.era > 0:
                progress(sphr)
            if prev is not None:
                prev.close()  # keep at most this era and the one before it open
            prev = e
        for a, b in zip(eras, eras[1:]):  # eras between the files, missing from the store too
            if b.era - a.era > 1 and not store.is_covered(a.era * sphr, (b.era - 1) * sphr - 1):
                res.gaps.append((a.era + 1, b.era - 1))
        return res
    finally:
        for e in eras:
            e.close()


def _check_store_links(store: ChainStore, eras: list, sphr: int) -> None:
    """The era root at the parent slot of the oldest block of each stored range must equal
    that block's parent_root, when the era files cover that slot."""
    by_era = {e.era: e for e in eras}
    for a, _b in store.covered_ranges():
        if a == 0:
            continue
        parent_slot = a - 1
        e = by_era.get(parent_slot // sphr + 1)
        if e is None:
            continue
        # oldest block of this stored range
        first_block = None
        for k, v in store.iter_index(a, _b):
            if v:
                first_block = bytes(v)
                break
        if first_block is None:
            continue
        _slot, parent = store.get_summary(first_block)
        era_root = e.open()[1].block_root_at(parent_slot)
        # blocks between a and the first block are empty: the era root just below `a`
        # must be that block's parent.
        if era_root != parent:
            raise VerificationError(
                f"{e.path}: slot {parent_slot}: era root {hex0x(era_root)} does not match the "
                f"parent_root {hex0x(parent)} of the store's oldest block at slot {_slot} "
                "(wrong network or corrupt archive); nothing written")


def era_entries(r: EraReader, head: StateHead, prev_root: bytes | None):
    """Block slots, roots and parents of one era from its index and state.block_roots, reading
    only the era's first block (its parent links the era to the one before).

    Returns (slots, roots, parents) as numpy arrays ((n,), (n, 32), (n, 32)) of the slots that
    hold a block.  Checks: empty slots repeat the previous root; a block slot has a new root;
    the first block's slot and parent_root agree with the index and the previous era."""
    where = r.path
    start = r.block_index.start_slot
    positions = r.block_index.positions
    roots = head.block_roots_array()
    n = len(positions)
    present = positions != 0
    same_as_prev = np.zeros(n, dtype=bool)
    same_as_prev[1:] = (roots[1:] == roots[:-1]).all(axis=1)
    bad = np.flatnonzero(present & same_as_prev)
    if len(bad):
        slot = start + int(bad[0])
        raise VerificationError(f"{where}: slot {slot}: a block, but block_roots repeats the "
                                f"previous root {hex0x(roots[bad[0]].tobytes())}")
    bad = np.flatnonzero(~present[1:] & ~same_as_prev[1:])
    if len(bad):
        i = int(bad[0]) + 1
        raise VerificationError(
            f"{where}: slot {start + i}: empty slot but block_roots[{(start + i) % n}] is "
            f"{hex0x(roots[i].tobytes())}, not the previous root {hex0x(roots[i - 1].tobytes())}")
    idx = np.flatnonzero(present)
    if not len(idx):
        return idx + start, roots[idx], roots[idx]
    first = int(idx[0])
    if prev_root is not None and first > 0 and roots[0].tobytes() != prev_root:
        raise VerificationError(
            f"{where}: slot {start}: empty slot but block_roots[{start % n}] is "
            f"{hex0x(roots[0].tobytes())}, not the previous era's last root {hex0x(prev_root)}")
    rec = r.block_record(start + first)
    data = framing.decompress_prefix(r.block_framed(start + first), layout.BLOCK_HEAD, where=where,
                                     base=rec.data_offset)
    if len(data) < layout.BLOCK_HEAD:
        raise FormatError(f"{where}: offset {rec.offset}: block too short")
    bslot = layout.block_slot(data)
    if bslot != start + first:
        raise VerificationError(f"{where}: offset {rec.offset}: block slot {bslot} at index "
                                f"slot {start + first}")
    first_parent = layout.block_parent(data)
    if prev_root is not None and first_parent != prev_root:
        raise VerificationError(
            f"{where}: slot {start + first}: block parent_root {hex0x(first_parent)} does not "
            f"link to the previous block root {hex0x(prev_root)}")
    if start + first == 0 and first_parent != ZERO_ROOT:
        raise VerificationError(f"{where}: slot 0: genesis block parent_root "
                                f"{hex0x(first_parent)} is not zero")
    parents = np.empty((len(idx), 32), dtype=np.uint8)
    parents[1:] = roots[idx[1:] - 1]
    parents[0] = np.frombuffer(first_parent, dtype=np.uint8)
    return idx + start, roots[idx], parents


def _import_era(store: ChainStore, e: _Era, prev: _Era | None, mode: str, check: str,
                link_states: bool, res: FrontfillResult, era_tables: bool = True) -> None:
    net = store.network
    sphr = net.slots_per_historical_root
    r, head = e.reader, e.head
    b = store.batch()
    state_slot = e.era * sphr
    if e.era > 0:
        start, end = (e.era - 1) * sphr, state_slot - 1
        # the root just before this era: previous era in this run, else the store
        if prev is not None and prev.era == e.era - 1 and prev.era > 0:
            prev_root = prev.last_root  # block_roots at slot start - 1
        elif start == 0:
            prev_root = None
        else:
            prev_root = store.block_root_at(start - 1)
        if check == "roots":
            roots_level(r, head, net, prev_root)  # raises on the first failure
        slots, roots, parents = era_entries(r, head, prev_root)
        # agree with whatever the store already indexes in this range
        existing = {schema.slot_of_key(k): bytes(v) for k, v in store.iter_index(start, end)}
        if existing:
            mine = {int(s): roots[j].tobytes() for j, s in enumerate(slots)}
            for slot, have in existing.items():
                got = mine.get(slot, b"")
                if have != got:
                    raise VerificationError(
                        f"{r.path}: slot {slot}: the store indexes "
                        f"{hex0x(have) if have else 'an empty slot'}, the era file has "
                        f"{hex0x(got) if got else 'an empty slot'}")
        if mode == "reference":
            fid, all_positions = b.file_id(r.path), r.block_index.positions
        else:
            # copy: the era's blocks into one file of the store's own (blocks/), then indexed
            # exactly like reference mode indexes the era file
            new = [s for s in slots.tolist() if s not in existing]  # the rest is stored
            framed = [r.block_framed(s) for s in new]
            res.bytes_read += sum(len(f) for f in framed)
            fid, offsets = b.write_blocks_file(framed, f"era-{e.era:05d}")
            all_positions = np.zeros(sphr, dtype=np.uint64)
            all_positions[np.asarray(new, dtype=np.int64) - start] = offsets
        positions = all_positions[slots - start]
        if era_tables and not existing:
            # a fresh era: one era-table value + one root -> slot entry per block
            b.put_era_refs(start, fid, all_positions, head.block_roots_array(),
                           parents[0].tobytes() if len(slots) else ZERO_ROOT)
        else:
            b.put_block_refs(slots, roots, parents, fid, positions,
                             first=start, last=end, skip=existing)
        res.blocks += len(slots)
        b.cover(start, end)
        res.slots_indexed += sphr
        # the state of the previous era must be this state's state_roots[0]
        if link_states:
            prev_state = None
            if prev is not None and prev.era == e.era - 1:
                prev_state = prev.open()[0].state_ssz()
            elif store.has_state(start):
                prev_state = store.get_state(start)
            if prev_state is not None:
                got_root = _state_root(prev_state, net, start)
                if head.state_roots[:32] != got_root:
                    raise VerificationError(
                        f"{r.path}: state_roots[0] {hex0x(head.state_roots[:32])} is not the "
                        f"root of the era {e.era - 1} state at slot {start}, "
                        f"{hex0x(got_root)}: the eras do not link")
    if mode == "reference":
        b.put_state_ref(state_slot, b.file_id(r.path), r.state_record().offset)
    else:
        framed = r.state_framed()
        res.bytes_read += len(framed)
        b.put_state_file(state_slot, framed)  # states/, beside the tables (not in LevelDB)
    store.commit(b)
