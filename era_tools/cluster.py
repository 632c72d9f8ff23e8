"""Per-file work on a Dask cluster: `era verify --dask` and `era info --dask`.

    infos = run_per_file("tcp://10.0.0.1:8786", summary.describe_any, paths, network,
                         errors="return")       # one result per path, in path order

The only module that imports `dask`/`distributed`.  The client sends each worker a file's path
(a shared file system, or object storage once paths may be `s3://` URLs: every open of an era
path goes through `era_tools.e2store.open_for_reading`) and small picklable arguments (the
network, the level, the trusted state's lists); the worker reads the file itself and returns
a small result (a `FileReport` or an `era info` dict).  Results come back in the order of the
paths; everything that needs several files (links between eras, anchors) runs in the caller
on those results.  A worker that dies mid-file has its task rescheduled by the scheduler on
another worker (Dask's `allowed-failures`), which recomputes it from the file: same result.

This module knows nothing of what a check is: it runs functions of other modules by path.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Sequence

from .errors import EraToolsError, PeerError

CONNECT_TIMEOUT = 20.0  # seconds to reach the scheduler
POLL = 1.0  # seconds between looks at the cluster while waiting for results
NO_WORKER_GRACE = 60.0  # seconds with unfinished files and no worker before giving up


class _Raised:
    """An EraToolsError raised on a worker, carried back as a value (its type and message), so
    the client re-raises the same error and a failed file is not retried as a crash."""

    def __init__(self, exc: EraToolsError):
        self.exc = exc


def _run(func: Callable, path: str, args: tuple):
    try:
        return func(path, *args)
    except EraToolsError as exc:
        return _Raised(exc)


def run_per_file(scheduler: str, func: Callable, paths: Sequence[str], *args,
                 progress: Callable[[object], None] | None = None, errors: str = "raise",
                 name: str = "era") -> list:
    """Run `func(path, *args)` for every path on the Dask cluster at `scheduler`
    ("tcp://HOST:PORT"); return the results in path order.  `func` must be a module-level
    function of era_tools (workers import it by name).  An EraToolsError raised by `func` on a
    worker comes back as a value: with errors="raise" the first one in path order is raised
    here once every task finished; with errors="return" it takes the file's place in the
    list.  `progress(result)` is called as each file's result arrives."""
    try:
        from concurrent.futures import CancelledError

        from distributed import Client, KilledWorker, wait
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise PeerError("--dask needs the 'distributed' package: pip install "
                        "'era_tools[dask]'") from exc
    _reachable(scheduler)
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise PeerError(f"{scheduler}: no Dask scheduler answers: {_short(exc)}") from None
    try:
        if not client.scheduler_info().get("workers"):
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        # one key per file and run: the scheduler reruns a task whose worker died
        run = os.urandom(4).hex()
        futs = [client.submit(_run, func, p, args, pure=False,
                              key=f"{name}-{run}-{i}-{os.path.basename(p)}")
                for i, p in enumerate(paths)]
        index = {f.key: i for i, f in enumerate(futs)}
        results: list = [None] * len(futs)
        pending = set(futs)
        idle_since: float | None = None
        while pending:
            # poll rather than block: a finished task whose worker died before we fetched its
            # result goes back to pending, and with no worker left nothing would ever wake us
            try:
                with client.as_current():  # `wait` takes the current client, not an argument
                    done, pending = wait(pending, timeout=POLL, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            stuck = not done
            for fut in sorted(done, key=lambda f: index[f.key]):
                i = index[fut.key]
                try:
                    res = fut.result(timeout=POLL)
                except KilledWorker:
                    raise PeerError(f"{scheduler}: {paths[i]}: the workers running it died, "
                                    "as many times as the scheduler allows "
                                    "(allowed-failures); out of memory?") from None
                except CancelledError:
                    raise PeerError(f"{scheduler}: {paths[i]}: the task was cancelled (the "
                                    "scheduler restarted or went away)") from None
                except TimeoutError:  # its result was lost with its worker: recomputed
                    pending.add(fut)
                    stuck = True
                    continue
                results[i] = res
                if progress is not None and not isinstance(res, _Raised):
                    progress(res)
            if not stuck or client.scheduler_info().get("workers"):
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > NO_WORKER_GRACE:
                raise PeerError(f"{scheduler}: no workers for {NO_WORKER_GRACE:g} s, "
                                f"{len(pending)} of {len(paths)} files unfinished "
                                f"(first: {paths[min(index[f.key] for f in pending)]})")
    except (OSError, TimeoutError) as exc:
        raise PeerError(f"{scheduler}: the Dask cluster failed: {_short(exc)}") from None
    finally:
        client.close()
    if errors == "raise":
        for res in results:
            if isinstance(res, _Raised):
                raise res.exc
    return [r.exc if isinstance(r, _Raised) else r for r in results]


def _reachable(scheduler: str) -> None:
    """A TCP connect to the scheduler first: a Client that fails to connect leaves its event
    loop thread running (distributed 2026.8), and a thread in this process changes how later
    process pools start (era_tools.procs)."""
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(scheduler if "://" in scheduler else "tcp://" + scheduler)
    try:
        host, port = u.hostname, u.port
    except ValueError:
        host = port = None
    if not host or port is None:
        raise PeerError(f"{scheduler}: not a Dask scheduler address tcp://HOST:PORT")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise PeerError(f"{scheduler}: no Dask scheduler answers: "
                        f"{_short(exc.strerror or exc)}") from None


def _short(exc: BaseException, n: int = 200) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= n else text[:n] + "..."


def warm_up(scheduler: str, modules: Sequence[str] = ("era_tools.verify",)) -> int:
    """Import `modules` on every worker now (numpy, py-ssz, the BLS binding: ~0.5 s each), so
    a timed run does not count it; returns the number of workers."""
    import importlib

    from distributed import Client

    with Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False) as client:
        for m in modules:
            client.run(importlib.import_module, m)
        return len(client.scheduler_info().get("workers", {}))
