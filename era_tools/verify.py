"""Verification of era files, by level (era-format.md §5), each level including the ones before:

- ``structure``: record headers walk cleanly, the indices point at records of the right type,
  every payload decompresses and decodes as the fork of its slot, block slots match the index,
  the state slot is N*SPHR.  Unknown record types are reported, not errors.
- ``roots``: each block's hash_tree_root(message) equals state.block_roots[slot % SPHR], an empty
  slot repeats the previous root, parent roots link up, the file name (config name, era, short
  root) matches the contents, and the state belongs to the network (genesis_validators_root,
  fork version).
- ``signatures``: every proposer signature verifies (pubkey from the era state's validators,
  DOMAIN_BEACON_PROPOSER at the fork of the block's epoch), batch-verified with random linear
  combinations; the slot-0 block carries the zero signature.
- ``chain``: hash_tree_root(state_N) == state_{N+1}.state_roots[0] across consecutive files, the
  newest state anchored by a trusted state root or a trusted state's historical roots, no gaps,
  no two files for one era.

`verify_file` checks one file (with a trusted state, also against its historical roots: a
per-file task, `check_trusted`; `anchor_era` is that check alone); `verify_archive` checks many
(in parallel processes, or on a Dask cluster through era_tools.cluster) and adds the checks
that need several files, from the per-file reports.  era1 files (execution-layer history,
era1.py) get their own checks: structure, then from `roots` up the header chain, total
difficulties, accumulator root and file name, and at `chain` the links between consecutive
epochs.  Library code: progress goes through callbacks, failures are returned as data (a
`Failure` names level, check, slot, expected and actual).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import queue
import threading
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Callable, Iterable, NamedTuple, Sequence

import numpy as np

from . import bls, e2store, era1, ssz
from .config import Network
from .era import EraReader, era_files_in, parse_era_file_name
from .spans import format_spans, spans
from .errors import ConfigError, EraToolsError, FormatError, hex0x
from .procs import pool_context
from .signing import DOMAIN_BEACON_PROPOSER, compute_domain, compute_signing_root
from .ssz import layout
from .ssz.fast import container_field_ranges, hash_tree_root_bytes
from .ssz.view import StateView


class Level(IntEnum):
    """Verification levels, each including the ones before it."""

    STRUCTURE = 0
    ROOTS = 1
    SIGNATURES = 2
    CHAIN = 3


LEVELS = tuple(lv.name.lower() for lv in Level)  # ("structure", "roots", "signatures", "chain")
# States up to this size are decoded into py-ssz objects at the structure level; bigger ones
# (mainnet: hundreds of MB) get their offset table and list shapes checked on the bytes.
FULL_STATE_DECODE_LIMIT = 1024 * 1024
BLS_CHUNK = 256
MAX_FAILURES_PER_FILE = 100



def level_index(level: str) -> Level:
    if level not in LEVELS:
        raise ConfigError(f"unknown verification level {level!r}; one of {', '.join(LEVELS)}")
    return Level[level.upper()]


# --------------------------------------------------------------------------------------------
# Reports


@dataclass
class Failure:
    level: str
    check: str
    message: str
    slot: int | None = None
    expected: str | None = None
    actual: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class FileReport:
    path: str
    level: str
    era: int | None = None          # None for an era1 file (its epoch is in `link`)
    state_slot: int | None = None
    blocks: int = 0
    checks: dict = field(default_factory=dict)  # name -> {"level", "status", "detail"?}
    failures: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    link: dict = field(default_factory=dict)  # facts the cross-file checks need
    anchored: bool | None = None  # chain level: tied to --trusted-root/--trusted-state

    @property
    def ok(self) -> bool:
        return not self.failures

    def first_failure(self) -> Failure | None:
        if not self.failures:
            return None
        # Lowest level first; within a level, failures that name a slot before file-wide ones.
        return min(self.failures, key=lambda f: (level_index(f.level), f.slot is None,
                                                 f.slot or 0))

    def check(self, name: str, level: str, status: str = "ok", detail: str | None = None):
        cur = self.checks.get(name)
        if cur is not None and cur["status"] == "failed":
            return
        entry = {"level": level, "status": status}
        if detail:
            entry["detail"] = detail
        self.checks[name] = entry

    def fail(self, level: str, check: str, message: str, slot: int | None = None,
             expected=None, actual=None) -> None:
        self.check(check, level, "failed")
        if len(self.failures) < MAX_FAILURES_PER_FILE:
            self.failures.append(Failure(level, check, message, slot, _fmt(expected),
                                         _fmt(actual)))

    def line(self) -> str:
        f = self.first_failure()
        if f is None:
            return f"{self.path}: OK"
        return f"{self.path}: FAIL {f.level}: {f.message}"

    def to_dict(self) -> dict:
        return {"path": self.path, "kind": "era1" if is_era1(self.path) else "era",
                "era": self.era, "state_slot": self.state_slot,
                "ok": self.ok, "blocks": self.blocks, "checks": self.checks,
                "failures": [f.to_dict() for f in self.failures], "notes": self.notes,
                **({} if self.anchored is None else {"anchored": self.anchored})}


def _fmt(v):
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray, memoryview)):
        return hex0x(bytes(v))
    return str(v)


@dataclass
class ArchiveReport:
    level: str
    network: str
    files: list = field(default_factory=list)
    failures: list = field(default_factory=list)  # checks over the whole set (gaps, ...)
    notes: list = field(default_factory=list)
    anchor: dict | None = None   # chain level: which trusted value anchored what
    unanchored: list = field(default_factory=list)  # chain level: eras no anchor reaches

    @property
    def ok(self) -> bool:
        return not self.failures and all(f.ok for f in self.files)

    @property
    def blocks(self) -> int:
        return sum(f.blocks for f in self.files)

    def to_dict(self) -> dict:
        return {"level": self.level, "network": self.network, "ok": self.ok,
                "files": [f.to_dict() for f in self.files],
                "archive_failures": [f.to_dict() for f in self.failures],
                "notes": self.notes,
                **({} if self.anchor is None else {"anchor": self.anchor}),
                "summary": {"files": len(self.files),
                            "ok": sum(1 for f in self.files if f.ok),
                            "failed": sum(1 for f in self.files if not f.ok),
                            "blocks": self.blocks,
                            **({"unanchored": [list(x) for x in spans(self.unanchored)]}
                               if self.level == "chain" else {})}}


# --------------------------------------------------------------------------------------------
# SSZ helpers on bytes


def field_range(cls, data, name: str) -> tuple[int, int]:
    """Byte range [start, end) of top-level field `name` in the serialized container `data`
    of py-ssz class `cls`, from the container's checked offset table (ssz.fast)."""
    ranges = container_field_ranges(cls, data)
    try:
        return ranges[name]
    except KeyError:
        raise KeyError(f"{cls.__name__} has no field {name!r}") from None


