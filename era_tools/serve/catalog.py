"""What an `era serve` directory holds: era files, their metadata, checksums, and block lookups.

era1 files (execution history) are served as plain files: listed, checksummed and sent, but
not opened or checked here.

The catalog is the only thing that touches ERA_DIR.  ERA_DIR may be an s3://bucket/prefix
(objstore): the objects directly under it are listed instead of files, read with ranged GETs,
and keyed by (size, last-modified) like files by (size, mtime).  Only regular files directly inside the
directory (symlinks allowed when they resolve inside it) are ever known, so a request can never
name anything else: the HTTP layer looks names up here and serves nothing it did not find.

A file that does not open as an era file (bad indices, a state whose slot does not match, a
name that does not match the state) stays in the catalog with an `error` and is never used
for blocks or served.  Metadata is re-read only when a file's (size, mtime) changes; the same
key invalidates its cached sha256.

Pure Python over the format layer; no aiohttp here, so it is usable from threads.
"""

from __future__ import annotations

import hashlib
import os
import threading
from types import SimpleNamespace
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from .. import e2store, framing
from ..config import Network
from ..e2store import COMPRESSED_SIGNED_BEACON_BLOCK, HEADER_SIZE
from ..era import EraReader, parse_era_file_name
from ..era1 import parse_era1_file_name
from ..errors import EraToolsError, FormatError, hex0x

# Small files beside the eras that a mirror wants too (network config).
EXTRA_FILES = ("spec.json", "genesis.json", "config.yaml")
HASH_CHUNK = 4 * 1024 * 1024
# One block read covers header + data up to the next record start; larger spans take the
# reader's two-read path.
BLOCK_READ_CAP = 16 * 1024 * 1024


@dataclass
class EraEntry:
    name: str
    path: str
    size: int
    mtime_ns: int
    era: int | None = None
    first_slot: int | None = None   # first slot of the block range (None for era 0)
    last_slot: int | None = None    # last slot of the block range
    state_slot: int | None = None
    blocks: int = 0
    forks: list = field(default_factory=list)
    error: str | None = None
    sha256: str | None = None       # hex, filled by the checksum pass

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def key(self) -> tuple[int, int]:
        return (self.size, self.mtime_ns)

    def to_json(self) -> dict:
        d = {"name": self.name, "era": self.era, "size": self.size, "sha256": self.sha256,
             "first_slot": self.first_slot, "last_slot": self.last_slot,
             "state_slot": self.state_slot, "blocks": self.blocks, "forks": self.forks}
        if self.error:
            d["error"] = self.error
        return d


@dataclass
class ExtraEntry:
    name: str
    path: str
    size: int
    mtime_ns: int


@dataclass
class Era1Entry:
    """An era1 file, served as a plain file (its epoch from the name, None if it has none)."""

    name: str
    path: str
    size: int
    mtime_ns: int
    epoch: int | None = None
    sha256: str | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.size, self.mtime_ns)

    def to_json(self) -> dict:
        return {"name": self.name, "kind": "era1", "epoch": self.epoch, "size": self.size,
                "sha256": self.sha256}


