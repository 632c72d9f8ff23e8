"""Export: write the complete eras a chain store holds as .era files.

An era N >= 1 is complete when the store indexes every slot of [(N-1)*SPHR, N*SPHR - 1] and
holds the state at N*SPHR; era 0 needs only the genesis state.  Blocks and states are stored
snappy-framed, so they are copied through with no recompression.  Files are written by
EraWriter (tmp + fsync + rename; never overwrites a different file), and a file that already
exists under the right name is skipped.  The store's network goes beside the files as
`spec.json` and `genesis.json` (write_network_files), so the directory names its network.
"""

from __future__ import annotations

import glob
import os
import signal
from dataclasses import dataclass, field
from typing import Callable

from . import e2store, framing
from .fileio import sha256_file
from .e2store import HEADER_SIZE
from .era import EraWriter, era_file_name, parse_era_file_name
from .errors import FormatError, StoreError
from .ssz import layout
from .ssz.layout import StateHead, state_prefix_size
from .store import ChainStore, schema

# Crash-test hook: SIGKILL this process after writing N block records in total (counted per
# process, over every export() call: `era sync` exports one era per call).
_KILL_AFTER_RECORDS = int(os.environ.get("ERA_TOOLS_KILL_AFTER_RECORDS", "0") or 0)
_records_before = 0   # block records written by earlier export() calls of this process


@dataclass
class ExportResult:
    written: list = field(default_factory=list)   # paths
    skipped: list = field(default_factory=list)   # paths that already existed
    missing: list = field(default_factory=list)   # (first era, last era, reason): runs
    replaced: list = field(default_factory=list)  # paths of damaged files written anew
    network_files: list = field(default_factory=list)  # spec.json / genesis.json written
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
    return _name_from_prefix(store, era, prefix)


def _name_from_prefix(store: ChainStore, era: int, prefix: bytes) -> str:
    head = StateHead.parse(prefix, store.sphr, f"{store.path}: state slot {era * store.sphr}")
    return era_file_name(store.network.config_name, era, head.short_root(era))


SPEC_FILE, GENESIS_FILE = "spec.json", "genesis.json"


