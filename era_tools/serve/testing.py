"""Run an aiohttp application on 127.0.0.1 in a background thread (for tests and benchmarks).

    with ServerThread(make_app(era_dir, network)) as srv:
        requests.get(srv.url + "index.json")

A real server on a real socket, with `era serve`'s connection limits (serve/limits.py;
`limits=`): the thread owns its event loop; `stop()` shuts the site down
and joins the thread.
"""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class ServerThread:
    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0,
                 limits=None):
        self.app = app
        self.limits = limits  # serve.limits.Limits, as `era serve` runs (default Limits())
        self.server = None    # the LimitedServer, once started
        self.host = host
        self.port = port
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> "ServerThread":
        self._thread = threading.Thread(target=self._run, name="era-serve-test", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        from .app import STATE
        from .limits import LimitedRunner
        on_close = self.app[STATE]["stats"].connection_closed if STATE in self.app else None
        runner = LimitedRunner(self.app, limits=self.limits, access_log=None,
                               shutdown_timeout=1.0, on_close=on_close)
        await runner.setup()
        self.server = runner.server
        site = web.TCPSite(runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = runner.addresses[0][1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