class _Open:
    """An open reader plus its lazily read state head (block_roots) and, per block slot, where
    the next record starts (so one block is one pread: header and data together)."""

    def __init__(self, reader: EraReader):
        self.reader = reader
        self.head = None
        self.lock = threading.Lock()
        self.pread = _preader(reader)
        self.data_end = reader.data_end
        bi = reader.block_index
        if bi is not None:
            pos = bi.positions
            starts = np.unique(np.concatenate([
                pos[pos > 0], reader.state_index.positions[:1],
                np.array([reader.data_end], dtype=np.int64)]))
            nxt = starts[np.minimum(np.searchsorted(starts, pos, side="right"),
                                    len(starts) - 1)]
            # (position, span to the next record start) per slot, as Python ints
            self.spans = list(zip(pos.tolist(), (nxt - pos).tolist()))
            self.start_slot = bi.start_slot
        else:
            self.spans = []
            self.start_slot = 0

    def block_framed(self, slot: int) -> bytes | None:
        """The framed bytes of the block at `slot` (None: empty slot), read with one pread of
        the header and data together; the header is checked as EraReader checks it."""
        i = slot - self.start_slot
        if not 0 <= i < len(self.spans):
            raise KeyError(slot)
        pos, span = self.spans[i]
        if pos == 0:
            return None
        r = self.reader
        if span <= HEADER_SIZE or span > BLOCK_READ_CAP:
            return r.block_framed(slot)
        buf = self.pread(span, pos)
        if len(buf) < HEADER_SIZE:
            return r.block_framed(slot)  # the file shrank: let the reader say how
        rec = e2store.decode_header(buf[:HEADER_SIZE], pos, r.size, r.path)
        if rec.type != COMPRESSED_SIGNED_BEACON_BLOCK or rec.end > self.data_end or \
                HEADER_SIZE + rec.length > len(buf):
            return r.block_framed(slot)  # unusual layout or a bad record: the reader's path
        if HEADER_SIZE + rec.length == len(buf):
            return buf[HEADER_SIZE:]
        return buf[HEADER_SIZE:HEADER_SIZE + rec.length]

    def state_head(self):
        with self.lock:
            if self.head is None:
                self.head = self.reader.state_head()
            return self.head


def _preader(reader: EraReader):
    """pread(n, offset) on the reader's file: os.pread on a file descriptor, the RangeFile's
    own (thread-safe ranged GETs) for an object."""
    own = getattr(reader._f, "pread", None)
    if own is not None:
        return own
    fd = reader._f.fileno()
    return lambda n, off: os.pread(fd, n, off)


def _inside(root_real: str, path: str) -> bool:
    real = os.path.realpath(path)
    return os.path.commonpath([root_real, real]) == root_real and real != root_real


