"""`era serve`'s connection limits (era_tools/serve/limits.py) on real sockets on 127.0.0.1:
a client trickling its headers is cut at the header deadline (408) while honest clients are
served, idle sockets beyond the connection cap do not lock honest clients out, busy
connections are never cut, and the CLI's options reach every worker process.  These use
aiohttp internals: an aiohttp upgrade that breaks them fails here."""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
from aiohttp import web

from era_tools.config import load_config
from era_tools.serve.app import make_app
from era_tools.serve.limits import LimitedHandler, Limits, check_aiohttp
from era_tools.serve.testing import ServerThread

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "sample_eras")


def _app():
    return make_app(SAMPLE, load_config(os.path.join(SAMPLE, "spec.json")), hash_on_start=False)


class Honest(threading.Thread):
    """GET /index.json and /eth/v1/beacon/genesis in turn on new connections, 30 ms apart,
    until stopped: (ok, failed) counts."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.ok, self.failed, self.errors = port, 0, 0, []
        self.stop = threading.Event()

    def run(self):
        i = 0
        while not self.stop.is_set():
            path = ("/index.json", "/eth/v1/beacon/genesis")[i % 2]
            i += 1
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
                c.request("GET", path)
                r = c.getresponse()
                body = r.read()
                c.close()
                if r.status == 200 and body:
                    self.ok += 1
                else:
                    self.failed += 1
                    self.errors.append(r.status)
            except OSError as exc:
                self.failed += 1
                self.errors.append(repr(exc))
            time.sleep(0.03)


async def _trickle(port: int, seconds: float, every: float = 0.2):
    """Open a connection, send a request line, then a header line every `every` s for up to
    `seconds`: (seconds until the server closed it or None, what it answered)."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.monotonic()
    w.write(b"GET /index.json HTTP/1.1\r\nHost: x\r\n")
    got = b""
    i = 0
    try:
        while time.monotonic() - t0 < seconds:
            w.write(b"X-%d: %d\r\n" % (i, i))
            i += 1
            try:
                await w.drain()
                chunk = await asyncio.wait_for(r.read(4096), every)
            except asyncio.TimeoutError:
                continue
            except OSError:
                return time.monotonic() - t0, got
            if not chunk:
                return time.monotonic() - t0, got
            got += chunk
        return None, got
    finally:
        w.close()


def test_aiohttp_has_what_the_limits_use():
    check_aiohttp()  # the RequestHandler attributes limits.py reads are there


def test_trickling_clients_are_cut_at_the_header_deadline_honest_ones_served():
    limits = Limits(header_timeout=1.5, idle_timeout=30, max_connections=1024)
    with ServerThread(_app(), limits=limits) as srv:
        honest = Honest(srv.port)
        honest.start()

        async def main():
            return await asyncio.gather(*[_trickle(srv.port, 20) for _ in range(30)])

        results = asyncio.run(main())
        honest.stop.set()
        honest.join(30)
        for cut_after, answer in results:
            assert cut_after is not None, "a trickling client kept its connection for 20 s"
            assert cut_after >= 1.4, cut_after  # not before its deadline
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer[:80]
        assert srv.server.closed["header_timeout"] == 30
        assert honest.ok > 10 and honest.failed == 0, honest.errors[:5]
        # counted in /metrics
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        assert 'era_serve_connections_closed_total{reason="header_timeout"} 30.0' in text


def test_idle_sockets_beyond_the_cap_do_not_lock_out_honest_clients():
    """250 connections that never send a byte against a cap of 100: each honest connection
    takes the place of the oldest idle one; the idle ones are closed after idle_timeout."""
    limits = Limits(header_timeout=5, idle_timeout=4, max_connections=100)
    with ServerThread(_app(), limits=limits) as srv:
        idle = []
        for _ in range(250):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            idle.append(s)
        honest = Honest(srv.port)
        honest.start()
        time.sleep(1.0)
        honest.stop.set()
        honest.join(30)
        assert honest.ok >= 5 and honest.failed == 0, honest.errors[:5]
        assert srv.server.closed["evicted"] >= 150
        assert srv.server.closed["refused"] == 0
        # every idle socket ends closed by the server (evicted, or after the idle bound)
        closed = 0
        for s in idle:
            s.settimeout(15)
            try:
                closed += s.recv(1) == b""
            except OSError:
                closed += 1
            s.close()
        assert closed == 250
        # the ones not evicted were closed by the idle bound, and counted
        assert srv.server.closed["evicted"] + srv.server.closed["idle"] == 250, srv.server.closed


