"""BackfillPeer's range requests over a kept-alive http.client connection: a peer that closes
the connection between requests (without saying so) is reconnected once, a reply over the size
limit is refused while it is read, and close() closes every thread's connection.  Real sockets
on 127.0.0.1."""

from __future__ import annotations

import socket
import threading

import pytest

from era_tools.sync.peers import RANGE_PATH, BackfillPeer, PeerFault


class OneShotServer:
    """Answers each connection's first request with an empty range reply (or `body`), then
    closes it without a `Connection: close` header; counts connections."""

    def __init__(self, body: bytes = b"", last: int = 9, length: bool = True):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.body, self.last, self.length = body, last, length
        self.connections = 0
        self.paths: list[str] = []
        self.open: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            req = b""
            while b"\r\n\r\n" not in req:
                chunk = c.recv(4096)
                if not chunk:
                    break
                req += chunk
            self.paths.append(req.split(b" ")[1].decode() if req else "")
            try:
                size = (b"Content-Length: %d" % len(self.body) if self.length else
                        b"Connection: close")  # then the body runs to the end of the stream
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                          b"Era-Tools-Last-Slot: %d\r\n%s\r\n\r\n"
                          % (self.last, size) + self.body)
            except OSError:  # the client stopped reading (a refused reply)
                pass
            c.close()

    def close(self):
        self.sock.close()


def test_a_closed_kept_alive_connection_is_reopened_once():
    srv = OneShotServer()
    peer = BackfillPeer(srv.url, timeout=5)
    peer.kind = "range"
    try:
        for _ in range(3):
            reply = peer.fetch(10, 20)
            assert reply.blocks == [] and reply.last_slot == 9
        assert srv.connections == 3
        assert srv.paths == [f"{RANGE_PATH}?start_slot=10&count=11"] * 3
    finally:
        peer.close()
        srv.close()


@pytest.mark.parametrize("length", [True, False])
def test_a_reply_over_the_limit_is_refused(length):
    """By its Content-Length, or while it is read when it announces none."""
    srv = OneShotServer(body=b"\0" * (3 << 20), length=length)
    peer = BackfillPeer(srv.url, timeout=5)
    try:
        with pytest.raises(PeerFault) as exc:
            peer._get_into(f"{RANGE_PATH}?start_slot=10&count=1", "application/octet-stream",
                           1 << 20)
        want = ("response of 3145728 bytes exceeds the limit 1048576" if length else
                "response exceeds the limit 1048576 bytes")
        assert str(exc.value) == f"{srv.url}{RANGE_PATH}?start_slot=10&count=1: {want}"
        assert not peer._conns  # the half-read connection was dropped
    finally:
        peer.close()
        srv.close()


