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
