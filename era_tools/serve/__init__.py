"""`era serve`: publish an era directory over HTTP (aiohttp), and the HTTP client `era download`
uses.  This package is the only importer of aiohttp.

    from era_tools.serve import make_app, run
"""

from __future__ import annotations


def make_app(*args, **kwargs):
    from .app import make_app as _make_app

    return _make_app(*args, **kwargs)


def run(era_dir, network, store=None, host: str = "127.0.0.1", port: int = 8080,
        on_ready=None, workers: int = 1, on_event=None, limits=None, **kwargs) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly and return.  `on_ready(host, port)` is
    called once listening.  `workers` > 1: that many processes accept on one listening socket
    (see workers.py); they cannot share an open `store`.  The port is never shared with
    another server: a port in use is an OSError "cannot listen on HOST:PORT: ...".
    `limits`: a limits.Limits (header deadline, idle bound, connection cap; default
    Limits())."""
    from ..procs import keep_freed_memory

    keep_freed_memory()  # range answers: blocks copied into 256 KB buffers, by the thousand
    if workers > 1:
        if store is not None:
            raise ValueError("several workers cannot share one open chain store")
        from .workers import run_workers

        run_workers(era_dir, network, workers, host=host, port=port, on_ready=on_ready,
                    on_event=on_event, limits=limits, **kwargs)
        return

    import asyncio
    import signal

    from aiohttp import web

    from .app import app_connection_closed
    from .limits import LimitedRunner
    from .workers import listen_socket

    app = make_app(era_dir, network, store, **kwargs)

    saved = {}

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (RuntimeError, ValueError):  # not the main thread: the caller stops us
                pass
        runner = LimitedRunner(app, limits=limits, access_log=None, shutdown_timeout=5.0,
                               on_close=app_connection_closed(app))
        await runner.setup()
        try:
            site = web.SockSite(runner, listen_socket(host, port), backlog=1024)
            await site.start()
            if on_ready is not None:
                addrs = runner.addresses
                on_ready(*(addrs[0][:2] if addrs else (host, port)))
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):  # stopping already: ignore repeats
                try:
                    loop.remove_signal_handler(sig)
                    saved[sig] = signal.signal(sig, signal.SIG_IGN)
                except (RuntimeError, ValueError):
                    pass
            await runner.cleanup()

    try:
        asyncio.run(main())
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
