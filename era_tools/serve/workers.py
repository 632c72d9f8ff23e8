"""`era serve --workers N`: N server processes on one port, like nginx's worker processes.

The parent binds and listens on the address once, without SO_REUSEPORT (this fixes the port
when 0 was asked for, and fails in the parent when anything else holds the port, another
`era serve` included), then forks N workers, which inherit that one listening socket: each
builds its own catalog and application and accepts connections from the shared socket, as
nginx workers do.  Only this server's own processes can take connections on the port: with
SO_REUSEPORT a second, unrelated server could bind it too and the kernel would split the
traffic between the two.

The workers share a temporary directory: computed checksums (one process hashes a file, the
others read its result) and /metrics numbers (each worker publishes its counts about once a
second; /metrics on any worker sums them).

Stopping: SIGINT or SIGTERM to the parent sends SIGTERM to every worker, waits for them to
finish their requests (a few seconds at most, then SIGKILL), removes the shared directory and
returns normally.  A worker that receives SIGINT itself (Ctrl-C reaches the whole process
group) stops the same way.  Workers ask the kernel for SIGTERM when the parent dies, so none
is left holding the port.  A worker that dies after start-up is restarted.

Library code: nothing is printed; `on_ready(host, port)` and `on_event(kind, **info)` report.
"""

from __future__ import annotations

import errno
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time

from ..procs import usable_cpus

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_GRACE = 10.0          # seconds the parent waits for workers to finish, then SIGKILL
WORKER_SHUTDOWN = 5.0      # seconds a stopping worker gives requests in flight
MAX_RESTARTS = 10          # restarts within RESTART_WINDOW before the parent gives up
RESTART_WINDOW = 60.0


def default_workers() -> int:
    return usable_cpus()


def listen_error(host: str, port: int, exc: OSError) -> OSError:
    """The one-line error for an address that cannot be listened on, e.g. "cannot listen on
    127.0.0.1:8080: address already in use"."""
    why = os.strerror(exc.errno) if (exc.errno or 0) > 0 else (exc.strerror or str(exc))
    why = why[:1].lower() + why[1:]
    return OSError(exc.errno, f"cannot listen on {host}:{port}: {why}")


def listen_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A non-blocking socket listening on (host, port): SO_REUSEADDR (a restart need not wait
    out TIME_WAIT), never SO_REUSEPORT (nobody else may bind the port while it is open)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    if not infos:
        raise OSError(errno.EADDRNOTAVAIL, f"cannot resolve {host}")
    family, stype, proto, _, addr = infos[0]
    s = socket.socket(family, stype, proto)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(addr)
        s.listen(backlog)
        s.setblocking(False)
    except OSError as exc:
        s.close()
        raise listen_error(host, port, exc) from exc
    return s