def test_close_closes_every_threads_connection():
    srv = OneShotServer()
    peer = BackfillPeer(srv.url, timeout=5)
    peer.kind = "range"
    threads = [threading.Thread(target=peer.fetch, args=(10, 20)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(peer._conns) == 3
    peer.close()
    assert not peer._conns
    srv.close()


def _chunk(payload: bytes, digest: bytes = b"\x01\x02\x03\x04") -> bytes:
    from era_tools import framing
    from era_tools.serve.app import uvarint

    return b"\x00" + digest + uvarint(len(payload)) + framing.compress(payload)


def _blocks(n: int, seed: int = 7) -> list[bytes]:
    import random

    rng = random.Random(seed)  # incompressible, 100 B..3 MB: some bigger than one read
    return [rng.randbytes([100, 5000, 100_000, 1_500_000, 3_000_000][i % 5]) for i in range(n)]


def test_a_range_reply_is_parsed_while_it_arrives_in_a_small_buffer():
    """A 14 MB reply, with blocks bigger than one read, gives the same blocks as parsing it
    whole, and the thread's buffer never grows past its 4 MB start."""
    from era_tools.sync.peers import parse_range_body

    payloads = _blocks(15)
    body = b"".join(_chunk(p) for p in payloads)
    assert len(body) > 12 << 20
    srv = OneShotServer(body=body, last=40)
    peer = BackfillPeer(srv.url, timeout=10)
    peer.kind = "range"
    try:
        reply = peer.fetch(10, 40)
        whole = parse_range_body(body, 10, 40, "whole")
        assert [(b.framed, b.length, b.digest) for b in reply.blocks] == \
            [(b.framed, b.length, b.digest) for b in whole]
        assert [b.length for b in reply.blocks] == [len(p) for p in payloads]
        assert reply.nbytes == len(body)
        assert len(peer.http._local.buf) == 4 << 20
    finally:
        peer.close()
        srv.close()


@pytest.mark.parametrize("tail, want", [
    # an error chunk after two blocks (ResourceUnavailable: "missing")
    (b"\x03" + bytes([5]) + __import__("era_tools.framing").framing.compress(b"gone!"),
     "error chunk 3 after 2 blocks: gone!"),
    # a block cut short by the end of the body
    (_chunk(b"x" * 300)[:-20], "snappy chunk runs past the response"),
    (_chunk(b"x" * 300)[:19], "framed payload truncated"),
    (_chunk(b"x" * 300)[:12], "framed payload truncated (stream identifier)"),
    (b"\x00\x01\x02", "chunk header truncated"),
])
def test_the_end_of_a_streamed_reply_is_checked(tail, want):
    body = b"".join(_chunk(p) for p in _blocks(2)) + tail
    srv = OneShotServer(body=body, last=40)
    peer = BackfillPeer(srv.url, timeout=10)
    peer.kind = "range"
    try:
        with pytest.raises(PeerFault) as exc:
            peer.fetch(10, 40)
        assert want in str(exc.value)
        assert str(exc.value).startswith(f"{srv.url}{RANGE_PATH}?start_slot=10&count=31: ")
    finally:
        peer.close()
        srv.close()


def test_a_block_chunk_padded_without_end_is_refused_at_its_bound():
    """Snappy padding chunks add nothing to a block: a peer could stream one block without
    end.  It is refused once it passes MAX_CHUNK_WIRE_BYTES, with the buffer bounded by it."""
    from era_tools.serve.app import uvarint
    from era_tools.sync.peers import MAX_CHUNK_WIRE_BYTES

    pad = b"\xfe" + (65536).to_bytes(3, "little") + b"\0" * 65536
    body = (b"\x00\x01\x02\x03\x04" + uvarint(1000) + b"\xff\x06\x00\x00sNaPpY" +
            pad * (MAX_CHUNK_WIRE_BYTES // len(pad) + 8))
    srv = OneShotServer(body=body, last=40, length=False)
    peer = BackfillPeer(srv.url, timeout=10)
    peer.kind = "range"
    try:
        with pytest.raises(PeerFault) as exc:
            peer.fetch(10, 40)
        assert f"byte 0: a block chunk runs past {MAX_CHUNK_WIRE_BYTES} bytes" in str(exc.value)
        assert len(peer.http._local.buf) <= 2 * MAX_CHUNK_WIRE_BYTES
    finally:
        peer.close()
        srv.close()


def test_a_chunk_trickled_in_small_pieces_is_walked_a_logarithmic_number_of_times(
        monkeypatch):
    """A peer sending one 3 MB block 1 KB at a time: an unfinished chunk is walked again
    only once the bytes held have doubled (linear time), not at every piece (quadratic)."""
    import math

    import era_tools.sync.peers as peers

    walks = []
    real = peers._framed_end
    monkeypatch.setattr(peers, "_framed_end", lambda *a, **k: walks.append(1) or real(*a, **k))
    payload = _blocks(5)[4]
    body = _chunk(payload)
    rb, buf, taken = peers.RangeBody("trickle"), bytearray(), 0
    for i in range(0, len(body), 1024):
        buf += body[i:i + 1024]
        used = rb.feed(memoryview(buf), taken)
        del buf[:used]
        taken += used
    blocks = rb.finish(bytes(buf))
    assert [b.length for b in blocks] == [len(payload)]
    assert len(walks) <= 2 * math.log2(len(body)), len(walks)  # 3,000 pieces
