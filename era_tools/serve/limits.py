"""Connection limits of `era serve`, under aiohttp's request handling: a request-header
deadline, an idle bound, and a cap on open connections per server process.

- Header deadline (Go's `ReadHeaderTimeout`, nginx's `client_header_timeout`): once the first
  byte of a request arrives, its request line and headers must be complete within
  `header_timeout` seconds, else the connection is answered 408 and closed.  aiohttp has no
  such clock: a client that trickles a header line now and then (slowloris) holds its
  connection for as long as it trickles.
- Idle bound: a connection that has sent no byte of a next request for `idle_timeout`
  seconds (since it opened or since its last response) is closed (aiohttp's keep-alive
  timer, whose default is an hour; started here at the connection's start too, which aiohttp
  before 3.14.x did not do).  A request whose headers have begun is left to the header
  deadline instead.  Bytes that follow a complete request in the same read start the next
  request's deadline (a request body too: after one, a keep-alive connection has
  `header_timeout`, not `idle_timeout`, to begin its next request; era serve takes none).
- Connection cap: at `max_connections` open connections, a new one closes the oldest
  connection that is waiting for a request (idle, or still sending headers) to make room,
  as nginx drains idle keep-alive connections when it runs out of them; when every
  connection is busy answering a request, the new one is refused at once with 503 and
  `Retry-After` instead of being queued.  Refused rather than queued: a queued connection
  cannot be told anything, while a 503 costs a few bytes and a client retries it; a waiting
  connection (all an idle or slowloris client holds) is the cheapest to give up.  The cap is
  per process: with `--jobs N` each worker has its own.

The hook is the one aiohttp offers for protocol behaviour: `LimitedRunner` (an `AppRunner`)
builds a `LimitedServer` (a `web.Server`), whose protocol factory makes `LimitedHandler`s (a
`RequestHandler` subclass).  They use RequestHandler attributes that are not public API
(`AIOHTTP_INTERNALS`); `check_aiohttp()` looks for them when the server starts and
pyproject.toml pins the aiohttp versions they were checked on; tests/test_serve_limits.py
measures the behaviour on a real socket, so an aiohttp upgrade that breaks it fails there.

Knows nothing of era files, routes or the CLI; counts what it closes in `LimitedServer.closed`
(and `on_close(reason)`, which the app's metrics take).
"""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

__all__ = ["Limits", "LimitedRunner", "LimitedServer", "LimitedHandler", "check_aiohttp",
           "default_max_connections", "AIOHTTP_INTERNALS"]

# RequestHandler attributes this module reads or sets (aiohttp 3.11 - 3.14)
AIOHTTP_INTERNALS = ("_waiter", "_messages", "_request_count", "_request_in_progress",
                     "_force_close", "_close", "_next_keepalive_close_time",
                     "_keepalive_timeout", "_keepalive_handle", "_payload_parser", "_manager",
                     "_loop")