def _check_state_shape(view: StateView) -> None:
    """Cheap structural check of a big serialized state: the offset table is sane (checked
    when the view opened) and every list or vector of fixed-size elements has a whole number
    of elements within its limit (StateView.field_array checks that)."""
    for name in view.field_names:
        try:
            view.field_array(name)
        except TypeError:
            pass  # a container or variable-size elements: the offset table covers it


def state_root(data: bytes, fork: str, preset_base: str, decoded=None) -> bytes:
    """hash_tree_root of a serialized BeaconState: the one call the chain level makes."""
    if decoded is not None:
        return ssz.hash_tree_root(decoded)
    return hash_tree_root_bytes(ssz.types_for(fork, preset_base).BeaconState, data)


def validator_pubkeys(data: bytes, fork: str, preset_base: str) -> np.ndarray:
    """(n, 48) uint8 view of every validator's pubkey, straight from the state bytes."""
    return StateView(data, fork, preset_base).pubkeys()


# --------------------------------------------------------------------------------------------
# Trusted anchors


@dataclass(frozen=True)
class TrustedState:
    """What the chain level needs from a trusted (e.g. recent finalized) state."""

    slot: int
    genesis_validators_root: bytes
    historical_roots: bytes  # 32 * n
    historical_summaries: bytes  # 64 * m (block_summary_root | state_summary_root)
    state_roots: bytes  # the state's own state_roots vector
    root: bytes | None = None
    source: str | None = None  # where it came from, for the report (e.g. "light client")

    def era_root(self, era: int) -> bytes | None:
        """The trusted root of era `era` (>= 1), or None if the state does not cover it."""
        n_hr = len(self.historical_roots) // 32
        i = era - 1
        if i < 0:
            return None
        if i < n_hr:
            return self.historical_roots[32 * i:32 * i + 32]
        j = i - n_hr
        if 64 * j + 64 <= len(self.historical_summaries):
            from .hashing import sha256

            return sha256(self.historical_summaries[64 * j:64 * j + 64])
        return None

    @property
    def covered_eras(self) -> int:
        return len(self.historical_roots) // 32 + len(self.historical_summaries) // 64


def load_trusted_state(data: bytes, network: Network, where: str = "trusted state",
                       with_root: bool = True) -> TrustedState:
    """Parse an SSZ BeaconState (the fork follows from its slot) without decoding it."""
    if len(data) < layout.STATE_SLOT.stop:
        raise FormatError(f"{where}: {len(data)} bytes is too short for a BeaconState")
    slot = layout.u64(data, layout.STATE_SLOT)
    fork = network.fork_name_at_slot(slot)
    try:
        view = StateView(data, fork, network.preset_base)
        hr = view.historical_roots
        hs = (view.historical_summaries if "historical_summaries" in view.field_names
              else np.zeros((0, 64), np.uint8))
        sr = view.state_roots
    except FormatError as exc:
        raise FormatError(f"{where}: not a {fork} BeaconState: {exc}") from exc
    if len(sr) != network.slots_per_historical_root:
        raise FormatError(f"{where}: not a {fork} BeaconState of preset {network.preset_base}")
    root = view.hash_tree_root() if with_root else None
    return TrustedState(slot, view.genesis_validators_root, hr.tobytes(), hs.tobytes(),
                        sr.tobytes(), root)


# --------------------------------------------------------------------------------------------
# One file


class SignedBy(NamedTuple):
    """Which block a pending signature set belongs to."""

    slot: int
    proposer: int


def _bls_chunk(sets: list) -> list[int]:
    return bls.find_invalid(sets)


class _Signatures:
    """Collects signature sets and verifies them in chunks, in-process or in a pool."""

    def __init__(self, report: FileReport, progress, pool=None):
        self.report = report
        self.progress = progress
        self.pool = pool
        self.pending: list = []
        self.meta: list = []
        self.futures: list = []
        self.pk_cache: dict = {}

    def add(self, slot: int, proposer: int, pubkey: bytes, msg: bytes, sig: bytes) -> None:
        self.pending.append(bls.SignatureSet(pubkey, msg, sig))
        self.meta.append(SignedBy(slot, proposer))
        if len(self.pending) >= BLS_CHUNK:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        sets, meta = self.pending, self.meta
        self.pending, self.meta = [], []
        if self.pool is not None:
            fut = self.pool.submit(_bls_chunk, sets)
            if self.progress:
                fut.add_done_callback(lambda _f, n=len(sets): self.progress(n))
            self.futures.append((fut, sets, meta))
        else:
            bad = bls.find_invalid(sets, _pk_cache=self.pk_cache)
            self._record(bad, sets, meta)
            if self.progress:
                self.progress(len(sets))

    def finish(self) -> None:
        self.flush()
        for fut, sets, meta in self.futures:
            self._record(fut.result(), sets, meta)

    def _record(self, bad, sets, meta) -> None:
        for i in bad:
            who, s = meta[i], sets[i]
            self.report.fail("signatures", "proposer_signatures",
                             f"slot {who.slot}: proposer signature does not verify (proposer "
                             f"{who.proposer}, pubkey {hex0x(s.pubkey)}, signing root "
                             f"{hex0x(s.message)})", who.slot,
                             expected=f"a signature by {hex0x(s.pubkey)}", actual=s.signature)


def verify_file(path: str, network: Network, level: str = "signatures", *,
                progress: Callable[[int], None] | None = None, bls_pool=None,
                trusted: TrustedState | None = None) -> FileReport:
    """Check one era file up to `level`; failures are returned in the report, not raised.

    With `trusted` at the chain level the file is also checked against the trusted state's
    historical roots (`check_trusted`): that needs nothing but this file and the state's
    lists, so every file of an archive can be checked on its own (a pool or Dask worker)."""
    if is_era1(path):
        return verify_era1_file(path, level, progress=progress)
    lvl = level_index(level)
    report = FileReport(path=os.fspath(path), level=level)
    try:
        reader = EraReader(path)
    except FormatError as exc:
        report.fail("structure", "index", str(exc))
        return report
    with reader:
        try:
            _verify_open_file(reader, report, network, lvl, progress, bls_pool)
        except EraToolsError as exc:  # an error that stops this file (unexpected bytes)
            report.fail("structure", "read", str(exc))
            report.blocks = 0
    if trusted is not None and lvl >= Level.CHAIN:
        check_trusted(report, trusted, network)
    return report


