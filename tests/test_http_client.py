"""The one retrying HTTP core (era_tools.sync.peers.HttpClient) behind BeaconApiClient and
BackfillPeer's REST and range paths: the same tries, the same one-line error after the cap, the
same refusal of a 10 GB Content-Length before anything is allocated.  Real answers of
`era serve` over sample_eras/ (recorded from a real server on 127.0.0.1), replayed by a
raw-socket peer on 127.0.0.1 that is busy (503) for the first tries."""

from __future__ import annotations

import socket
import threading
import tracemalloc
import urllib.request

import pytest
from aiohttp import web

from era_tools.errors import PeerError
from era_tools.sync.peers import (RANGE_PATH, SSZ_MIME, BackfillPeer, BeaconApiClient, PeerFault,
                                  RetryPolicy)
from hostile_http import CLOSE, HostilePeer, response

SLOT = 9            # a block of the fixture chain (sample_eras/, era 1)
BLOCK_PATH = f"/eth/v2/beacon/blocks/{SLOT}"
RANGE = f"{RANGE_PATH}?start_slot={SLOT}&count=1"
BUSY = b'{"code": 503, "message": "busy"}'


@pytest.fixture
def recorded(sample_host):
    """path -> the raw HTTP answer `era serve` gives for the block and the range request."""
    out = {}
    for path in (BLOCK_PATH, RANGE):
        req = urllib.request.Request(sample_host.url.rstrip("/") + path,
                                     headers={"Accept": SSZ_MIME})
        with urllib.request.urlopen(req) as r:
            body = r.read()
            keep = {k: v for k, v in r.headers.items()
                    if k in ("Content-Type", "Eth-Consensus-Version", "Era-Tools-Last-Slot")}
        assert r.status == 200 and body
        out[path] = response(headers=keep, body=body)
    return out


class Busy:
    """Answers each path 503 for its first `fail` requests, then the recorded answer."""

    def __init__(self, recorded: dict, fail: int):
        self.recorded, self.fail = recorded, fail
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, path):
        with self.lock:
            n = self.counts[path] = self.counts.get(path, 0) + 1
        if n <= self.fail:
            return [response("503 Service Unavailable",
                             {"Content-Type": "application/json"}, BUSY)]
        return [self.recorded[path]]


class Paths:
    """BeaconApiClient.block, BackfillPeer REST fetch and BackfillPeer range fetch of SLOT, all
    three with the same RetryPolicy, against `url`."""

    NAMES = {"api": BLOCK_PATH, "rest": BLOCK_PATH, "range": RANGE}

    def __init__(self, url: str, policy: RetryPolicy, timeout: float = 5.0):
        self.api = BeaconApiClient(url, timeout=timeout, retries=policy.tries,
                                   backoff=policy.backoff)
        self.rest = BackfillPeer(url, timeout=timeout, retry=policy)
        self.rest.kind = "rest"
        self.range = BackfillPeer(url, timeout=timeout, retry=policy)
        self.range.kind = "range"

    def call(self, name: str):
        if name == "api":
            return self.api.block(SLOT)
        return getattr(self, name).fetch(SLOT, SLOT)

    def close(self):
        self.rest.close()
        self.range.close()


def test_busy_twice_then_served_takes_three_tries_on_every_path(recorded, network):
    from era_tools.framing import decompress

    policy = RetryPolicy(tries=3, backoff=0.01)
    want = recorded[BLOCK_PATH].split(b"\r\n\r\n", 1)[1]
    for name, path in Paths.NAMES.items():
        with HostilePeer(Busy(recorded, fail=2)) as srv:
            paths = Paths(srv.url, policy)
            try:
                got = paths.call(name)
            finally:
                paths.close()
        assert srv.requests == [path] * 3, name
        assert getattr(paths, name).http.requests_made == 3, name  # the client counts them too
        if name == "api":
            assert got.ssz == want and got.fork == network.fork_name_at_slot(SLOT)
        elif name == "rest":
            assert [b.slot for b in got.blocks] == [SLOT] and got.blocks[0].ssz == want
        else:
            assert got.last_slot == SLOT and len(got.blocks) == 1
            assert decompress(got.blocks[0].framed) == want


def test_always_busy_gives_the_same_one_line_error_after_the_cap(recorded):
    policy = RetryPolicy(tries=3, backoff=0.01)
    errors = {}
    for name, path in Paths.NAMES.items():
        with HostilePeer(Busy(recorded, fail=99)) as srv:
            paths = Paths(srv.url, policy)
            try:
                with pytest.raises(PeerFault) as exc:
                    paths.call(name)
            finally:
                paths.close()
        assert srv.requests == [path] * 3, name
        assert exc.value.kind == "missing"
        errors[name] = str(exc.value)
        assert errors[name] == (f"{srv.url}{path}: failed after 3 tries: HTTP 503: "
                                f"{BUSY.decode()}"), name
    assert len({e.split(": ", 1)[1] for e in errors.values()}) == 1  # same words past the URL


