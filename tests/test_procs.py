"""era_tools.procs: fork only from a single-threaded process, else a forkserver."""

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from era_tools.procs import pool_context


needs_fork = pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(),
                                reason="no fork on this platform")


# Run in a fresh process: this one may hold threads other tests left (Dask clients, servers),
# and the check is about a single-threaded process.
_FORK_CHILD = textwrap.dedent("""
    import concurrent.futures as cf, os, sys, threading
    from era_tools.procs import pool_context

    def seen(_):
        return os.getpid(), "era_tools.procs" in sys.modules

    if __name__ == "__main__":
        assert threading.active_count() == 1, threading.enumerate()
        ctx = pool_context(["era_tools.procs"])
        assert ctx.get_start_method() == "fork", ctx.get_start_method()
        with cf.ProcessPoolExecutor(2, mp_context=ctx) as pool:
            got = list(pool.map(seen, range(4)))
        assert all(pid != os.getpid() for pid, _ in got), got
        assert all(inherited for _, inherited in got), got
        print("ok")
""")


@needs_fork
def test_fork_when_single_threaded_and_workers_inherit_imports():
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    res = subprocess.run([sys.executable, "-c", _FORK_CHILD], cwd=root, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


@needs_fork
def test_no_fork_while_a_thread_runs_or_when_not_allowed():
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert pool_context(["era_tools.procs"]).get_start_method() != "fork"
    finally:
        stop.set()
        t.join()
    assert pool_context(["era_tools.procs"], allow_fork=False).get_start_method() != "fork"


_MALLOC_CHILD = r"""
import ctypes, platform, sys
from era_tools.procs import keep_freed_memory
glibc = platform.libc_ver()[0] == "glibc"
ok = keep_freed_memory()
assert ok == glibc and keep_freed_memory() == glibc, (ok, glibc)
if glibc:  # the settings took: a 1 MB block freed and asked again comes back from the heap
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    a = libc.malloc(1 << 20); libc.free(a)
    b = libc.malloc(1 << 20); libc.free(b)
    assert a == b, (a, b)
print("ok")
"""


def test_keep_freed_memory_reuses_freed_blocks_in_a_fresh_process():
    """In its own process (the setting is process-wide): below the new mmap threshold, a
    freed 1 MB block is reused instead of unmapped and mapped anew."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    res = subprocess.run([sys.executable, "-c", _MALLOC_CHILD], cwd=root, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
