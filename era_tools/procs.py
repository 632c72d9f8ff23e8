"""The start method of CPU worker pools (block hashing, signature batches).

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
import threading

# Set once this process has started threads Python cannot see that would not survive fork()
# (an object-store client's runtime): pools then never fork.
_foreign_threads = False


def note_foreign_threads() -> None:
    global _foreign_threads
    _foreign_threads = True


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