def anchor_era(path: str, network: Network, trusted: TrustedState) -> FileReport:
    """The trusted-state check alone, from the file's state head (no block is hashed, the
    state is not decoded): the era root of the state's block_roots/state_roots and the file
    name's era and short root against the trusted state's historical roots/summaries.
    It proves which block_roots the era state holds, not that the blocks match them (the
    roots level does that)."""
    report = FileReport(path=os.fspath(path), level="chain")
    sphr = network.slots_per_historical_root
    try:
        with EraReader(path) as reader:
            head = reader.state_head(sphr)
            report.state_slot = reader.state_slot
            report.era = reader.state_slot // sphr
            report.link.update(era_root=head.era_root() if report.era else None,
                               gvr=head.genesis_validators_root)
    except EraToolsError as exc:
        report.fail("structure", "read", str(exc))
        return report
    check_trusted(report, trusted, network)
    return report


def network_mismatch(head, network: Network, gvr: bool = True) -> str | None:
    """Why the era state's fixed fields (fork.current_version at its slot, and with `gvr` its
    genesis_validators_root) say the file is not of `network`, or None.  Cheap: the state's
    front only, so it can run before anything is decoded with the network's types."""
    root = head.genesis_validators_root
    if gvr and network.genesis_validators_root is not None and \
            root != network.genesis_validators_root:
        return (f"the state's genesis_validators_root {hex0x(root)} is not network "
                f"{network.name!r}'s {hex0x(network.genesis_validators_root)}; wrong "
                "--network?")
    epoch = head.slot // network.slots_per_epoch
    if head.fork_current_version != network.fork_at_epoch(epoch).version:
        return (f"the state's fork version {hex0x(head.fork_current_version)} is not "
                f"scheduled by network {network.name!r} at epoch {epoch}; wrong --network?")
    return None


