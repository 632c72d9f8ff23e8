"""The HTTP client of `era download` (aiohttp, so aiohttp stays inside serve/).

Two operations, both async and both with hard limits:
    await fetch(session, url, max_bytes)            -> Fetched(status, headers, body)
    await stream_to_file(session, url, f, offset, ...) -> Streamed(status, offset, headers)

`stream_to_file` asks for `bytes=offset-` when resuming and appends only on a 206 whose
Content-Range starts exactly at `offset`; a 200 means the server ignored the range, so the file
is truncated and the caller's hash restarted (via `on_restart`).  Network failures raise
PeerError with the URL and byte offset.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from ..errors import PeerError

CHUNK = 1 << 20


@dataclass
class Fetched:
    status: int
    headers: dict
    body: bytes


@dataclass
class Streamed:
    status: int
    offset: int          # bytes in the file afterwards
    headers: dict


def session(jobs: int = 4, read_timeout: float = 60.0) -> aiohttp.ClientSession:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=read_timeout)
    conn = aiohttp.TCPConnector(limit=max(4, jobs * 2))
    return aiohttp.ClientSession(timeout=timeout, connector=conn, auto_decompress=True,
                                 headers={"User-Agent": "era_tools-download"})


NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


async def fetch(sess: aiohttp.ClientSession, url: str, max_bytes: int = 64 << 20,
                headers: dict | None = None) -> Fetched:
    """GET a small document (listing, checksums, JSON), refusing more than `max_bytes`."""
    try:
        async with sess.get(url, headers=headers, allow_redirects=True) as r:
            body = bytearray()
            async for chunk in r.content.iter_chunked(CHUNK):
                body += chunk
                if len(body) > max_bytes:
                    raise PeerError(f"{url}: response larger than {max_bytes} bytes")
            return Fetched(r.status, dict(r.headers), bytes(body))
    except NETWORK_ERRORS as exc:
        raise PeerError(f"{url}: {type(exc).__name__}: {exc}") from exc


def _content_range_start(value: str | None) -> int | None:
    # "bytes START-END/TOTAL"
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


async def stream_to_file(sess: aiohttp.ClientSession, url: str, f, offset: int, *,
                         if_range: str | None = None, on_data=None, on_restart=None,
                         on_headers=None) -> Streamed:
    """Download `url` into the open binary file `f` (positioned at `offset`), resuming with a
    Range request when `offset` > 0.  `on_data(bytes)` sees every appended chunk."""
    headers = {"Accept-Encoding": "identity"}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
        if if_range:
            headers["If-Range"] = if_range
    pos = offset
    try:
        async with sess.get(url, headers=headers, allow_redirects=True) as r:
            if r.status == 416:
                return Streamed(416, pos, dict(r.headers))
            if r.status not in (200, 206):
                return Streamed(r.status, pos, dict(r.headers))
            if r.status == 206:
                start = _content_range_start(r.headers.get("Content-Range"))
                if start != offset:
                    raise PeerError(f"{url}: asked for bytes from {offset}, the server sent "
                                    f"Content-Range {r.headers.get('Content-Range')!r}")
            elif offset > 0:  # 200: the server ignored our Range; start over
                f.seek(0)
                f.truncate()
                pos = 0
                if on_restart is not None:
                    on_restart()
            if on_headers is not None:
                on_headers(dict(r.headers))
            async for chunk in r.content.iter_chunked(CHUNK):
                f.write(chunk)
                pos += len(chunk)
                if on_data is not None:
                    on_data(chunk)
            return Streamed(r.status, pos, dict(r.headers))
    except NETWORK_ERRORS as exc:
        f.flush()
        raise PeerError(f"{url}: offset {pos}: {type(exc).__name__}: {exc}") from exc


def run(coro):
    """Run a coroutine to completion on a fresh event loop."""
    return asyncio.run(coro)