class Catalog:
    def __init__(self, era_dir: str | os.PathLike, network: Network | None,
                 max_open: int = 64, share_dir: str | None = None):
        self.era_dir = os.fspath(era_dir)
        self.remote = self.era_dir.startswith("s3://")
        if self.remote:
            self.era_dir = self.era_dir.rstrip("/")
            self.root_real = self.era_dir
        else:
            self.root_real = os.path.realpath(self.era_dir)
            if not os.path.isdir(self.root_real):
                raise FormatError(f"{self.era_dir}: not a directory")
        self.network = network
        self.max_open = max_open
        self.entries: dict[str, EraEntry] = {}   # every *.era name found (ok or not)
        self.extras: dict[str, ExtraEntry] = {}
        self.era1: dict[str, Era1Entry] = {}     # *.era1 files, served as they are
        self.by_era: dict[int, EraEntry] = {}    # usable files only
        self.skipped: list[str] = []             # names refused (symlinks out, not files)
        self._open: OrderedDict[str, _Open] = OrderedDict()
        self._lock = threading.RLock()
        self._hash_lock = threading.Lock()
        self._root_index = None                  # (sorted uint64 prefixes, slots) or None
        self.generation = 0                      # bumps whenever the set of files changes
        self.share_dir = share_dir               # checksums shared between worker processes

    # -- scanning --------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Rescan the directory; re-inspect new or changed files.  True if anything changed."""
        found: dict[str, os.stat_result] = {}
        extras: dict[str, os.stat_result] = {}
        era1: dict[str, os.stat_result] = {}
        skipped = []
        if self.remote:
            names, objects = self._list_bucket()
        else:
            objects = None
            try:
                names = sorted(os.listdir(self.era_dir))
            except OSError as exc:
                raise FormatError(f"{self.era_dir}: cannot list: {exc.strerror}") from exc
        for name in names:
            is_era = name.endswith(".era")
            if not (is_era or name in EXTRA_FILES or name.endswith(".era1")):
                continue
            if objects is not None:
                (found if is_era else era1 if name.endswith(".era1") else extras)[name] = \
                    objects[name]
                continue
            path = os.path.join(self.era_dir, name)
            if not _inside(self.root_real, path):
                skipped.append(name)
                continue
            try:
                st = os.stat(path)
            except OSError:
                skipped.append(name)
                continue
            if not os.path.isfile(path):
                skipped.append(name)
                continue
            (found if is_era else era1 if name.endswith(".era1") else extras)[name] = st
        changed = False
        with self._lock:
            for name in list(self.entries):
                if name not in found:
                    del self.entries[name]
                    self._close(name)
                    changed = True
            for name, st in found.items():
                old = self.entries.get(name)
                if old is not None and old.key == (st.st_size, st.st_mtime_ns):
                    continue
                self._close(name)
                self.entries[name] = self._inspect(name, st)
                changed = True
            self.extras = {n: ExtraEntry(n, self._path(n), st.st_size,
                                         st.st_mtime_ns) for n, st in extras.items()}
            old1, self.era1 = self.era1, {}
            for n, st in era1.items():
                e = old1.get(n)
                if e is None or e.key != (st.st_size, st.st_mtime_ns):
                    parsed = parse_era1_file_name(n)
                    e = Era1Entry(n, self._path(n), st.st_size,
                                  st.st_mtime_ns, parsed[1] if parsed else None)
                self.era1[n] = e
            self.skipped = skipped
            if changed:
                self._rebuild()
        return changed

    def _path(self, name: str) -> str:
        return f"{self.era_dir}/{name}" if self.remote else os.path.join(self.era_dir, name)

    def _list_bucket(self):
        """(names, {name: stat-like (st_size, st_mtime_ns)}) of the objects under the prefix."""
        from .. import objstore

        objs = objstore.list_objects(self.era_dir)
        return ([o.name for o in objs],
                {o.name: SimpleNamespace(st_size=o.size, st_mtime_ns=o.mtime_ns) for o in objs})

    def _inspect(self, name: str, st: os.stat_result) -> EraEntry:
        path = self._path(name)
        e = EraEntry(name, path, st.st_size, st.st_mtime_ns)
        parsed = parse_era_file_name(name)
        try:
            with EraReader(path) as r:
                e.era = r.era
                e.state_slot = r.state_slot
                e.first_slot, e.last_slot = r.start_slot, r.end_slot
                e.blocks = len(r.block_slots())
                net = self.network
                sphr = r.slots_per_historical_root or (
                    net.slots_per_historical_root if net else None)
                if net is not None and r.slots_per_historical_root not in (
                        None, net.slots_per_historical_root):
                    raise FormatError(f"{path}: {r.slots_per_historical_root} slots per era, the "
                                      f"network has {net.slots_per_historical_root}")
                head = r.state_head(sphr)
                if net is not None and net.genesis_validators_root and \
                        head.genesis_validators_root != net.genesis_validators_root:
                    raise FormatError(
                        f"{path}: genesis_validators_root {hex0x(head.genesis_validators_root)}, "
                        f"expected {hex0x(net.genesis_validators_root)}")
                if parsed is None:
                    raise FormatError(f"{path}: not an era file name (<config>-<era>-<root>.era)")
                expected = r.expected_name(parsed[0], head)
                if expected != name:
                    raise FormatError(f"{path}: name does not match its contents, expected "
                                      f"{expected}")
                if net is not None:
                    lo = e.first_slot if e.first_slot is not None else e.state_slot
                    names = []
                    for s in (lo, e.state_slot):
                        fn = net.fork_name_at_slot(s)
                        if fn not in names:
                            names.append(fn)
                    first_i = [f.name for f in net.forks].index(names[0])
                    last_i = [f.name for f in net.forks].index(names[-1])
                    e.forks = [f.name for f in net.forks[first_i:last_i + 1]]
        except EraToolsError as exc:
            e.error = str(exc)
        except (OSError, ValueError, KeyError, IndexError) as exc:
            e.error = f"{path}: {type(exc).__name__}: {exc}"
        return e

    def _rebuild(self) -> None:
        by_era: dict[int, EraEntry] = {}
        for e in self.entries.values():
            if e.error:
                continue
            if e.era in by_era:
                e.error = f"{e.path}: another file holds era {e.era} ({by_era[e.era].name})"
                continue
            by_era[e.era] = e
        self.by_era = dict(sorted(by_era.items()))
        self._root_index = None
        self.generation += 1

    # -- open readers (LRU) ----------------------------------------------------------------
    def _close(self, name: str) -> None:
        o = self._open.pop(name, None)
        if o is not None:
            o.reader.close()

    def opened(self, e: EraEntry) -> _Open:
        with self._lock:
            o = self._open.get(e.name)
            if o is not None:
                self._open.move_to_end(e.name)
                return o
            o = _Open(EraReader(e.path))
            self._open[e.name] = o
            while len(self._open) > self.max_open:
                _, old = self._open.popitem(last=False)
                old.reader.close()
            return o

    def close(self) -> None:
        with self._lock:
            for name in list(self._open):
                self._close(name)

    # -- slot lookups ----------------------------------------------------------------------
    @property
    def sphr(self) -> int | None:
        if self.network is not None:
            return self.network.slots_per_historical_root
        for e in self.by_era.values():
            if e.first_slot is not None:
                return e.state_slot - e.first_slot
        return None

    def entry_for_block_slot(self, slot: int) -> EraEntry | None:
        sphr = self.sphr
        if not sphr:
            return None
        return self.by_era.get(slot // sphr + 1)

    def entry_for_state_slot(self, slot: int) -> EraEntry | None:
        sphr = self.sphr
        if not sphr or slot % sphr:
            return None
        return self.by_era.get(slot // sphr)

    def latest(self) -> EraEntry | None:
        return next(reversed(self.by_era.values()), None) if self.by_era else None

    def block_root(self, slot: int) -> bytes | None:
        """Root of the block at `slot` (None: empty slot or not covered), from block_roots."""
        e = self.entry_for_block_slot(slot)
        if e is None:
            return None
        o = self.opened(e)
        if o.reader.block_index.position(slot) == 0:
            return None
        return o.state_head().block_root_at(slot)

    def slot_of_root(self, root: bytes) -> int | None:
        """Slot of the block with this root in any usable era file (index built lazily)."""
        with self._lock:
            idx = self._root_index
            if idx is None:
                idx = self._root_index = self._build_root_index()
        keys, slots = idx
        k = np.frombuffer(root[:8], dtype=">u8")[0]
        i = int(np.searchsorted(keys, k))
        while i < len(keys) and keys[i] == k:
            slot = int(slots[i])
            if self.block_root(slot) == root:
                return slot
            i += 1
        return None

    def _build_root_index(self):
        keys, slots = [], []
        for e in list(self.by_era.values()):
            if e.first_slot is None:
                continue
            o = self.opened(e)
            pos = o.reader.block_index.positions
            nz = np.flatnonzero(pos)
            roots = o.state_head().block_roots_array()[nz]
            keys.append(roots[:, :8].copy().view(">u8").reshape(-1))
            slots.append(nz.astype(np.uint64) + e.first_slot)
        if not keys:
            return np.zeros(0, dtype=">u8"), np.zeros(0, dtype=np.uint64)
        k = np.concatenate(keys).astype(np.uint64)
        s = np.concatenate(slots)
        order = np.argsort(k, kind="stable")
        return k[order], s[order]

    def framed_blocks(self, e: EraEntry, first: int, last: int, max_span: int = 32 << 20):
        """Yield (slot, framed bytes view) for the blocks in [first, last] of one era file,
        reading each contiguous run of records with one pread of at most `max_span` bytes."""
        o = self.opened(e)
        r = o.reader
        bi = r.block_index
        lo = max(first, bi.start_slot)
        hi = min(last, r.state_slot - 1)
        if hi < lo:
            return
        pos = bi.positions[lo - bi.start_slot:hi - bi.start_slot + 1]
        nz = np.flatnonzero(pos)
        i = 0
        pread = o.pread
        while i < len(nz):
            start = int(pos[nz[i]])
            # take slots while the span stays under max_span (always at least one)
            j = i + 1
            while j < len(nz) and int(pos[nz[j]]) - start < max_span:
                j += 1
            # the span must also include the last record's data: find its end via its header
            last_pos = int(pos[nz[j - 1]])
            hdr = e2store.read_header(r._f, last_pos, r.size, r.path)
            end = hdr.end
            if end > r.data_end:
                raise FormatError(f"{r.path}: offset {last_pos}: block record runs into the "
                                  f"index at {r.data_end}")
            buf = pread(end - start, start)
            if len(buf) != end - start:
                raise FormatError(f"{r.path}: offset {start}: short read")
            mv = memoryview(buf)
            for k in range(i, j):
                p = int(pos[nz[k]])
                slot = lo + int(nz[k])
                rel = p - start
                if rel + HEADER_SIZE > len(buf):
                    raise FormatError(f"{r.path}: offset {p}: slot {slot} record outside data")
                rec = e2store.decode_header(mv[rel:rel + HEADER_SIZE], p, r.data_end, r.path)
                if rec.type != COMPRESSED_SIGNED_BEACON_BLOCK:
                    raise FormatError(f"{r.path}: offset {p}: slot {slot} points at a "
                                      f"{e2store.type_name(rec.type)} record")
                yield slot, mv[rel + HEADER_SIZE:rel + HEADER_SIZE + rec.length]
            i = j

    # -- checksums -------------------------------------------------------------------------
    def checksums(self, names=None) -> dict[str, str]:
        """sha256 hex of every era and era1 file (or those named), computing only what is
        missing or changed since last time.  Thread-safe; one pass at a time."""
        with self._hash_lock:
            with self._lock:
                todo = [e for e in [*self.entries.values(), *self.era1.values()]
                        if (names is None or e.name in names)]
            out = {}
            for e in todo:
                if e.sha256 is None:
                    digest = (sha256_file(e.path, e.key) if self.share_dir is None else
                              shared_sha256(self.share_dir, e.name, e.path, e.key))
                    with self._lock:
                        cur = self.entries.get(e.name) or self.era1.get(e.name)
                        if cur is e and digest is not None:
                            e.sha256 = digest
                if e.sha256:
                    out[e.name] = e.sha256
            return out


def sha256_file(path: str, key: tuple[int, int] | None = None) -> str | None:
    """Hex sha256 of a file; None if it changed (size/mtime) while being hashed.  For an
    s3:// object: the sha256 era_tools recorded when it uploaded that version, else the
    object hashed as it streams."""
    if path.startswith("s3://"):
        return _sha256_object(path, key)
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while True:
                chunk = f.read(HASH_CHUNK)
                if not chunk:
                    break
                h.update(chunk)
            st = os.fstat(f.fileno())
    except OSError:
        return None
    if key is not None and (st.st_size, st.st_mtime_ns) != key:
        return None
    return h.hexdigest()


def _sha256_object(url: str, key: tuple[int, int] | None) -> str | None:
    from .. import objstore
    from ..errors import EraToolsError

    try:
        info = objstore.head(url)
        if info is None or (key is not None and info.key != key):
            return None
        digest = objstore.stored_sha256(url)
        if digest is not None:
            return digest
        h = hashlib.sha256()
        n = 0
        for piece in objstore.iter_chunks(url, HASH_CHUNK):
            h.update(piece)
            n += len(piece)
        return h.hexdigest() if n == info.size else None
    except EraToolsError:
        return None


def shared_sha256(share_dir: str, name: str, path: str, key: tuple[int, int]) -> str | None:
    """sha256_file through a cache directory shared by several processes: the first to ask
    for a (name, size, mtime) computes it under an exclusive lock and leaves the hex there;
    the others wait for that lock and read it instead of hashing the file again."""
    import fcntl

    cached = os.path.join(share_dir, f"sha256-{name}-{key[0]}-{key[1]}")

    def read():
        try:
            with open(cached) as f:
                text = f.read().strip()
            return text if len(text) == 64 else None
        except OSError:
            return None

    got = read()
    if got is not None:
        return got
    try:
        lock = open(os.path.join(share_dir, f"sha256-{name}.lock"), "a")
    except OSError:
        return sha256_file(path, key)
    with lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        got = read()
        if got is not None:
            return got
        digest = sha256_file(path, key)
        if digest is not None:
            tmp = f"{cached}.{os.getpid()}.tmp"
            try:
                with open(tmp, "w") as f:
                    f.write(digest)
                os.replace(tmp, cached)
            except OSError:
                pass
        return digest


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def uncompressed_length(framed, where: str) -> int:
    return framing.uncompressed_length(framed, where)
