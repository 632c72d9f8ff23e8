"""LevelDB through plyvel: the only module that imports plyvel.

`KV` is a thin key-value handle: get, prefix iteration, atomic batches.  LevelDB allows one
process per database (a LOCK file).  A read-only open of a database that another process holds
opens a *snapshot copy* instead: immutable table files (*.ldb/*.sst) are hard-linked into a
temporary sibling directory, the small mutable files (CURRENT, MANIFEST-*, *.log) are copied,
and the copy is opened.  A write batch is one log record, and LevelDB drops a torn last record
on recovery, so a copy taken while the writer appends sees a prefix of its batches: a
consistent store.  If the writer deletes a file while we copy (a compaction), we retry.
Only tables older than every live log are hard-linked (see _copy_leveldb): the snapshot's own
LevelDB must never create a file under a number the writer uses, or it would truncate the
writer's file through the shared inode.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from typing import Iterator

import plyvel

from ..errors import StoreError

# Hook for crash tests: ERA_TOOLS_KILL_AFTER_BATCHES=N makes the process SIGKILL itself right
# after its Nth committed write batch (counted per process).
_KILL_AFTER = int(os.environ.get("ERA_TOOLS_KILL_AFTER_BATCHES", "0") or 0)
_batches_committed = 0


def _after_commit() -> None:
    global _batches_committed
    _batches_committed += 1
    if _KILL_AFTER and _batches_committed >= _KILL_AFTER:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def _is_lock_error(exc: Exception) -> bool:
    msg = str(exc).lower()
    return "lock" in msg and "permission denied" not in msg


def _is_permission_error(exc: Exception) -> bool:
    return "permission denied" in str(exc).lower()


def _why(exc) -> str:
    """plyvel's message: its argument is LevelDB's status as bytes."""
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


class KV:
    """A LevelDB database (or a read-only snapshot copy of one)."""

    def __init__(self, db, path: str, readonly: bool, snapshot_dir: str | None = None):
        self._db = db
        self.path = path
        self.readonly = readonly
        self.snapshot_dir = snapshot_dir

    # -- opening ---------------------------------------------------------------------------
    @staticmethod
    def open(path: str, create: bool = True, readonly: bool = False,
             snapshot_retries: int = 20) -> "KV":
        path = os.fspath(path)
        if readonly and not os.path.exists(os.path.join(path, "CURRENT")):
            raise StoreError(f"{path}: no chain store here")
        if create and not readonly:
            try:  # the store's own directory too: LevelDB ignores a failed mkdir, then says
                # "LOCK: No such file" (a read-only parent directory)
                os.makedirs(path, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{path}: cannot create the chain store's directory: "
                                 f"{exc.strerror}") from exc
        if not readonly and os.path.isdir(path) and not os.access(path, os.W_OK):
            raise StoreError(f"{path}: permission denied: the chain store's directory is not "
                             "writable")
        try:
            # compression=None: blocks and states arrive snappy-framed and roots are random,
            # so LevelDB's own snappy pass only burns CPU on every write and compaction.
            db = plyvel.DB(path, create_if_missing=create and not readonly,
                           write_buffer_size=32 * 1024 * 1024, max_open_files=500,
                           block_size=64 * 1024, lru_cache_size=64 * 1024 * 1024,
                           compression=None)
            return KV(db, path, readonly)
        except plyvel.IOError as exc:
            if _is_lock_error(exc) or (readonly and _is_permission_error(exc)):
                if readonly:  # held by a writer, or a directory we may not write: a copy
                    return KV._open_snapshot(path, snapshot_retries)
                raise StoreError(f"{path}: the chain store is in use by another process "
                                 "(LevelDB lock held); read-only commands can run beside it"
                                 ) from exc
            if _is_permission_error(exc):
                raise StoreError(f"{path}: permission denied: cannot open the chain store "
                                 f"for writing ({_why(exc)})") from exc
            raise StoreError(f"{path}: cannot open the chain store: {_why(exc)}") from exc
        except plyvel.Error as exc:
            raise StoreError(f"{path}: cannot open the chain store: {_why(exc)}") from exc

    @staticmethod
    def _open_snapshot(path: str, retries: int) -> "KV":
        parent = os.path.dirname(os.path.abspath(path))
        last_exc: Exception | None = None
        if not os.access(parent, os.W_OK):
            parent = None  # a read-only place: the copy goes to the system's temp directory
        for attempt in range(retries):
            snap = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.snapshot-", dir=parent)
            try:
                if _copy_leveldb(path, snap):
                    db = plyvel.DB(snap, create_if_missing=False, paranoid_checks=False)
                    return KV(db, path, True, snapshot_dir=snap)
            except (OSError, plyvel.Error) as exc:
                last_exc = exc
            shutil.rmtree(snap, ignore_errors=True)
            time.sleep(min(0.01 * 2 ** attempt, 0.5))
        raise StoreError(f"{path}: could not take a consistent read-only snapshot of the store "
                         f"while another process writes it ({retries} tries): {last_exc}")

    # -- access ----------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        return self._db.get(key)

    def iterate(self, prefix: bytes, start: bytes | None = None, stop: bytes | None = None,
                reverse: bool = False, include_value: bool = True) -> Iterator:
        """Keys (and values) with `prefix`, optionally within [start, stop) (full keys)."""
        if start is None and stop is None:
            return self._db.iterator(prefix=prefix, reverse=reverse,
                                     include_value=include_value)
        if reverse and start is not None and start != prefix:
            # plyvel 1.5.1 yields nothing for a reverse range whose only key equals `start`:
            # iterate down from `stop` over the whole prefix and stop below `start` ourselves.
            it = self._db.iterator(start=prefix, stop=stop or _prefix_end(prefix),
                                   reverse=True, include_value=include_value)
            if include_value:
                return itertools.takewhile(lambda kv: kv[0] >= start, it)
            return itertools.takewhile(lambda k: k >= start, it)
        return self._db.iterator(start=start or prefix, stop=stop or _prefix_end(prefix),
                                 reverse=reverse, include_value=include_value)

    def items(self) -> Iterator:
        """Every (key, value) in key order (for comparisons and dumps)."""
        return self._db.iterator()

    def write(self, puts: dict | list, deletes=()) -> None:
        """One atomic, synced write batch."""
        if self.readonly:
            raise StoreError(f"{self.path}: the store is open read-only")
        items = puts.items() if isinstance(puts, dict) else puts
        try:
            with self._db.write_batch(sync=True) as wb:
                for k in deletes:
                    wb.delete(k)
                for k, v in items:
                    wb.put(k, v)
        except plyvel.Error as exc:  # its text comes as bytes: b'IO error: ...'
            why = exc.args[0] if exc.args else exc
            why = why.decode("utf-8", "replace") if isinstance(why, bytes) else str(why)
            raise StoreError(f"{self.path}: write failed: {why}") from exc
        _after_commit()

    def approximate_size(self, start: bytes, stop: bytes) -> int:
        return self._db.approximate_size(start, stop)

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()
        if self.snapshot_dir:
            shutil.rmtree(self.snapshot_dir, ignore_errors=True)
            self.snapshot_dir = None


def _prefix_end(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


def _file_number(name: str) -> int | None:
    stem = name.split(".")[0]
    return int(stem) if stem.isdigit() else None


def _listing(path: str) -> dict:
    out = {}
    for n in os.listdir(path):
        try:
            out[n] = os.stat(os.path.join(path, n)).st_size
        except FileNotFoundError:
            pass
    return out


def _copy_leveldb(src: str, dst: str) -> bool:
    """Copy a live LevelDB directory.  True when no file we needed vanished meanwhile."""
    with open(os.path.join(src, "CURRENT"), "rb") as f:
        current = f.read()
    before = _listing(src)
    names = sorted(before, key=lambda n: (not n.startswith("MANIFEST"), n))
    # Only tables numbered below every live log are shared by hard link: the copied MANIFEST
    # has recorded a next_file_number above them, so the snapshot's own LevelDB never creates
    # a file under their numbers (which would truncate the writer's inode).  Newer tables may
    # still be in the making or unrecorded: those are copied.
    logs = [_file_number(n) for n in before if n.endswith(".log")]
    link_below = min((x for x in logs if x is not None), default=0)
    for n in names:
        if n in ("LOCK", "LOG", "LOG.old") or n.startswith("."):
            continue
        s, d = os.path.join(src, n), os.path.join(dst, n)
        if os.path.isdir(s):
            continue  # not LevelDB's (the chain store's state files live in states/)
        num = _file_number(n)
        if n.endswith((".ldb", ".sst")) and num is not None and num < link_below:
            try:
                os.link(s, d)
            except FileNotFoundError:
                return False
            except OSError:
                try:
                    shutil.copyfile(s, d)
                except FileNotFoundError:
                    return False
        else:
            try:
                shutil.copyfile(s, d)
            except FileNotFoundError:
                return False
    with open(os.path.join(dst, "CURRENT"), "wb") as f:
        f.write(current)
    with open(os.path.join(src, "CURRENT"), "rb") as f:
        if f.read() != current:
            return False
    after = _listing(src)
    needed = [n for n in before if n not in ("LOCK", "LOG", "LOG.old")]
    return all(n in after for n in needed)