def _answer(status: str, message: str, extra: bytes = b"") -> bytes:
    body = b'{"code": %s, "message": "%s"}' % (status[:3].encode(), message.encode())
    return (b"HTTP/1.1 %s\r\nContent-Type: application/json\r\n%sConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % (status.encode(), extra, len(body))) + body


_TIMEOUT_408 = _answer("408 Request Timeout", "request headers took too long")
_REFUSED_503 = _answer("503 Service Unavailable", "too many connections; retry later",
                       b"Retry-After: 1\r\n")


def default_max_connections(limit: int = 1024) -> int:
    """`limit`, or less when the file-descriptor limit would not hold that many connections
    plus a file each (`ulimit -n`)."""
    try:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (OSError, ValueError):
        return limit
    if soft == resource.RLIM_INFINITY:
        return limit
    return max(16, min(limit, (soft - 64) // 2))


@dataclass(frozen=True)
class Limits:
    """Seconds for a request's headers once begun, seconds a connection may wait for its next
    request, open connections per process (0 in any: no such limit)."""

    header_timeout: float = 10.0
    idle_timeout: float = 30.0
    max_connections: int = 1024


def check_aiohttp() -> None:
    """RuntimeError when the installed aiohttp's RequestHandler lacks an attribute this module
    relies on (an aiohttp outside the versions pyproject.toml allows)."""
    import aiohttp

    names = set(getattr(RequestHandler, "__slots__", ()))
    for cls in RequestHandler.__mro__[1:]:
        names |= set(getattr(cls, "__slots__", ()))
    missing = [a for a in AIOHTTP_INTERNALS if a not in names]
    missing += [m for m in ("_process_keepalive", "data_received", "force_close")
                if not callable(getattr(RequestHandler, m, None))]
    if missing:
        raise RuntimeError(f"aiohttp {aiohttp.__version__}: RequestHandler has no "
                           f"{', '.join(missing)}; era serve's connection limits need "
                           "aiohttp 3.11-3.14")


class LimitedHandler(RequestHandler):
    """A RequestHandler with a header deadline and a place under the server's cap."""

    def __init__(self, manager, *, header_timeout: float, **kwargs):
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._header_handle: asyncio.TimerHandle | None = None
        self._refused = False

    # -- state ------------------------------------------------------------------------------
    def waiting(self) -> bool:
        """Open and waiting for a request (idle, or its headers not complete yet): no request
        parsed and not answered, none being answered, and the handler task waiting for one
        (or, on a new connection, not started yet)."""
        if self.transport is None or self._force_close or self._messages \
                or self._request_in_progress:
            return False
        w = self._waiter
        return (w is not None and not w.done()) or self._request_count == 0

    # -- protocol ---------------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        if not self._manager.admit(self):
            self._refused = True
            transport.write(_REFUSED_503)
            transport.close()
            return
        super().connection_made(transport)
        if self._keepalive_handle is None and self._keepalive_timeout > 0 and \
                self.transport is not None:
            # aiohttp before 3.14.x starts its idle timer only after a first response: a
            # connection that never sends a byte would stay open forever
            loop = self._loop
            self._next_keepalive_close_time = loop.time() + self._keepalive_timeout
            self._keepalive_handle = loop.call_at(self._next_keepalive_close_time,
                                                  self._process_keepalive)

    def connection_lost(self, exc) -> None:
        self._disarm()
        if self._refused:
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:
            self._disarm()  # a request's headers are complete (or it was refused 400)
            if data.endswith(b"\r\n\r\n"):
                return
            # bytes after the last complete request's headers: the next request has begun
            # (or a body follows, whose connection then has header_timeout, not
            # idle_timeout, to start its next request)
        if (data and self._header_handle is None and self._header_timeout > 0
                and not self._force_close and not self._close
                and self._payload_parser is None):
            self._arm()

    def _process_keepalive(self) -> None:
        """aiohttp's idle timer, counted when it closes the connection."""
        was_closed = self._force_close
        super()._process_keepalive()
        if self._force_close and not was_closed and self._manager is not None:
            self._manager.count_close("idle")

    # -- the deadline -----------------------------------------------------------------------
    def _arm(self) -> None:
        loop = self._loop
        deadline = loop.time() + self._header_timeout
        self._header_handle = loop.call_at(deadline, self._header_deadline)
        # the idle timer leaves a request whose headers have begun to this deadline
        if self._next_keepalive_close_time < deadline + 1:
            self._next_keepalive_close_time = deadline + 1

    def _disarm(self) -> None:
        if self._header_handle is not None:
            self._header_handle.cancel()
            self._header_handle = None

    def _header_deadline(self) -> None:
        self._header_handle = None
        if self.transport is None or self._force_close:
            return
        if not self.waiting():
            # a request is being answered (the bytes were pipelined after it): the clock of
            # the next one starts again
            self._arm()
            return
        self._manager.count_close("header_timeout")
        self.transport.write(_TIMEOUT_408)
        self.force_close()


class LimitedServer(web.Server):
    """aiohttp's low-level Server making LimitedHandlers, with the connection cap."""

    def __init__(self, handler, *, limits: Limits, on_close=None, **kwargs):
        super().__init__(handler, **kwargs)
        self.limits = limits
        self.closed = {"header_timeout": 0, "idle": 0, "evicted": 0, "refused": 0}
        self._on_close = on_close

    def __call__(self) -> LimitedHandler:
        kwargs = dict(self._kwargs)
        if self.limits.idle_timeout > 0:
            kwargs["keepalive_timeout"] = self.limits.idle_timeout
        return LimitedHandler(self, loop=self._loop, header_timeout=self.limits.header_timeout,
                              **kwargs)

    def count_close(self, reason: str) -> None:
        self.closed[reason] += 1
        if self._on_close is not None:
            self._on_close(reason)

    def open_connections(self) -> int:
        """Connections not closed yet (aiohttp keeps a closed one listed until its task
        ends)."""
        return sum(1 for h in self._connections if h.transport is not None
                   and not h._force_close)

    def admit(self, new: LimitedHandler) -> bool:
        """Room for `new`: below the cap, or after closing the oldest waiting connection."""
        cap = self.limits.max_connections
        if cap <= 0 or len(self._connections) < cap or self.open_connections() < cap:
            return True
        for h in list(self._connections):  # oldest first (insertion order)
            if isinstance(h, LimitedHandler) and h.waiting():
                self.count_close("evicted")
                h.force_close()
                return True
        self.count_close("refused")
        return False


class LimitedRunner(web.AppRunner):
    """An AppRunner whose server applies `limits` (the app's startup and cleanup as usual)."""

    def __init__(self, app: web.Application, *, limits: Limits | None = None, on_close=None,
                 **kwargs):
        super().__init__(app, **kwargs)
        self.limits = limits or Limits()
        self._on_close = on_close

    async def _make_server(self) -> web.Server:
        check_aiohttp()
        base = await super()._make_server()  # starts the app, builds aiohttp's own Server
        return LimitedServer(base.request_handler, request_factory=base.request_factory,
                             handler_cancellation=base.handler_cancellation,
                             loop=asyncio.get_running_loop(), limits=self.limits,
                             on_close=self._on_close, **base._kwargs)
