"""era_tools.procs: fork only from a single-threaded process, else a forkserver."""

import concurrent.futures as cf
import os
import threading

import pytest

from era_tools.procs import pool_context


def _pid_and_module_seen(_):
    import sys

    return os.getpid(), "era_tools.procs" in sys.modules


needs_fork = pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(),
                                reason="no fork on this platform")


@needs_fork
def test_fork_when_single_threaded_and_workers_inherit_imports():
    if threading.active_count() != 1:
        pytest.skip("another test left a thread running in this process")
    ctx = pool_context(["era_tools.procs"])
    assert ctx.get_start_method() == "fork"
    with cf.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        seen = list(pool.map(_pid_and_module_seen, range(4)))
    assert all(pid != os.getpid() for pid, _ in seen)
    assert all(inherited for _, inherited in seen)


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
