"""Process-wide settings: the start method of CPU worker pools (block hashing, signature
batches), glibc malloc's thresholds for streams of blocks (`keep_freed_memory`), and the
CPUs this process may run on (`usable_cpus`).

- ``fork`` when allowed and this process runs a single Python thread: the workers start at
  once with everything already imported (a forkserver's fresh interpreter costs ~0.5 s of
  CPU importing numpy, py-ssz and the BLS binding before the first task can run).  The pool's
  workers must then be launched before any thread starts: `ProcessPoolExecutor` forks them all
  at its first `submit`.
- else ``forkserver``, preloading `preload` (the server imports once; workers fork from it);
- else ``spawn``.

Knows nothing of what the workers compute.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3   # glibc mallopt parameters
_malloc_kept = False

# Set once this process has started threads Python cannot see that would not survive fork()
# (an object-store client's runtime): pools then never fork.
_foreign_threads = False


def note_foreign_threads() -> None:
    global _foreign_threads
    _foreign_threads = True


def usable_cpus() -> int:
    """How many CPUs this process may run on (its affinity mask, e.g. under taskset or a
    container's cpuset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def pool_context(preload: list[str], allow_fork: bool = True):
    """A multiprocessing context for a process pool whose tasks live in modules `preload`.

    `allow_fork=False` where the process may hold threads Python cannot see (a LevelDB
    store's compaction thread): forking then could copy a lock held mid-operation."""
    methods = mp.get_all_start_methods()
    if allow_fork and not _foreign_threads and "fork" in methods and \
            threading.active_count() == 1:
        return mp.get_context("fork")
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(preload)  # takes effect only before the server starts
        return ctx
    return mp.get_context("spawn")


def keep_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Let glibc malloc serve allocations below `mmap_threshold` from memory it has freed
    before, and keep up to `trim_threshold` of free memory at the top of its heaps, instead
    of a fresh mmap (page faults and zeroing) for every allocation of more than ~128 KB.

    A sync holds hundreds of blocks of ~150 KB between their arrival and their write, then
    frees them: 150 KB copies kept alive 600 at a time cost 95 µs each by default, 14 µs
    with this (bench_sync.py, BENCHMARKS.md).  Larger allocations (states) still get their
    own mappings, returned on free.  False where the C library has no mallopt (not glibc);
    once per process."""
    global _malloc_kept
    if _malloc_kept:
        return True
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    _malloc_kept = mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 and \
        mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1
    return _malloc_kept
