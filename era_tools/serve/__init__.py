"""`era serve`: publish an era directory over HTTP (aiohttp), and the HTTP client `era download`
uses.  This package is the only importer of aiohttp.

    from era_tools.serve import make_app, run
"""

from __future__ import annotations


def make_app(*args, **kwargs):
    from .app import make_app as _make_app

    return _make_app(*args, **kwargs)


def run(era_dir, network, store=None, host: str = "127.0.0.1", port: int = 8080,
        on_ready=None, **kwargs) -> None:
    """Serve until interrupted.  `on_ready(host, port)` is called once listening."""
    import asyncio

    from aiohttp import web

    app = make_app(era_dir, network, store, **kwargs)

    async def main():
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
        await site.start()
        if on_ready is not None:
            addrs = runner.addresses
            on_ready(*(addrs[0][:2] if addrs else (host, port)))
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
