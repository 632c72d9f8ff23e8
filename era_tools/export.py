"""Export: write the complete eras a chain store holds as .era files.

An era N >= 1 is complete when the store indexes every slot of [(N-1)*SPHR, N*SPHR - 1] and
holds the state at N*SPHR; era 0 needs only the genesis state.  Blocks and states are stored
snappy-framed, so they are copied through with no recompression.  Files are written by
EraWriter (tmp + fsync + rename; never overwrites a different file), and a file that already
exists under the right name is skipped.
"""

from __future__ import annotations

import glob
import os
import signal
from dataclasses import dataclass, field
from typing import Callable

from . import framing
from .era import EraWriter, StateHead, era_file_name, state_prefix_size
from .errors import StoreError
from .store import ChainStore, schema

# Crash-test hook: SIGKILL this process after writing N block records in total.
_KILL_AFTER_RECORDS = int(os.environ.get("ERA_TOOLS_KILL_AFTER_RECORDS", "0") or 0)


@dataclass
class ExportResult:
    written: list = field(default_factory=list)   # paths
    skipped: list = field(default_factory=list)   # paths that already existed
    missing: dict = field(default_factory=dict)   # era -> reason
    bytes_written: int = 0


def era_status(store: ChainStore, era: int) -> str | None:
    """None when `era` can be exported, else what is missing."""
    sphr = store.sphr
    state_slot = era * sphr
    problems = []
    if era > 0:
        start, end = (era - 1) * sphr, state_slot - 1
        if not store.is_covered(start, end):
            problems.append(f"blocks of slots {start}..{end} are not all indexed")
    if not store.has_state(state_slot):
        problems.append(f"no state at slot {state_slot}")
    return "; ".join(problems) or None


def exportable_range(store: ChainStore) -> tuple[int, int] | None:
    """(first, last) era worth trying when the user gives no range."""
    slots = store.state_slots()
    eras = [s // store.sphr for s in slots if s % store.sphr == 0]
    if not eras:
        return None
    return min(eras), max(eras)


def expected_name(store: ChainStore, era: int, state_framed: bytes) -> str:
    prefix = framing.decompress_prefix(state_framed, state_prefix_size(store.sphr),
                                       where=f"{store.path}: state slot {era * store.sphr}")
    head = StateHead.parse(prefix, store.sphr, f"{store.path}: state slot {era * store.sphr}")
    return era_file_name(store.network.config_name, era, head.short_root(era))


def export(store: ChainStore, out_dir, from_era: int | None = None, to_era: int | None = None,
           progress: Callable[[int], None] | None = None, fsync: bool = True) -> ExportResult:
    """Write eras [from_era, to_era] (default: every complete era) into `out_dir`.

    With an explicit range, every era in it must be complete: the incomplete ones are listed in
    `result.missing` (the caller turns that into a non-zero exit).  Without a range, eras that
    are not complete are silently left out."""
    out_dir = os.fspath(out_dir)
    res = ExportResult()
    explicit = from_era is not None or to_era is not None
    rng = exportable_range(store)
    if rng is None and not explicit:
        return res
    lo = from_era if from_era is not None else (rng[0] if rng else 0)
    hi = to_era if to_era is not None else (rng[1] if rng else lo)
    if hi < lo:
        raise StoreError(f"--to-era {hi} is before --from-era {lo}")
    os.makedirs(out_dir, exist_ok=True)
    records = 0
    for era in range(lo, hi + 1):
        why = era_status(store, era)
        if why is not None:
            if explicit:
                res.missing[era] = why
            if progress:
                progress(1)
            continue
        state_framed = store.get_state_framed(era * store.sphr)
        name = expected_name(store, era, state_framed)
        final = os.path.join(out_dir, name)
        if os.path.exists(final):
            res.skipped.append(final)
            if progress:
                progress(1)
            continue
        others = glob.glob(os.path.join(glob.escape(out_dir),
                                        f"{glob.escape(store.network.config_name)}-{era:05d}-*.era"))
        if others:
            raise StoreError(f"{others[0]}: a different file for era {era} exists "
                             f"(the store's is {name}); refusing to overwrite")
        w = EraWriter(out_dir, store.network.config_name, era, store.sphr, fsync=fsync)
        try:
            if era > 0:
                start, end = (era - 1) * store.sphr, era * store.sphr - 1
                for k, root in store.iter_index(start, end):
                    if not root:
                        continue
                    framed = store.get_block_framed(bytes(root))
                    if framed is None:
                        raise StoreError(f"{store.path}: block {root.hex()} is indexed but "
                                         "not stored")
                    slot = schema.slot_of_key(k)
                    w.add_block(slot, framed=framed)
                    res.bytes_written += len(framed) + 8
                    records += 1
                    if _KILL_AFTER_RECORDS and records >= _KILL_AFTER_RECORDS:
                        os.kill(os.getpid(), signal.SIGKILL)
            w.set_state(framed=state_framed)
            res.bytes_written += len(state_framed) + 8
            path = w.finish()
        except BaseException:
            w.abort()
            raise
        res.written.append(path)
        if progress:
            progress(1)
    return res