def _slow_app(release: threading.Event):
    async def slow(request):
        while not release.is_set():
            await asyncio.sleep(0.05)
        return web.Response(text="slow done")

    async def fast(request):
        return web.Response(text="fast")

    app = web.Application()
    app.router.add_get("/slow", slow)
    app.router.add_get("/", fast)
    return app


def test_busy_connections_are_kept_and_a_full_server_answers_503():
    """At the cap with every connection answering a request, a new connection gets 503 with
    Retry-After (not queued, nothing closed); once one finishes, new connections are
    served."""
    release = threading.Event()
    with ServerThread(_slow_app(release), limits=Limits(header_timeout=1, idle_timeout=30,
                                                        max_connections=2)) as srv:
        busy = []
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
            s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            busy.append(s)
        time.sleep(1.5)  # longer than the header deadline: busy connections are not cut
        c = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
        answer = c.recv(4096)
        c.close()
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable"), answer[:80]
        assert b"Retry-After: 1" in answer
        assert srv.server.closed == {"header_timeout": 0, "idle": 0, "evicted": 0,
                                     "refused": 1}
        release.set()
        for s in busy:
            data = b""
            while b"slow done" not in data:
                chunk = s.recv(4096)
                assert chunk, data
                data += chunk
            assert data.startswith(b"HTTP/1.1 200")
            s.close()
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
        c.request("GET", "/")
        assert c.getresponse().read() == b"fast"


def test_headers_pipelined_behind_a_slow_request_get_their_deadline_after_it():
    """A partial request sent while the one before it is answered: the answer is complete,
    then the partial one is cut at its deadline (408), not while the first was busy."""
    release = threading.Event()
    with ServerThread(_slow_app(release), limits=Limits(header_timeout=1, idle_timeout=30,
                                                        max_connections=10)) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHo")
        time.sleep(2.5)  # two header deadlines while /slow is busy
        release.set()
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        assert data.startswith(b"HTTP/1.1 200") and b"slow done" in data, data[:200]
        assert b"HTTP/1.1 408 Request Timeout" in data.split(b"slow done", 1)[1]
        assert srv.server.closed["header_timeout"] == 1


def test_keep_alive_clients_reuse_their_connection_within_the_idle_bound():
    with ServerThread(_app(), limits=Limits(header_timeout=1, idle_timeout=5)) as srv:
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
        for _ in range(3):
            c.request("GET", "/eth/v1/beacon/genesis")
            r = c.getresponse()
            assert r.status == 200 and r.read()
            time.sleep(1.5)  # between requests: longer than the header deadline
        sock = c.sock
        c.request("GET", "/eth/v1/beacon/genesis")
        assert c.getresponse().read() and c.sock is sock  # one connection throughout
        assert srv.server.closed["header_timeout"] == 0
        c.close()


def test_era_serve_options_reach_every_worker(tmp_path):
    """`era serve --jobs 2 --header-timeout 1`: a trickler is cut with 408 by whichever worker
    took it, and /metrics (summed over workers) counts it."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log = open(tmp_path / "serve.log", "w+b")
    p = subprocess.Popen([sys.executable, "-c", "import sys; from era_tools.cli import main; "
                          "sys.exit(main())", "serve", SAMPLE, "--port", "0", "--jobs", "2",
                          "--header-timeout", "1", "--max-connections", "50"],
                         stdout=log, stderr=log, env=env)
    try:
        port = None
        for _ in range(300):
            m = re.search(rb"http://127\.0\.0\.1:(\d+)/", (tmp_path / "serve.log").read_bytes())
            if m:
                port = int(m.group(1))
                break
            assert p.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        assert port, (tmp_path / "serve.log").read_text()

        async def main():
            return await asyncio.gather(*[_trickle(port, 15) for _ in range(6)])

        for cut_after, answer in asyncio.run(main()):
            assert cut_after is not None and answer.startswith(b"HTTP/1.1 408"), answer[:80]
        text = ""
        for _ in range(50):  # workers publish their numbers about once a second
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
            if 'era_serve_connections_closed_total{reason="header_timeout"} 6.0' in text:
                break
            time.sleep(0.2)
        assert 'era_serve_connections_closed_total{reason="header_timeout"} 6.0' in text, \
            [ln for ln in text.splitlines() if "closed" in ln]
    finally:
        p.terminate()
        assert p.wait(30) == 0
        log.close()


def test_handlers_are_the_limited_ones():
    with ServerThread(_app()) as srv:
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        c.request("GET", "/index.json")
        c.getresponse().read()
        assert srv.server.connections and all(isinstance(h, LimitedHandler)
                                              for h in srv.server.connections)
        assert srv.server.limits == Limits()
        c.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