def _die_with_parent() -> None:
    """Linux: SIGTERM this process when the parent exits (prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def _worker_main(index: int, parent: int, era_dir, network, sock: socket.socket,
                 share_dir: str, ready_fd: int, app_kwargs: dict, limits=None) -> None:
    """Body of one forked worker.  Never returns: leaves with os._exit."""
    code = 0
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_DFL)
        _die_with_parent()
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(0)
        import asyncio

        from aiohttp import web

        from .app import app_connection_closed, make_app
        from .limits import LimitedRunner

        async def main():
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            for s in STOP_SIGNALS:
                loop.add_signal_handler(s, stop.set)
            app = make_app(era_dir, network, None, worker=index, share_dir=share_dir,
                           **app_kwargs)
            runner = LimitedRunner(app, limits=limits, access_log=None,
                                   shutdown_timeout=WORKER_SHUTDOWN,
                                   on_close=app_connection_closed(app))
            await runner.setup()
            try:
                site = web.SockSite(runner, sock, backlog=1024)  # the parent's socket
                await site.start()
                os.write(ready_fd, b"R")
                await stop.wait()
            finally:
                for s in STOP_SIGNALS:  # one stop is enough: later signals change nothing
                    loop.remove_signal_handler(s)
                    signal.signal(s, signal.SIG_IGN)
                await runner.cleanup()

        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except BaseException as exc:  # report to the parent, which turns it into one line
        code = 2
        try:
            os.write(ready_fd, b"E" + f"{type(exc).__name__}: {exc}".encode()[:2000])
        except OSError:
            pass
    finally:
        try:
            if os.getppid() != parent:  # the parent was killed: nobody else cleans up
                shutil.rmtree(share_dir, ignore_errors=True)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


class _Worker:
    def __init__(self, index: int):
        self.index = index
        self.pid: int | None = None
        self.fd: int | None = None       # read end of the readiness pipe
        self.ready = False
        self.message = b""


def run_workers(era_dir, network, workers: int, host: str = "127.0.0.1", port: int = 8080,
                on_ready=None, on_event=None, limits=None, **app_kwargs) -> None:
    """Serve ERA_DIR from `workers` processes sharing (host, port) until SIGINT/SIGTERM.

    Returns normally after a clean stop.  Raises OSError when the address cannot be bound or
    a worker fails to start (its error in the message)."""
    if workers < 1:
        raise ValueError("workers must be >= 1")
    event = on_event or (lambda kind, **info: None)
    sock = listen_socket(host, port)
    addr = sock.getsockname()
    port = addr[1]
    share_dir = tempfile.mkdtemp(prefix="era-serve-")
    parent = os.getpid()
    hash_on_start = app_kwargs.pop("hash_on_start", True)
    watched = [signal.SIGCHLD, *STOP_SIGNALS]
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    pool = [_Worker(i) for i in range(workers)]
    restarts: list[float] = []

    def spawn(w: _Worker) -> None:
        r, wfd = os.pipe()
        kwargs = dict(app_kwargs, hash_on_start=hash_on_start and w.index == 0)
        pid = os.fork()
        if pid == 0:  # child
            os.close(r)
            _worker_main(w.index, parent, era_dir, network, sock, share_dir, wfd, kwargs, limits)
        os.close(wfd)
        w.pid, w.fd, w.ready, w.message = pid, r, False, b""

    def read_pipe(w: _Worker) -> None:
        try:
            data = os.read(w.fd, 4096)
        except OSError:
            data = b""
        if not data:
            os.close(w.fd)
            w.fd = None
            return
        w.message += data
        if w.message.startswith(b"R") and not w.ready:
            w.ready = True
            event("worker_ready", worker=w.index, pid=w.pid)

    def reap() -> list[tuple[_Worker, int]]:
        dead = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            for w in pool:
                if w.pid == pid:
                    if w.fd is not None:
                        read_pipe(w)
                        if w.fd is not None:
                            os.close(w.fd)
                            w.fd = None
                    w.pid = None
                    dead.append((w, os.waitstatus_to_exitcode(status)))
        return dead

    def stop_all() -> None:
        for w in pool:
            if w.pid is not None:
                try:
                    os.kill(w.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_GRACE
        while any(w.pid is not None for w in pool) and time.monotonic() < deadline:
            reap()
            if any(w.pid is not None for w in pool):
                time.sleep(0.05)
        for w in pool:
            if w.pid is not None:
                event("worker_killed", worker=w.index, pid=w.pid)
                try:
                    os.kill(w.pid, signal.SIGKILL)
                    os.waitpid(w.pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
                w.pid = None
        for w in pool:
            if w.fd is not None:
                os.close(w.fd)
                w.fd = None

    announced = False
    try:
        for w in pool:
            spawn(w)
        while True:
            fds = [w.fd for w in pool if w.fd is not None]
            if fds:
                readable, _, _ = select.select(fds, [], [], 0)
                for w in pool:
                    if w.fd is not None and w.fd in readable:
                        read_pipe(w)
            for w, code in reap():
                why = w.message[1:].decode(errors="replace") if w.message.startswith(b"E") \
                    else f"exit code {code}"
                if not announced:
                    raise OSError(f"era serve worker {w.index} failed to start: {why}")
                now = time.monotonic()
                restarts[:] = [t for t in restarts if now - t < RESTART_WINDOW] + [now]
                if len(restarts) > MAX_RESTARTS:
                    raise OSError(f"era serve workers keep dying ({len(restarts)} restarts in "
                                  f"{RESTART_WINDOW:.0f} s); last: worker {w.index}: {why}")
                event("worker_exited", worker=w.index, reason=why)
                spawn(w)
            if not announced and all(w.ready for w in pool):
                announced = True
                if on_ready is not None:
                    on_ready(addr[0], port)
            sig = signal.sigtimedwait(watched, 0.2)
            if sig is not None and sig.si_signo in STOP_SIGNALS:
                event("stopping", signal=signal.Signals(sig.si_signo).name)
                break
    finally:
        stop_all()
        sock.close()
        shutil.rmtree(share_dir, ignore_errors=True)
        while signal.sigtimedwait(watched, 0) is not None:  # a second Ctrl-C: already done
            pass
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