def _verify_open_file(reader: EraReader, report: FileReport, network: Network, lvl: Level,
                      progress, bls_pool) -> None:
    path = reader.path
    preset = network.preset_base
    sphr = network.slots_per_historical_root
    report.era = reader.era
    report.state_slot = reader.state_slot
    block_slots = reader.block_slots()
    report.blocks = 0  # counts the blocks checked: set once the file is readable as a whole

    # -- structure: records, indices, preset --------------------------------------------------
    if reader.slots_per_historical_root not in (None, sphr):
        report.fail("structure", "index",
                    f"block index covers {reader.slots_per_historical_root} slots per era, "
                    f"network {network.name} has {sphr}",
                    expected=sphr, actual=reader.slots_per_historical_root)
        return
    if reader.state_slot % sphr:
        report.fail("structure", "state_slot",
                    f"state slot {reader.state_slot} is not a multiple of {sphr}",
                    expected=(reader.state_slot // sphr) * sphr, actual=reader.state_slot)
        return
    report.era = reader.state_slot // sphr
    # The state's own fixed fields say whether this is the network's chain at all: before
    # anything is decoded with that network's types (which fail with SSZ offset errors).
    head = reader.state_head(sphr)
    wrong = network_mismatch(head, network, gvr=False)  # another gvr: the roots level says so
    if wrong is not None:
        report.fail("structure", "network", wrong, reader.state_slot)
        return
    report.blocks = len(block_slots)
    # Block decoding and hashing start now: in the pool's workers, while this process walks
    # the records and reads and checks the state.
    block_facts = _block_facts(reader, network, block_slots, bls_pool)
    _check_records(reader, report)

    # -- structure: the state ------------------------------------------------------------------
    state_fork = network.fork_name_at_slot(reader.state_slot)
    state_data = reader.state_ssz(mutable=True)  # read-only here; no copy of it
    decoded_state = None
    view = None
    try:
        if len(state_data) <= FULL_STATE_DECODE_LIMIT:
            decoded_state = ssz.decode_state(bytes(state_data), state_fork, preset,
                                             where=f"{path}: state slot {reader.state_slot}")
            detail = f"decoded as {state_fork}"
        else:
            view = StateView(state_data, state_fork, preset)
            _check_state_shape(view)
            detail = f"{state_fork} offset table and list shapes checked"
        report.check("state_decode", "structure", detail=detail)
    except FormatError as exc:
        report.fail("structure", "state_decode",
                    f"state slot {reader.state_slot}: does not decode as {state_fork} "
                    f"BeaconState: {exc}", reader.state_slot)
    if head.slot != reader.state_slot:  # EraReader checks this too
        report.fail("structure", "state_slot", f"state slot {head.slot} != index slot "
                    f"{reader.state_slot}", head.slot, reader.state_slot, head.slot)
    else:
        report.check("state_slot", "structure")

    # -- roots: network identity -------------------------------------------------------------
    if lvl >= Level.ROOTS:
        _check_network(reader, report, network, head)

    # -- signatures: proposer pubkeys ------------------------------------------------------
    pubkeys = None
    sigs = None
    if lvl >= Level.SIGNATURES and block_slots:
        try:
            pubkeys = (view or StateView(state_data, state_fork, preset)).pubkeys()
        except FormatError as exc:
            report.fail("signatures", "proposer_signatures",
                        f"state slot {reader.state_slot}: cannot read validators: {exc}")
        sigs = _Signatures(report, progress, bls_pool)
    gvr = head.genesis_validators_root
    domains: dict[bytes, bytes] = {}

    # -- blocks: one pass over their facts (computed in the pool's workers when there is one)
    start = reader.start_slot
    pending_progress = 0
    for slot, error, msg_slot, proposer, root, parent, sig in block_facts:
        pending_progress += 1
        if progress and sigs is None and pending_progress >= 64:
            progress(pending_progress)
            pending_progress = 0
        if error is not None:
            report.fail("structure", "blocks_decode", error, slot)
            report.blocks -= 1  # not checked
            if progress and sigs is not None:  # never reaches a signature batch
                progress(1)
            continue
        if msg_slot != slot:
            report.fail("structure", "block_slots",
                        f"slot {slot}: the block at this index slot says slot {msg_slot}",
                        slot, expected=slot, actual=msg_slot)
        else:
            report.check("block_slots", "structure")
        report.check("blocks_decode", "structure")
        if lvl < Level.ROOTS:
            continue
        want = head.block_root_at(slot)
        if root != want:
            report.fail("roots", "block_roots",
                        f"slot {slot}: block root {hex0x(root)} != state block_roots"
                        f"[{slot % sphr}] {hex0x(want)}", slot, expected=want, actual=root)
        else:
            report.check("block_roots", "roots")
        if slot == 0:
            if parent != b"\x00" * 32:
                report.fail("roots", "parent_roots", f"slot 0: genesis block parent_root "
                            f"{hex0x(parent)} is not zero", 0, b"\x00" * 32, parent)
        elif slot > start:
            want_parent = head.block_root_at(slot - 1)
            if parent != want_parent:
                report.fail("roots", "parent_roots",
                            f"slot {slot}: parent_root {hex0x(parent)} != state block_roots"
                            f"[{(slot - 1) % sphr}] {hex0x(want_parent)}", slot,
                            expected=want_parent, actual=parent)
            else:
                report.check("parent_roots", "roots")
        else:
            report.link["first_block_parent"] = parent
        if sigs is None:
            continue
        if slot == 0:
            if sig != bls.ZERO_SIGNATURE:
                report.fail("signatures", "proposer_signatures",
                            "slot 0: the genesis block must carry the zero signature", 0,
                            expected=bls.ZERO_SIGNATURE, actual=sig)
            if progress:
                progress(1)
            continue
        if pubkeys is None or proposer >= len(pubkeys):
            if progress:  # never reaches a signature batch
                progress(1)
            if pubkeys is None:
                continue
            report.fail("signatures", "proposer_signatures",
                        f"slot {slot}: proposer_index {proposer} is not a validator (the era "
                        f"state has {len(pubkeys)})", slot, expected=f"< {len(pubkeys)}",
                        actual=proposer)
            continue
        version = network.fork_at_epoch(msg_slot // network.slots_per_epoch).version
        domain = domains.get(version)
        if domain is None:
            domain = domains[version] = compute_domain(DOMAIN_BEACON_PROPOSER, version, gvr)
        sigs.add(slot, proposer, pubkeys[proposer].tobytes(),
                 compute_signing_root(root, domain), sig)
    if progress and sigs is None and pending_progress:
        progress(pending_progress)
    if sigs is not None:
        sigs.finish()
        report.check("proposer_signatures", "signatures")

    # -- roots: empty slots, file name ---------------------------------------------------------
    if lvl >= Level.ROOTS:
        _check_empty_slots(reader, report, head)
        _check_file_name(reader, report, network, head)
        report.link.update(
            first_slot_empty=bool(start is not None and reader.block_index.position(start) == 0),
            first_block_root=head.block_roots[:32],
            last_block_root=head.block_roots[-32:],
            state_roots0=head.state_roots[:32],
            era_root=head.era_root() if report.era else None,
            gvr=head.genesis_validators_root)

    # -- chain: this file's state root -----------------------------------------------------
    if lvl >= Level.CHAIN:
        report.link["state_root"] = state_root(state_data, state_fork, preset, decoded_state)
        report.check("state_root", "chain", detail=hex0x(report.link["state_root"]))


class BlockFacts(NamedTuple):
    """What the checks against the state need from one block, read from its bytes alone (in
    a pool worker when there is one); the checks themselves run in the parent."""

    slot: int                  # the index slot
    error: str | None          # why the block does not decode (then the rest is None)
    msg_slot: int | None       # the slot the block message says
    proposer: int | None
    root: bytes | None         # hash_tree_root(message)
    parent: bytes | None
    signature: bytes | None


FACTS_CHUNK = 256  # blocks per worker task (an era has 32 of them)


def _facts_of(reader: EraReader, network: Network, slots) -> list[BlockFacts]:
    preset = network.preset_base
    out = []
    for slot in slots:
        fork = network.fork_name_at_slot(slot)
        try:
            data = reader.block_ssz(slot, mutable=True)
            root = _decode_block_root(data, fork, preset, f"{reader.path}: slot {slot}")
        except FormatError as exc:
            out.append(BlockFacts(slot, f"slot {slot}: block does not decode as {fork} "
                                        f"SignedBeaconBlock: {exc}", None, None, None, None,
                                  None))
            continue
        out.append(BlockFacts(slot, None, layout.block_slot(data), layout.block_proposer(data),
                              root, layout.block_parent(data), layout.block_signature(data)))
    return out


_worker_reader: tuple | None = None  # (key, EraReader): the file a pool worker has open


def _facts_task(path: str, network: Network, slots: list[int]) -> list[BlockFacts]:
    """Pool task: a worker opens the era file itself (the parent sends path and slots, not
    bytes) and keeps it open for the next chunk of the same file."""
    global _worker_reader
    if path.startswith("s3://"):  # an object: its URL names it for the run
        key = (path,)
    else:
        st = os.stat(path)
        key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
    if _worker_reader is None or _worker_reader[0] != key:
        if _worker_reader is not None:
            _worker_reader[1].close()
            _worker_reader = None
        _worker_reader = (key, EraReader(path))
    return _facts_of(_worker_reader[1], network, slots)


def _block_facts(reader: EraReader, network: Network, block_slots: list[int], pool):
    """Facts of every block in slot order: an iterator that, with a pool, submits all chunks
    at once and yields their results as they come back in order."""
    if pool is None or len(block_slots) <= FACTS_CHUNK:
        return (f for i in range(0, len(block_slots), FACTS_CHUNK)
                for f in _facts_of(reader, network, block_slots[i:i + FACTS_CHUNK]))
    futs = [pool.submit(_facts_task, reader.path, network, block_slots[i:i + FACTS_CHUNK])
            for i in range(0, len(block_slots), FACTS_CHUNK)]

    def gen():
        try:
            for fut in futs:
                yield from fut.result()
        finally:
            for fut in futs:
                fut.cancel()
    return gen()


def _decode_block_root(data: bytes, fork: str, preset: str, where: str) -> bytes:
    """Check that `data` is a well-formed SignedBeaconBlock of `fork`; return the block root.

    The bytes-based hasher (era_tools.ssz.fast) checks every offset, size, limit and bit
    pattern on the walk that computes the root, so no objects are built."""
    return layout.message_root(data, fork, preset, where)


def _check_records(reader: EraReader, report: FileReport) -> None:
    """Every header walks cleanly; block records and index entries match one to one."""
    block_offsets = set()
    try:
        for rec in reader.records():
            if rec.type == e2store.COMPRESSED_SIGNED_BEACON_BLOCK:
                block_offsets.add(rec.offset)
            elif rec.type not in (e2store.VERSION, e2store.EMPTY, e2store.COMPRESSED_BEACON_STATE,
                                  e2store.SLOT_INDEX):
                report.notes.append(f"offset {rec.offset}: unknown record type "
                                    f"{e2store.type_name(rec.type)} ({rec.length} bytes) "
                                    "skipped")
    except FormatError as exc:
        report.fail("structure", "records", str(exc))
        return
    indexed = {}
    if reader.block_index is not None:
        for i, pos in enumerate(reader.block_index.positions.tolist()):
            if pos:
                slot = reader.block_index.start_slot + i
                if pos in indexed:
                    report.fail("structure", "index",
                                f"slot {slot}: index points at the same record (offset {pos}) "
                                f"as slot {indexed[pos]}", slot)
                indexed[pos] = slot
                if pos not in block_offsets:
                    report.fail("structure", "index",
                                f"slot {slot}: index offset {pos} is not the start of a "
                                "block record", slot)
    for off in sorted(block_offsets - set(indexed)):
        report.fail("structure", "index", f"offset {off}: block record not referenced by the "
                    "block index")
    report.check("records", "structure")
    report.check("index", "structure")


def _check_network(reader: EraReader, report: FileReport, network: Network, head) -> None:
    gvr = head.genesis_validators_root
    if network.genesis_validators_root is not None and gvr != network.genesis_validators_root:
        report.fail("roots", "network",
                    f"state genesis_validators_root {hex0x(gvr)} is not network "
                    f"{network.name}'s {hex0x(network.genesis_validators_root)}",
                    reader.state_slot, expected=network.genesis_validators_root, actual=gvr)
    want = network.fork_at_slot(reader.state_slot).version
    if head.fork_current_version != want:
        report.fail("roots", "network",
                    f"state slot {reader.state_slot}: fork version "
                    f"{hex0x(head.fork_current_version)} is not network {network.name}'s "
                    f"{hex0x(want)}", reader.state_slot, expected=want,
                    actual=head.fork_current_version)
    report.check("network", "roots")


def _check_empty_slots(reader: EraReader, report: FileReport, head) -> None:
    if reader.block_index is None:
        return
    start = reader.start_slot
    sphr = head.sphr
    roots = head.block_roots_array()
    for slot in reader.empty_slots():
        if slot == start:
            continue  # needs the previous era (cross-file check)
        i = slot % sphr
        if not np.array_equal(roots[i], roots[i - 1]):
            report.fail("roots", "empty_slots",
                        f"slot {slot}: no block, but state block_roots[{i}] "
                        f"{hex0x(roots[i].tobytes())} != block_roots[{i - 1}] "
                        f"{hex0x(roots[i - 1].tobytes())} (a block is missing)", slot,
                        expected=roots[i - 1].tobytes(), actual=roots[i].tobytes())
    report.check("empty_slots", "roots")


def _check_file_name(reader: EraReader, report: FileReport, network: Network, head) -> None:
    name = os.path.basename(reader.path)
    expected = reader.expected_name(network.config_name, head)
    parsed = parse_era_file_name(name)
    if parsed is None:
        report.fail("roots", "file_name", f"file name {name} does not follow "
                    f"<config>-<era>-<root>.era (expected {expected})", expected=expected,
                    actual=name)
        return
    config_name, era, short = parsed
    if config_name != network.config_name:
        report.fail("roots", "file_name", f"file name config {config_name!r} is not network "
                    f"{network.name}'s {network.config_name!r}", expected=network.config_name,
                    actual=config_name)
    if era != reader.era:
        report.fail("roots", "file_name", f"file name says era {era}, the file holds era "
                    f"{reader.era}", expected=reader.era, actual=era)
    computed = head.short_root(reader.era).hex()
    if short != computed:
        report.fail("roots", "file_name", f"file name short root 0x{short} != 0x{computed} "
                    f"computed from the state", expected="0x" + computed, actual="0x" + short)
    report.check("file_name", "roots")


# --------------------------------------------------------------------------------------------
# Many files


def _link_checks(reports: Sequence[FileReport], archive: ArchiveReport, lvl: Level,
                 trusted_root: bytes | None, trusted: TrustedState | None,
                 network: Network) -> None:
    by_era: dict[int, list[FileReport]] = {}
    for r in reports:
        if r.era is not None:
            by_era.setdefault(r.era, []).append(r)
    sphr = network.slots_per_historical_root
    # roots: the first slot of each era against the previous era's state
    if lvl >= Level.ROOTS:
        for era, rs in by_era.items():
            prev = by_era.get(era - 1)
            if len(rs) != 1 or not prev or len(prev) != 1 or era < 2:
                continue
            r, p = rs[0], prev[0]
            if "first_slot_empty" not in r.link or "last_block_root" not in p.link:
                continue
            start = (era - 1) * sphr
            prev_root = p.link["last_block_root"]
            if r.link["first_slot_empty"]:
                if r.link["first_block_root"] != prev_root:
                    r.fail("roots", "empty_slots",
                           f"slot {start}: no block, but state block_roots[0] "
                           f"{hex0x(r.link['first_block_root'])} != block_roots of slot "
                           f"{start - 1} {hex0x(prev_root)} in {p.path} (a block is missing)",
                           start, expected=prev_root, actual=r.link["first_block_root"])
            elif "first_block_parent" in r.link and r.link["first_block_parent"] != prev_root:
                r.fail("roots", "parent_roots",
                       f"slot {start}: parent_root {hex0x(r.link['first_block_parent'])} != "
                       f"block root of slot {start - 1} {hex0x(prev_root)} in {p.path}",
                       start, expected=prev_root, actual=r.link["first_block_parent"])
    if lvl < Level.CHAIN:
        return
    # chain: one file per era, no gaps
    for era, rs in sorted(by_era.items()):
        if len(rs) > 1:
            names = ", ".join(x.path for x in rs)
            for r in rs:
                r.fail("chain", "era_sequence", f"era {era}: {len(rs)} files ({names})")
    eras = sorted(by_era)
    for before, after in zip(eras, eras[1:]):  # one failure per gap, not per missing era
        if after - before > 1:
            what = (f"era {before + 1} is missing" if after - before == 2 else
                    f"eras {before + 1}..{after - 1} are missing")
            archive.failures.append(Failure("chain", "era_sequence", f"{what} (gap between "
                                            f"era {before} and {after})"))
    # chain: links between consecutive states
    for era in eras:
        rs, prev = by_era[era], by_era.get(era - 1)
        if len(rs) != 1 or not prev or len(prev) != 1:
            continue
        r, p = rs[0], prev[0]
        if "state_root" not in p.link or "state_roots0" not in r.link:
            continue
        if r.link["state_roots0"] != p.link["state_root"]:
            slot = (era - 1) * sphr
            r.fail("chain", "links",
                   f"state slot {era * sphr}: state_roots[0] {hex0x(r.link['state_roots0'])} "
                   f"!= hash_tree_root of the era {era - 1} state (slot {slot}) "
                   f"{hex0x(p.link['state_root'])} in {p.path}", slot,
                   expected=p.link["state_root"], actual=r.link["state_roots0"])
        else:
            r.check("links", "chain")
    # chain: anchors (each file was checked against the trusted state on its own:
    # verify_file's check_trusted)
    _anchor(by_era, eras, archive, trusted_root, trusted, network)


def _anchor(by_era: dict, eras: list, archive: ArchiveReport, trusted_root: bytes | None,
            trusted: TrustedState | None, network: Network) -> None:
    """Check --trusted-root, then say which eras the anchors reach (`FileReport.anchored`,
    `ArchiveReport.unanchored`).

    The trusted root may be the newest era state's root, the root of the trusted state, or
    the root of a block in the files.  A block root anchors the blocks up to its slot (through
    their parent roots) and, walking down to the nearest era boundary slot that holds a block,
    the era state there (that block's state_root is the state at the boundary).  An anchored
    era state anchors the era before it through the checked link (state_roots[0]).  A file is
    `anchored` when its state is (and with it its block_roots, so its blocks)."""
    sphr = network.slots_per_historical_root
    newest = by_era[eras[-1]] if eras else []
    direct: set[int] = set()  # eras whose own roots matched a trusted value
    blocks_to = None          # block anchor: blocks up to this slot are anchored
    if trusted is not None:
        direct |= {e for e in eras for r in by_era[e]
                   if _ok(r, "historical_roots") or _ok(r, "anchor")}
        archive.anchor = {"kind": "trusted_state", "slot": trusted.slot,
                          "root": hex0x(trusted.root) if trusted.root else None,
                          "covers_eras": [1, trusted.covered_eras] if trusted.covered_eras
                          else [], "matched": bool(direct) and not any(
                              f.check in ("historical_roots", "anchor")
                              for e in eras for r in by_era[e] for f in r.failures)}
        if trusted.source:
            archive.anchor["source"] = trusted.source
    if trusted_root is not None:
        n = newest[0] if len(newest) == 1 and "state_root" in newest[0].link else None
        if n is not None and n.link["state_root"] == trusted_root:
            n.check("anchor", "chain", detail="trusted root")
            direct.add(n.era)
            archive.anchor = {"kind": "state_root", "root": hex0x(trusted_root),
                              "era": n.era, "slot": n.state_slot, "path": n.path,
                              "matched": True}
        elif trusted is not None and trusted.root == trusted_root:
            archive.anchor["root_matched"] = True  # --trusted-state is the trusted root's
        else:
            hit = _find_block(by_era, eras, trusted_root, sphr)
            if hit is not None:
                r, slot = hit
                r.check("anchor", "chain", detail=f"trusted block root at slot {slot}")
                blocks_to = slot
                archive.anchor = {"kind": "block_root", "root": hex0x(trusted_root),
                                  "slot": slot, "era": r.era, "path": r.path, "matched": True}
                state_era = _walk_to_boundary(by_era, eras, slot, sphr, network)
                if state_era is not None:
                    archive.anchor.update(state_era=state_era, state_slot=state_era * sphr)
                    direct.add(state_era)
            elif n is not None:
                n.fail("chain", "anchor",
                       f"state slot {n.state_slot}: state root {hex0x(n.link['state_root'])} "
                       f"!= trusted root {hex0x(trusted_root)}", n.state_slot,
                       expected=trusted_root, actual=n.link["state_root"])
                archive.notes.append(
                    f"the trusted root {hex0x(trusted_root)} is not the newest era state's "
                    "root" + (", nor the trusted state's," if trusted is not None else "")
                    + " nor the root of a block in these files")
                archive.anchor = {"kind": "none", "root": hex0x(trusted_root),
                                  "matched": False}
    if trusted_root is None and trusted is None:
        archive.notes.append("chain not anchored: links between files checked only (give "
                             "--trusted-root or --trusted-state)")
    # an anchored era state anchors the era before it, where the link between them holds
    anchored = set()
    for era in reversed(eras):
        if era in direct or (era + 1 in anchored and len(by_era[era + 1]) == 1
                             and _ok(by_era[era + 1][0], "links")):
            anchored.add(era)
    for era in eras:
        for r in by_era[era]:
            r.anchored = era in anchored and len(by_era[era]) == 1
    archive.unanchored = [e for e in eras if e not in anchored]
    if archive.unanchored and (trusted_root is not None or trusted is not None) and \
            (archive.anchor or {}).get("kind") != "none":
        which = format_spans(spans(archive.unanchored))
        what = "era" if len(archive.unanchored) == 1 else "eras"
        if blocks_to is not None:
            states = (f"the era states up to era {archive.anchor['state_era']}"
                      if "state_era" in archive.anchor else "no era state")
            why = (f"the trusted block root anchors the blocks up to slot {blocks_to} and "
                   f"{states}, not the state of these eras")
        elif archive.anchor and archive.anchor["kind"] == "trusted_state":
            why = ((f"the trusted state (slot {trusted.slot}) covers eras "
                    f"1..{trusted.covered_eras}" if trusted.covered_eras else
                    f"the trusted state (slot {trusted.slot}) holds no era roots")
                   + "; only their links to each other were checked")
        else:
            why = "the trusted state does not reach them"
        archive.notes.append(f"{what} {which} not anchored: {why}")


def _ok(r: FileReport, check: str) -> bool:
    return r.checks.get(check, {}).get("status") == "ok"


def _find_block(by_era: dict, eras: list, root: bytes, sphr: int):
    """(report, slot) of the file holding the block whose root is `root`, newest first (each
    file's state head is read again: block_roots are not kept in the reports)."""
    want = np.frombuffer(root, dtype=np.uint8)
    for era in reversed(eras):
        rs = by_era[era]
        if era == 0 or len(rs) != 1 or not rs[0].ok:
            continue
        try:
            with EraReader(rs[0].path) as reader:
                roots = reader.state_head(sphr).block_roots_array()
                for i in np.flatnonzero((roots == want).all(axis=1)).tolist():
                    slot = reader.start_slot + i
                    if reader.block_index.position(slot):
                        return rs[0], slot
        except EraToolsError:
            continue
    return None


def _walk_to_boundary(by_era: dict, eras: list, slot: int, sphr: int,
                      network: Network) -> int | None:
    """From an anchored block at `slot` down to the nearest era boundary slot k*SPHR that
    holds a block: that block's state_root is the era k state's root.  Returns k when it
    matches (a mismatch fails the era k file), None when no such boundary is in the files."""
    for k in sorted((e for e in eras if e * sphr <= slot and e + 1 in by_era), reverse=True):
        state, holder = by_era[k], by_era[k + 1]
        if len(state) != 1 or len(holder) != 1 or "state_root" not in state[0].link:
            return None
        try:
            with EraReader(holder[0].path) as reader:
                data = reader.block_ssz(k * sphr)
        except EraToolsError:
            return None
        if data is None:
            continue  # an empty boundary slot: walk down to the one before
        block_state_root = layout.block_state_root(data)
        r = state[0]
        if block_state_root != r.link["state_root"]:
            r.fail("chain", "anchor",
                   f"state slot {r.state_slot}: state root {hex0x(r.link['state_root'])} != "
                   f"state_root {hex0x(block_state_root)} of the anchored block at slot "
                   f"{k * sphr}", r.state_slot, expected=block_state_root,
                   actual=r.link["state_root"])
            return None
        r.check("anchor", "chain", detail=f"state_root of the block at slot {k * sphr}")
        return k
    return None


def check_trusted(r: FileReport, t: TrustedState, network: Network) -> None:
    """One era file's report against a trusted state (needs this file's facts in `r.link`
    and the trusted lists, no other file): the era root of the file's state equals the
    state's historical entry for the era its name says, the name's short root is that
    entry's, and a state the trusted state reaches (its own slot, or within its state_roots)
    has the root it says.  Eras past the state's coverage get no check (unanchored)."""
    sphr = network.slots_per_historical_root
    gvr = r.link.get("gvr")
    if gvr is not None and gvr != t.genesis_validators_root:
        r.fail("chain", "historical_roots", f"genesis_validators_root {hex0x(gvr)} != trusted "
               f"state's {hex0x(t.genesis_validators_root)}", expected=t.genesis_validators_root,
               actual=gvr)
        return
    era_root = r.link.get("era_root")
    if r.era and era_root is not None:
        want = t.era_root(r.era)
        if want is not None:
            if want != era_root:
                r.fail("chain", "historical_roots",
                       f"era {r.era}: era root {hex0x(era_root)} != trusted state "
                       f"(slot {t.slot}) historical entry {hex0x(want)}", r.state_slot,
                       expected=want, actual=era_root)
            else:
                r.check("historical_roots", "chain")
        _check_trusted_name(r, t, era_root)
    sr = r.link.get("state_root")
    if sr is not None and r.state_slot is not None:
        if r.state_slot == t.slot and t.root is not None:
            want = t.root
        elif r.state_slot < t.slot <= r.state_slot + sphr:
            i = (r.state_slot % sphr) * 32
            want = t.state_roots[i:i + 32]
        else:
            return
        if want != sr:
            r.fail("chain", "anchor", f"state slot {r.state_slot}: state root {hex0x(sr)} != "
                   f"trusted state's {hex0x(want)}", r.state_slot, expected=want, actual=sr)
        else:
            r.check("anchor", "chain", detail="trusted state")


def _check_trusted_name(r: FileReport, t: TrustedState, era_root: bytes) -> None:
    """The file's place in the archive (its name's era and short root) against the trusted
    entry for that era: a file moved to another era's name, or renamed, fails here even when
    its contents are a good era."""
    parsed = parse_era_file_name(os.path.basename(r.path))
    if parsed is None:
        return  # the roots level reports a name that does not parse
    _, named_era, short = parsed
    want = t.era_root(named_era) if named_era else None
    if named_era != r.era:
        whose = (f", whose trusted root (state slot {t.slot}) is {hex0x(want)}"
                 if want is not None else "")
        r.fail("chain", "historical_roots",
               f"file name says era {named_era}{whose}; the file holds era {r.era} (era root "
               f"{hex0x(era_root)})", r.state_slot,
               expected=want if want is not None else named_era, actual=era_root)
    elif want is not None and short != want[:4].hex():
        r.fail("chain", "historical_roots",
               f"file name short root 0x{short} != 0x{want[:4].hex()} of the trusted state's "
               f"(slot {t.slot}) era {named_era} root", expected="0x" + want[:4].hex(),
               actual="0x" + short)


# --------------------------------------------------------------------------------------------
# era1 files (execution-layer history before the merge, read only: era1.py)

# check of era1.check_era1_file -> (level, report check name)
_ERA1_LEVELS = {"structure": ("structure", "era1_structure"),
                "header chain": ("roots", "header_chain"),
                "total difficulty": ("roots", "total_difficulty"),
                "accumulator": ("roots", "accumulator"),
                "name": ("roots", "file_name")}


def is_era1(path) -> bool:
    return os.fspath(path).endswith(".era1")


def archive_files_in(paths) -> list[str]:
    """era_files_in (.era files, directories expanded) plus the .era1 files of directories."""
    out = era_files_in(paths)
    for p in paths:
        p = os.fspath(p)
        if p.startswith("s3://"):
            from . import objstore

            out.extend(objstore.files_in(p, ".era1", objects_too=False))
        elif os.path.isdir(p):
            out.extend(os.path.join(p, n) for n in os.listdir(p)
                       if n.endswith(".era1") and os.path.isfile(os.path.join(p, n)))
    return sorted(set(out), key=lambda x: (os.path.dirname(x), os.path.basename(x)))


def verify_era1_file(path, level: str = "signatures", *,
                     progress: Callable[[int], None] | None = None) -> FileReport:
    """Check an era1 file: `structure` (records, decompression, header numbers) and, from
    `roots` up, the header chain, total difficulties, accumulator root and file name.  era1
    blocks carry no signatures (proof of work is not checked); at `chain` consecutive files
    must link (`_era1_link_checks`)."""
    lvl = level_index(level)
    report = FileReport(path=os.fspath(path), level=level)
    for res in era1.check_era1_file(path):
        check_level, name = _ERA1_LEVELS[res.check]
        if level_index(check_level) > lvl:
            continue
        if res.ok:
            report.check(name, check_level, detail=res.detail)
        else:
            report.fail(check_level, name, res.detail)
    try:
        with era1.Era1Reader(path) as r:
            report.blocks = r.count
            report.link.update(epoch=r.epoch, start_number=r.start_number,
                               first_parent=era1.header_fields(r.header_rlp(0), r.path)[0],
                               last_hash=era1.keccak256(r.header_rlp(r.count - 1)))
    except FormatError:
        pass  # already reported by the structure check
    if progress and report.blocks:
        progress(report.blocks)
    return report


def _era1_link_checks(reports: Sequence[FileReport], archive: ArchiveReport) -> None:
    """chain level over era1 files: one file per epoch, no gaps, and each file's first
    header names the previous file's last header as its parent."""
    by_epoch: dict[int, list[FileReport]] = {}
    for r in reports:
        if is_era1(r.path) and "epoch" in r.link:
            by_epoch.setdefault(r.link["epoch"], []).append(r)
    for epoch, rs in sorted(by_epoch.items()):
        if len(rs) > 1:
            names = ", ".join(x.path for x in rs)
            for r in rs:
                r.fail("chain", "era1_sequence", f"epoch {epoch}: {len(rs)} era1 files ({names})")
            continue
        prev = by_epoch.get(epoch - 1)
        if prev is None or len(prev) != 1:
            continue
        r, p = rs[0], prev[0]
        if r.link["first_parent"] != p.link["last_hash"]:
            r.fail("chain", "era1_links",
                   f"block {r.link['start_number']}: parent_hash "
                   f"{hex0x(r.link['first_parent'])} != hash {hex0x(p.link['last_hash'])} of "
                   f"the last header of {p.path}", expected=p.link["last_hash"],
                   actual=r.link["first_parent"])
        else:
            r.check("era1_links", "chain")
    epochs = sorted(by_epoch)
    missing = [(a + 1, b - 1) for a, b in zip(epochs, epochs[1:]) if b - a > 1]  # as runs
    if missing:
        archive.failures.append(Failure("chain", "era1_sequence",
                                        f"era1 epochs missing between {epochs[0]} and "
                                        f"{epochs[-1]}: {format_spans(missing, '-')}"))


def count_blocks(paths: Iterable[str]) -> int:
    n = 0
    for p in paths:
        try:
            if is_era1(p):
                with era1.Era1Reader(p) as r1:
                    n += r1.count
                continue
            with EraReader(p) as r:
                n += len(r.block_slots())
        except FormatError:
            pass
    return n


_progress_queue = None


def _init_worker(q) -> None:
    global _progress_queue
    _progress_queue = q


def _file_task(path: str, network: Network, level: str,
               trusted: TrustedState | None = None) -> FileReport:
    """One file, in a pool worker or on a Dask worker (no progress queue there)."""
    q = _progress_queue
    return verify_file(path, network, level, progress=(q.put if q is not None else None),
                       trusted=trusted)


def verify_archive(paths: Sequence[str], network: Network | None, level: str = "signatures", *,
                   trusted_root: bytes | None = None, trusted_state: TrustedState | None = None,
                   jobs: int | None = None,
                   progress: Callable[[int], None] | None = None,
                   dask: str | None = None) -> ArchiveReport:
    """Verify era files (paths: files or directories) and the links between them; era1 files
    among them (`verify_era1_file`) need no network.

    With `dask` ("tcp://HOST:PORT" of a Dask scheduler) every file is verified on a worker of
    that cluster (era_tools.cluster), which reads it from the same path; the checks across
    files run here on the returned reports, as in a local run.

    Files are verified in parallel in `jobs` processes (default: all cores); with one file, or
    jobs=1, the file is verified in this process (a single file still spreads its block
    hashing and signature batches over `jobs` worker processes: each worker reads its chunk of
    blocks from the file itself and returns only roots and header fields)."""
    lvl = level_index(level)
    files = archive_files_in(paths)
    jobs = max(1, jobs or os.cpu_count() or 1)
    if network is None and not all(is_era1(p) for p in files):
        unreadable = _unreadable(files)
        if len(unreadable) < sum(not is_era1(p) for p in files):
            raise ConfigError("era files need a network (era1 files alone do not)")
        # not one era file opens: each fails its structure, whatever the network
        archive = ArchiveReport(level=level, network="unknown")
        for p, exc in unreadable.items():
            r = FileReport(path=p, level=level)
            r.fail("structure", "index", str(exc))
            archive.files.append(r)
        archive.files += [verify_era1_file(p, level, progress=progress)
                          for p in files if is_era1(p)]
        return archive
    archive = ArchiveReport(level=level, network=network.name if network else _era1_network(files))
    if dask is not None:
        from .cluster import run_per_file

        reports = run_per_file(dask, _file_task, files, network, level, trusted_state,
                               progress=(lambda r: progress(r.blocks)) if progress else None,
                               name="verify")
    elif jobs == 1 or len(files) <= 1:
        pool = None
        if jobs > 1:  # block hashing (every level) and signature batches go to the pool
            pool = cf.ProcessPoolExecutor(jobs, mp_context=_mp_context())
        try:
            reports = [verify_file(p, network, level, progress=progress, bls_pool=pool,
                                   trusted=trusted_state) for p in files]
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
    else:
        reports = _verify_parallel(files, network, level, jobs, progress, trusted_state)
    era_reports = [r for r in reports if not is_era1(r.path)]
    if era_reports:
        _link_checks(era_reports, archive, lvl, trusted_root, trusted_state, network)
    if len(era_reports) < len(reports):
        if lvl >= Level.SIGNATURES:
            archive.notes.append("era1 files are checked up to the roots level: their blocks "
                                 "carry no proposer signatures (proof of work is not checked)")
        if lvl >= Level.CHAIN:
            _era1_link_checks(reports, archive)
    archive.files = sorted(reports, key=lambda r: (r.era if r.era is not None else -1, r.path))
    return archive


def _unreadable(files) -> dict:
    """{path: FormatError} of the era files that do not open (no network is needed)."""
    out = {}
    for p in files:
        if is_era1(p):
            continue
        try:
            EraReader(p).close()
        except FormatError as exc:
            out[p] = exc
    return out


def _era1_network(files) -> str:
    names = {era1.parse_era1_file_name(p)[0] for p in files if era1.parse_era1_file_name(p)}
    return names.pop() if len(names) == 1 else "unknown"


def _mp_context():
    # fork (no second import of this module) unless a thread is running; then a forkserver
    # that has already imported it
    return pool_context([__name__])


def _verify_parallel(files, network, level, jobs, progress, trusted) -> list[FileReport]:
    ctx = _mp_context()
    q = ctx.Queue() if progress else None
    stop = threading.Event()

    def drain():
        while not stop.is_set() or (q is not None and not q.empty()):
            try:
                progress(q.get(timeout=0.1))
            except queue.Empty:
                continue
            except (EOFError, OSError):
                return

    drainer = threading.Thread(target=drain, daemon=True) if q is not None else None
    try:
        with cf.ProcessPoolExecutor(min(jobs, len(files)), mp_context=ctx,
                                    initializer=_init_worker, initargs=(q,)) as pool:
            futs = [pool.submit(_file_task, p, network, level, trusted) for p in files]
            if drainer:  # after the first submit has started (forked) the workers
                drainer.start()
            reports = []
            for p, f in zip(files, futs):
                try:
                    reports.append(f.result())
                except EraToolsError as exc:
                    r = FileReport(path=p, level=level)
                    r.fail("structure", "read", str(exc))
                    reports.append(r)
    finally:
        stop.set()
        if drainer and drainer.is_alive():
            drainer.join(timeout=5)
    return reports
