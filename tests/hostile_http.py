"""A raw-socket HTTP peer on 127.0.0.1 that says exactly the bytes it is told to: headers no
HTTP library would write (a Content-Length of 10 GB or of "²"), a body cut mid-chunk, a close
at any point.  For the regression tests of tests/test_fuzz_regressions.py and the hostile-peer
rows of scripts/fault_campaign.py.

    with HostilePeer(lambda path: [b"HTTP/1.1 200 OK\\r\\n...", b"body", CLOSE]) as p:
        p.url, p.requests                # http://127.0.0.1:PORT, request paths seen

`respond(path)` returns a list of parts: bytes are sent, a float sleeps that many seconds,
CLOSE closes the connection at once (no more parts).  After the parts the connection is closed.
"""

from __future__ import annotations

import socket
import threading
import time

CLOSE = object()


def response(status: str = "200 OK", headers: dict | None = None, body: bytes = b"",
             content_length: str | None = None) -> bytes:
    """The bytes of one HTTP/1.1 response; `content_length` overrides the real length (as a
    string, so it may lie or be garbage)."""
    h = {"Content-Type": "application/octet-stream", "Connection": "close"}
    h.update(headers or {})
    h["Content-Length"] = str(len(body)) if content_length is None else content_length
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    return head.encode("latin-1") + body


class HostilePeer:
    def __init__(self, respond):
        self.respond = respond
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[str] = []
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c: socket.socket):
        try:
            c.settimeout(10)
            req = b""
            while b"\r\n\r\n" not in req and len(req) < 65536:
                chunk = c.recv(4096)
                if not chunk:
                    return
                req += chunk
            parts = req.split(b" ")
            path = parts[1].decode("latin-1") if len(parts) > 1 else ""
            self.requests.append(path)
            for part in self.respond(path):
                if part is CLOSE:
                    break
                if isinstance(part, float):
                    time.sleep(part)
                else:
                    c.sendall(part)
        except OSError:  # the client went away: fine
            pass
        finally:
            c.close()

    def close(self):
        self._stop = True
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