def network_files(store: ChainStore) -> dict[str, bytes]:
    """The store's network as the files `era_tools.config` reads beside era files, laid out
    as in sample_eras/: `spec.json` (the `data` of /eth/v1/config/spec) and `genesis.json`
    (of /eth/v1/beacon/genesis; genesis_time from the network, else the store's oldest
    state)."""
    import json

    net = store.network
    gtime = net.genesis_time
    slots = sorted(store.state_slots())
    if gtime is None and slots:
        src = store.state_file_record(slots[0])
        if src is not None:
            prefix = _state_prefix_from_file(store, slots[0] // store.sphr, *src)
        else:
            prefix = framing.decompress_prefix(store.get_state_framed(slots[0]),
                                               layout.STATE_GENESIS_TIME.stop,
                                               where=f"{store.path}: state slot {slots[0]}")
        gtime = layout.u64(prefix, layout.STATE_GENESIS_TIME)
    genesis = {"genesis_validators_root": "0x" + net.genesis_validators_root.hex(),
               "genesis_fork_version": "0x" + net.genesis_fork_version.hex()}
    if gtime is not None:
        genesis = {"genesis_time": str(gtime), **genesis}
    return {SPEC_FILE: (json.dumps(net.to_spec_json(), indent=1) + "\n").encode(),
            GENESIS_FILE: (json.dumps(genesis, indent=1) + "\n").encode()}


def write_network_files(store: ChainStore, out_dir: str, fsync: bool = True) -> list[str]:
    """Write `network_files` into `out_dir` (tmp + rename), so commands on the exported
    directory need no network flags.  A config file already there that describes the store's
    network is kept; one that contradicts it is refused (StoreError).  Returns the paths
    written."""
    import json

    from .config import spec_mismatch
    from .era import fsync_dir

    net = store.network
    written = []
    for name, data in network_files(store).items():
        final = os.path.join(out_dir, name)
        try:
            with open(final, "rb") as f:
                have = f.read()
        except FileNotFoundError:
            have = None
        except OSError as exc:
            raise StoreError(f"{final}: cannot read: {exc.strerror}") from exc
        if have == data:
            continue
        if have is not None:
            try:
                doc = json.loads(have)
                doc = doc.get("data", doc)
                if name == SPEC_FILE:
                    diff = spec_mismatch(net, doc)
                    why = None if diff is None else f"{diff[0]} is {diff[2]}, not {diff[1]}"
                else:
                    got = str(doc.get("genesis_validators_root", "")).lower()
                    want = "0x" + net.genesis_validators_root.hex()
                    why = None if got == want else f"genesis_validators_root {got}, not {want}"
            except (ValueError, AttributeError) as exc:
                why = f"does not parse ({exc})"
            if why is None:
                continue  # the same network, written differently: keep it
            raise StoreError(f"{final}: another network's file is there ({why}, the store's "
                             f"network {net.config_name}); refusing to overwrite")
        tmp = os.path.join(out_dir, f".{name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                if fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, final)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise StoreError(f"{final}: cannot write: {exc.strerror}") from exc
        written.append(final)
    if written and fsync:
        fsync_dir(out_dir)
    return written


def _open_referenced(path: str, size: int):
    """Open a referenced era file, checking it still has its front-fill size."""
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise StoreError(f"{path}: referenced era file cannot be opened: {exc.strerror}") \
            from exc
    actual = os.fstat(f.fileno()).st_size
    if actual != size:
        f.close()
        raise StoreError(f"{path}: referenced era file changed size ({actual} bytes, "
                         f"{size} when front-filled)")
    return f


def _state_prefix_from_file(store: ChainStore, era: int, path: str, size: int,
                            offset: int) -> bytes:
    """The decompressed front of the referenced state record (block_roots, state_roots: what
    names the file), reading only the chunks that hold it when the framing allows."""
    need = state_prefix_size(store.sphr)
    where = f"{path}: state slot {era * store.sphr}"
    with _open_referenced(path, size) as f:
        rec = e2store.read_header(f, offset, size, path)
        if rec.type != e2store.COMPRESSED_BEACON_STATE:
            raise StoreError(f"{path}: offset {offset}: state slot {era * store.sphr} "
                             f"reference points at a {e2store.type_name(rec.type)} record")
        # snappy's worst case is 32 + n + n/6 bytes per 64 KiB chunk, plus 8 of chunk header
        guess = 10 + (need // 65536 + 2) * (8 + 32 + 65536 + 65536 // 6 + 1)
        if guess < rec.length:
            try:
                part = os.pread(f.fileno(), guess, rec.data_offset)
                prefix = framing.decompress_prefix(part, need, where=where,
                                                   base=rec.data_offset)
                if len(prefix) >= need:
                    return prefix
            except FormatError:
                pass  # smaller chunks than 64 KiB: read the whole record
        return framing.decompress_prefix(e2store.read_data(f, rec), need, where=where,
                                         base=rec.data_offset)


_RUN_BYTES = 64 << 20  # at most this much per copy_file_range run


def _copy_blocks_from_era_file(w: EraWriter, path: str, size: int, slots, offsets,
                               where: str):
    """Copy the block records at `offsets` of era file `path` into `w`, unchanged, in runs of
    adjacent records (one os.copy_file_range each).  Every record header is checked first
    (type CompressedSignedBeaconBlock, reserved bytes zero, inside the file), all at once with
    numpy over a read-only map of the file.  Yields (records, bytes) per run."""
    import mmap

    import numpy as np

    offsets = np.asarray(offsets, dtype=np.int64)
    slots = np.asarray(slots, dtype=np.int64)
    if not len(offsets):
        return
    with _open_referenced(path, size) as f:
        if offsets.min() < 0 or offsets.max() + HEADER_SIZE > size:
            raise StoreError(f"{where}: a block reference points outside {path} "
                             f"({size} bytes)")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            buf = np.frombuffer(mm, dtype=np.uint8)
            hdr = buf[offsets[:, None] + np.arange(HEADER_SIZE)]
            del buf
        types = hdr[:, 0].astype(np.uint16) | (hdr[:, 1].astype(np.uint16) << 8)
        lengths = hdr[:, 2:6].copy().view("<u4").ravel().astype(np.int64)
        ends = offsets + HEADER_SIZE + lengths
        want = int.from_bytes(e2store.COMPRESSED_SIGNED_BEACON_BLOCK, "little")
        bad = np.flatnonzero((types != want) | (hdr[:, 6] != 0) | (hdr[:, 7] != 0) |
                             (ends > size))
        if len(bad):
            i = int(bad[0])
            raise StoreError(f"{path}: offset {int(offsets[i])}: the reference for the block "
                             f"at slot {int(slots[i])} does not point at a whole "
                             "CompressedSignedBeaconBlock record")
        # runs of adjacent records, each at most _RUN_BYTES (unless one record is bigger)
        adjacent = (offsets[1:] == ends[:-1]).tolist() + [False]
        ends_l, offs_l = ends.tolist(), offsets.tolist()
        i, n = 0, len(offs_l)
        while i < n:
            j, run_start = i, offs_l[i]
            while adjacent[j] and ends_l[j + 1] - run_start <= _RUN_BYTES:
                j += 1
            length = ends_l[j] - run_start
            w.copy_block_records(slots[i:j + 1], offsets[i:j + 1] - run_start, f.fileno(),
                                 run_start, length)
            yield j + 1 - i, length
            i = j + 1


def _write_blocks_from_index(store: ChainStore, w: EraWriter, start: int, end: int,
                             res: ExportResult, records: int) -> int:
    """Write the blocks of [start, end] as the index names them (LevelDB values or
    references), framed bytes unchanged.  Returns the running record count."""
    pending = 0  # bytes written since the last writeback hint
    for k, root in store.iter_index(start, end):
        if not root:
            continue
        framed = store.get_block_framed(bytes(root))
        if framed is None:
            raise StoreError(f"{store.path}: block {root.hex()} is indexed but not stored")
        w.add_block(schema.slot_of_key(k), framed=framed)
        res.bytes_written += len(framed) + 8
        pending += len(framed) + 8
        if pending >= _RUN_BYTES:
            w.start_writeback()
            pending = 0
        records += 1
        if _KILL_AFTER_RECORDS and records >= _KILL_AFTER_RECORDS:
            os.kill(os.getpid(), signal.SIGKILL)
    return records


def _intact(store: ChainStore, era: int, path: str) -> bool:
    """A cheap structure check of an existing era file before it is kept: both indices, every
    record header, the state's fixed front, and the same block slots as the store indexes.
    (Its name already matches the store's state.)"""
    from .era import EraReader

    try:
        with EraReader(path) as r:
            for _rec in r.records():
                pass
            r.state_head(store.sphr)
            if era == 0:
                return r.era == 0
            start, end = (era - 1) * store.sphr, era * store.sphr - 1
            want = [schema.slot_of_key(k) for k, v in store.iter_index(start, end) if v]
            return r.era == era and r.block_slots() == want
    except FormatError:
        return False


def export(store: ChainStore, out_dir, from_era: int | None = None, to_era: int | None = None,
           progress: Callable[[int], None] | None = None, fsync: bool = True,
           on_written: Callable[[str], None] | None = None) -> ExportResult:
    """Write eras [from_era, to_era] (default: every complete era) into `out_dir`.

    With an explicit range, every era in it must be complete: the incomplete ones are listed in
    `result.missing` as runs (the caller turns that into a non-zero exit).  Without a range,
    eras that are not complete are silently left out.  Only the eras whose state the store
    holds are visited, so the cost follows the store, not the range.  A file already there
    under the right name is kept when its structure agrees with the store (`_intact`), else
    written anew (`result.replaced`).  `out_dir` may be an s3://bucket/prefix URL
    (`export_to_bucket`).  `on_written(path)` is called once each new file has its name."""
    out_dir = os.fspath(out_dir)
    if out_dir.startswith("s3://"):
        return export_to_bucket(store, out_dir, from_era, to_era, progress)
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
    res.network_files = write_network_files(store, out_dir, fsync=fsync)
    global _records_before
    records = _records_before
    sphr = store.sphr
    held = [s // sphr for s in store.state_slots()
            if s % sphr == 0 and lo <= s // sphr <= hi]
    if explicit:  # eras of the range without a state: runs, each named once
        for a, b in zip([lo - 1] + held, held + [hi + 1]):
            if b - a == 2:
                res.missing.append((a + 1, a + 1, era_status(store, a + 1)))
            elif b - a > 2:
                res.missing.append((a + 1, b - 1, f"no states at slots {(a + 1) * sphr}.."
                                                  f"{(b - 1) * sphr} (no such eras stored)"))
    for era in held:
        why = era_status(store, era)
        if why is not None:
            if explicit:
                res.missing.append((era, era, why))
            if progress:
                progress(1)
            continue
        state_src = store.state_file_record(era * store.sphr)
        if state_src is not None:  # a reference: read only the front, copy the record later
            state_framed = None
            state_prefix = _state_prefix_from_file(store, era, *state_src)
            name = _name_from_prefix(store, era, state_prefix)
        else:
            state_framed = store.get_state_framed(era * store.sphr)
            name = expected_name(store, era, state_framed)
        final = os.path.join(out_dir, name)
        if os.path.exists(final):
            if _intact(store, era, final):
                res.skipped.append(final)
                if progress:
                    progress(1)
                continue
            os.unlink(final)  # truncated or damaged: written anew below (tmp + rename)
            res.replaced.append(final)
        others = glob.glob(os.path.join(glob.escape(out_dir),
                                        f"{glob.escape(store.network.config_name)}-{era:05d}-*.era"))
        if others:
            raise StoreError(f"{others[0]}: a different file for era {era} exists "
                             f"(the store's is {name}); refusing to overwrite")
        w = EraWriter(out_dir, store.network.config_name, era, store.sphr, fsync=fsync)
        try:
            if era > 0:
                start, end = (era - 1) * store.sphr, era * store.sphr - 1
                src = store.era_file_blocks(start, end)
                if src is not None:  # front-filled by reference: copy the records through
                    for n, nbytes in _copy_blocks_from_era_file(w, *src, store.path):
                        res.bytes_written += nbytes
                        records += n
                        if _KILL_AFTER_RECORDS and records >= _KILL_AFTER_RECORDS:
                            os.kill(os.getpid(), signal.SIGKILL)
                else:
                    records = _write_blocks_from_index(store, w, start, end, res, records)
            if state_framed is None:
                path, _size, off = state_src
                with _open_referenced(path, _size) as f:
                    res.bytes_written += w.copy_state_record(f.fileno(), off, state_prefix)
            else:
                w.set_state(framed=state_framed)
                res.bytes_written += len(state_framed) + 8
            path = w.finish()
        except OSError as exc:
            w.abort()
            if exc.filename is None:  # a write into the .tmp (a full disk): say which file
                raise OSError(exc.errno, exc.strerror, final) from exc
            raise
        except BaseException:
            w.abort()
            raise
        res.written.append(path)
        if on_written is not None:
            on_written(path)
        _records_before = records
        if progress:
            progress(1)
    return res


def export_to_bucket(store: ChainStore, url: str, from_era: int | None = None,
                     to_era: int | None = None,
                     progress: Callable[[int], None] | None = None) -> ExportResult:
    """`export` into an s3://bucket/prefix: each era file is written in a local staging
    directory, uploaded (objstore.put_file: the object appears whole or not at all) and
    deleted there, one at a time; an object already holding the same bytes (size and sha256)
    is kept (`skipped`), so a killed run resumes.  spec.json and genesis.json follow, and
    checksums.txt (sha256 of every .era object under the prefix) comes last, after the files
    it lists.  Paths in the result are URLs."""
    import hashlib
    import shutil
    import tempfile

    from . import objstore

    url = url.rstrip("/")
    staging = os.path.join(tempfile.gettempdir(), "era-export-" +
                           hashlib.sha256(url.encode()).hexdigest()[:16])
    shutil.rmtree(staging, ignore_errors=True)  # a killed run's leftovers
    os.makedirs(staging)
    sums: dict[str, str] = {}
    uploaded: set[str] = set()
    present = [o.name for o in objstore.list_objects(url)]

    def upload(path: str) -> None:
        name = os.path.basename(path)
        parsed = parse_era_file_name(name)
        if parsed is not None:  # as in a directory: another file for this era is refused
            era_prefix = f"{parsed[0]}-{parsed[1]:05d}-"
            other = next((n for n in present if n.startswith(era_prefix) and
                          n.endswith(".era") and n != name), None)
            if other is not None:
                raise StoreError(f"{objstore.join(url, other)}: a different file for era "
                                 f"{parsed[1]} exists (the store's is {name}); refusing to "
                                 "overwrite")
        digest = sha256_file(path)
        if objstore.put_file(path, objstore.join(url, name), sha256=digest):
            uploaded.add(name)
        sums[name] = digest
        os.unlink(path)

    try:
        res = export(store, staging, from_era, to_era, progress, fsync=False,
                     on_written=upload)
        for path in res.network_files:
            if os.path.exists(path):
                upload(path)
        res.network_files = [objstore.join(url, os.path.basename(p))
                             for p in res.network_files]
        written = [os.path.basename(p) for p in res.written]
        res.written = [objstore.join(url, n) for n in written if n in uploaded]
        res.skipped = [objstore.join(url, n) for n in written if n not in uploaded]
        res.replaced = []
        # checksums.txt last: every .era object under the prefix, ours and any older ones
        objstore.write_checksums(url, sums)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return res