def test_backfill_peers_try_once_by_default(recorded):
    # the backward sync queue moves a failed batch to another peer and keeps the scores
    with HostilePeer(Busy(recorded, fail=99)) as srv:
        peer = BackfillPeer(srv.url, timeout=5)
        peer.kind = "range"
        try:
            with pytest.raises(PeerFault, match="failed after 1 tries: HTTP 503"):
                peer.fetch(SLOT, SLOT)
        finally:
            peer.close()
    assert srv.requests == [RANGE]


def test_a_refused_connection_reads_the_same_on_every_path():
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there now
    url = f"http://127.0.0.1:{port}"
    paths = Paths(url, RetryPolicy(tries=2, backoff=0.01))
    for name, path in Paths.NAMES.items():
        with pytest.raises(PeerError) as exc:
            paths.call(name)
        assert str(exc.value) == (f"{url}{path}: failed after 2 tries: connection refused "
                                  f"(127.0.0.1:{port})"), name
        assert exc.value.kind == "timeout"
    paths.close()


def test_a_silent_server_times_out_with_the_same_words_on_every_path():
    # accepts, reads the request, never answers: every path waits `timeout`, then says so
    with HostilePeer(lambda path: [5.0, CLOSE]) as srv:
        paths = Paths(srv.url, RetryPolicy(tries=2, backoff=0.01), timeout=0.3)
        for name, path in Paths.NAMES.items():
            n = len(srv.requests)
            with pytest.raises(PeerFault) as exc:
                paths.call(name)
            assert str(exc.value) == (f"{srv.url}{path}: failed after 2 tries: timed out after "
                                      f"0.3 s (127.0.0.1:{srv.url.rsplit(':', 1)[1]})"), name
            assert exc.value.kind == "timeout"
            assert len(srv.requests) - n == 2, name
        paths.close()


def test_a_10_gb_content_length_is_refused_by_every_path_before_it_is_read(recorded):
    # the peer announces 10 GiB and sends 64 MiB: each path refuses at the header, one try
    # (a lie is not retried), without allocating anything near either size
    def respond(path):
        return [response(headers={"Eth-Consensus-Version": "phase0",
                                  "Era-Tools-Last-Slot": str(SLOT)},
                         content_length=str(10 << 30)), *[bytes(1 << 20)] * 64, CLOSE]

    with HostilePeer(respond) as srv:
        paths = Paths(srv.url, RetryPolicy(tries=3, backoff=0.01))
        for name, path in Paths.NAMES.items():
            n = len(srv.requests)
            tracemalloc.start()
            try:
                with pytest.raises(PeerFault) as exc:
                    paths.call(name)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert f"{path}: response of 10737418240 bytes exceeds the limit" in str(exc.value)
            assert exc.value.kind == "bad"
            assert srv.requests[n:] == [path], name
            assert peak < 16 << 20, (name, peak)  # the range path's reused 4 MiB buffer at most
        paths.close()


# -- era download: the same policy (its own numbers: 4 tries) over aiohttp -------------------
class BusyEras:
    """aiohttp middleware: 503 for the first `fail` requests of each era file."""

    def __init__(self, fail: int):
        self.fail = fail
        self.seen: dict[str, int] = {}

    @web.middleware
    async def middleware(self, request, handler):
        name = request.path.lstrip("/")
        if name.endswith(".era"):
            self.seen[name] = self.seen.get(name, 0) + 1
            if self.seen[name] <= self.fail:
                return web.Response(status=503, text="busy")
        return await handler(request)


def download(srv, dest, *args):
    from click.testing import CliRunner

    from era_tools.cli import main

    return CliRunner().invoke(main, ["download", srv.url, str(dest), "--from-era", "3",
                                     "--to-era", "4", "--verify", "structure", *args])


def test_era_download_retries_a_busy_host_by_the_shared_policy(sample_dir, network, tmp_path):
    from era_tools.download import RETRY
    from era_tools.serve.app import make_app
    from era_tools.serve.testing import ServerThread

    assert RETRY.tries == 4 and [RETRY.delay(n) for n in (1, 2, 3)] == [0.4, 0.8, 1.6]
    busy = BusyEras(fail=2)
    with ServerThread(make_app(sample_dir, network, middlewares=[busy.middleware])) as srv:
        r = download(srv, tmp_path / "m")
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "m").glob("*.era"))
    assert names == ["minimal-00003-00fea774.era", "minimal-00004-2cfc1198.era"]
    for n in names:
        assert (tmp_path / "m" / n).read_bytes() == (sample_dir / n).read_bytes()
        assert busy.seen[n] == 3  # two busy answers, then the file

    busy = BusyEras(fail=99)
    with ServerThread(make_app(sample_dir, network, middlewares=[busy.middleware])) as srv:
        r = download(srv, tmp_path / "n", "--jobs", "1")
        url = srv.url
    assert r.exit_code == 2, r.output
    assert f"{url}minimal-00003-00fea774.era: failed after 4 tries: HTTP 503" in r.output
    assert busy.seen["minimal-00003-00fea774.era"] == 4
