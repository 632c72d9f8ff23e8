"""Writing new files without going through the page cache: the bottom layer, beside e2store.

`DirectFile` appends to a new file with O_DIRECT where the file system takes it: the bytes
are gathered in a reused page-aligned buffer and written from there, straight to the device.
A buffered write instead copies every byte into freshly allocated page-cache pages, which the
fsync that follows then writes out anyway; on the virtual machines this runs on, each fresh
page costs a fault in the hypervisor too (BENCHMARKS.md: 0.7-2.1 s of system CPU per 544 MB
written and fsync'ed, against 0.02 s with O_DIRECT).  Where O_DIRECT is refused (EINVAL at
open or at a write), the file falls back to plain writes, with the same result.

Knows nothing of record formats, stores or networks: bytes in, a file out.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import threading

PAGE = mmap.PAGESIZE
BUFFER_SIZE = 4 << 20  # bytes gathered per O_DIRECT write (a multiple of PAGE)
_KEEP_BUFFERS = 4      # idle buffers kept for reuse (their pages stay mapped)

_free_buffers: list[mmap.mmap] = []
_lock = threading.Lock()


def _take_buffer() -> mmap.mmap:
    with _lock:
        if _free_buffers:
            return _free_buffers.pop()
    return mmap.mmap(-1, BUFFER_SIZE)  # anonymous: page-aligned, as O_DIRECT wants


def _give_buffer(buf: mmap.mmap) -> None:
    with _lock:
        if len(_free_buffers) < _KEEP_BUFFERS:
            _free_buffers.append(buf)
            return
    try:
        buf.close()
    except BufferError:  # a view of it is still alive: let the collector unmap it
        pass


class DirectFile:
    """A new file (created or truncated) written front to back: `write`, then `close` (pads
    the last O_DIRECT page, truncates to the true length, fsyncs) or `abort` (removes it).
    `direct=False` asks for plain buffered writes from the start."""

    def __init__(self, path: str | os.PathLike, direct: bool = True):
        self.path = os.fspath(path)
        self.size = 0       # bytes given to write()
        self._written = 0   # bytes in the file so far (a multiple of PAGE while direct)
        self._fill = 0      # bytes waiting in the buffer
        self._buf: mmap.mmap | None = None
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
        self.direct = False
        self._fd = -1
        if direct and hasattr(os, "O_DIRECT"):
            try:
                self._fd = os.open(self.path, flags | os.O_DIRECT, 0o644)
                self.direct = True
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
        if self._fd < 0:
            self._fd = os.open(self.path, flags, 0o644)
        if self.direct:
            self._buf = _take_buffer()

    def write(self, data) -> int:
        with memoryview(data) as mv:
            mv = mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv
            n = len(mv)
            off = 0
            while off < n:
                if not self.direct:
                    self._pwrite_all(mv[off:])
                    break
                k = min(n - off, BUFFER_SIZE - self._fill)
                self._buf[self._fill:self._fill + k] = mv[off:off + k]
                self._fill += k
                off += k
                if self._fill == BUFFER_SIZE:
                    self._flush(BUFFER_SIZE)
        self.size += n
        return n

    def write_parts(self, parts) -> list[int]:
        """`write` each of `parts` in turn; their offsets in the file.  One call for a file
        of many small records (a block file: two parts per block), half the CPU of a
        `write` per part: bytes that fit the buffer are copied straight into it."""
        offsets = []
        for data in parts:
            offsets.append(self.size)
            if self.direct and type(data) in (bytes, bytearray):
                n = len(data)
                fill = self._fill
                if fill + n < BUFFER_SIZE:
                    self._buf[fill:fill + n] = data
                    self._fill = fill + n
                    self.size += n
                    continue
            self.write(data)
        return offsets

    def tell(self) -> int:
        return self.size

    def _pwrite_all(self, mv) -> None:
        done = 0
        while done < len(mv):
            done += os.pwrite(self._fd, mv[done:], self._written + done)
        self._written += done

    def _flush(self, nbytes: int) -> None:
        """Write the first `nbytes` (a multiple of PAGE) of the buffer at the file's end."""
        mv = memoryview(self._buf)[:nbytes]
        done = 0
        try:
            while done < nbytes:
                w = os.pwrite(self._fd, mv[done:], self._written + done)
                done += w
                if w % PAGE:  # a short write off the alignment: finish without O_DIRECT
                    raise OSError(errno.EINVAL, "unaligned short write")
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self._written += done
            self._to_buffered()
            self._pwrite_all(mv[done:])
        else:
            self._written += nbytes
        self._fill = 0

    def _to_buffered(self) -> None:
        """O_DIRECT refused mid-file: the same file, plain writes from here on."""
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        self.direct = False

    def close(self, fsync: bool = True) -> None:
        """Write what is left, cut the file to its true length, fsync (data and length)."""
        if self._fd < 0:
            return
        try:
            if self.direct and self._fill:
                fill = self._fill
                pad = -fill % PAGE
                self._buf[fill:fill + pad] = bytes(pad)
                self._flush(fill + pad)
            if self._written != self.size:
                os.ftruncate(self._fd, self.size)
                self._written = self.size
            if fsync:
                os.fsync(self._fd)
        finally:
            self._release()

    def abort(self) -> None:
        """Close without writing the rest and remove the file."""
        self._release()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._buf is not None:
            _give_buffer(self._buf)
            self._buf = None

    def __enter__(self) -> "DirectFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.close()
            except BaseException:  # the last flush or the fsync failed (a full disk):
                self.abort()       # no half-written file stays behind
                raise
        else:
            self.abort()


def sha256_file(path) -> str:
    """Hex sha256 of a whole file, read in 4 MiB pieces (checksums.txt lines, upload metadata)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            piece = f.read(4 << 20)
            if not piece:
                return h.hexdigest()
            h.update(piece)
