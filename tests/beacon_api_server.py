"""A small real HTTP server speaking the Beacon API over the fixture chain (stdlib only).

    with BeaconApiServer(FIXTURE) as srv:
        srv.url                      # http://127.0.0.1:<port>
        srv.faults.bad_link_slot = 100

Endpoints: /eth/v1/config/spec, /eth/v1/beacon/genesis, /eth/v1/node/syncing,
/eth/v1/beacon/states/{id}/finality_checkpoints, /eth/v2/beacon/blocks/{slot} (SSZ with
Eth-Consensus-Version; 404 for an empty slot), /eth/v2/debug/beacon/states/{slot}.

Fault switches (attributes of `srv.faults`):
  bad_link_slot     serve the block at that slot with a parent_root that does not link
  other_network     serve another genesis_validators_root (a different network)
  syncing           report is_syncing true
  json_only         ignore Accept and answer blocks in JSON (older nodes)
  fail_every        answer HTTP 500 to every Nth block request (retries must cope)
  bad_state_slot    serve that state with one block_roots entry changed
  stall             hold every request open without answering (until the server stops)
  no_version_header send no Eth-Consensus-Version header (Lodestar 1.5.1)
  finalized_404     answer 404 to the first N `states/finalized` requests after each move of
                    finality (Lodestar while it moves its finalized checkpoint)
  hide_slot         answer 404 for the block at that slot (claim it empty)
  no_states         a set of slots whose states are 404 (a node that pruned them)
  bad_state_tail    serve that state with its last byte changed (block_roots and
                    state_roots intact: only its root shows it)
  rewound           (epoch, root): report that finalized checkpoint (a rewound finality)
  fork_from         serve a fork that leaves the chain at that slot: the block there with
                    another state_root, every later block re-parented onto the fork (roots
                    and links check out; the finalized checkpoint stays the real one)

A live chain (`era sync` tests): `srv.finalized_epoch` is what finality_checkpoints, the
`finalized` state id and the event stream say (the fixture's own by default); with
`srv.reveal_ahead = N` blocks past finalized slot + N are not produced yet (404), and states
past the finalized slot are 404.  `srv.advance(k)` moves finality k epochs (up to the
fixture's), `srv.advance_per_poll = k` does so on every finality_checkpoints request, and
`srv.events = True` serves /eth/v1/events?topics=finalized_checkpoint (server-sent events).
Usable as a script too: `python tests/beacon_api_server.py [--port N]` serves until killed.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "lodestar-minimal-1"

# SignedBeaconBlock: offset(4) | signature(96) | slot(8) | proposer(8) | parent_root(32) |
# state_root(32)
PARENT_ROOT = slice(116, 148)
STATE_ROOT = slice(148, 180)
BLOCK_ROOTS_OFFSET = 176


def send_reply(h, status: int, body: bytes, ctype: str, headers: dict | None = None):
    """One whole answer on a BaseHTTPRequestHandler `h` (also tests/lightclient_server.py's)."""
    h.send_response(status)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(body)


def send_json(h, obj, status=200, headers=None):
    send_reply(h, status, json.dumps(obj).encode(), "application/json", headers)


@dataclass
class Faults:
    bad_link_slot: int | None = None
    other_network: bool = False
    syncing: bool = False
    json_only: bool = False
    fail_every: int = 0
    bad_state_slot: int | None = None
    stall: bool = False
    no_version_header: bool = False
    finalized_404: int = 0
    rewound: tuple | None = None
    fork_from: int | None = None
    hide_slot: int | None = None
    no_states: frozenset = frozenset()
    bad_state_tail: int | None = None
    state_delay: float = 0.0   # seconds before each state answer (a large state over a WAN)


class FixtureChain:
    def __init__(self, fixture: Path):
        self.dir = Path(fixture)
        self.manifest = json.loads((self.dir / "manifest.json").read_text())
        self.spec = json.loads((self.dir / "config" / "spec.json").read_text())
        self.genesis = json.loads((self.dir / "config" / "genesis.json").read_text())
        self.blocks = {b["slot"]: b for b in self.manifest["blocks"]}
        self.states = {s["slot"]: s for s in self.manifest["states"]}
        self.finalized_epoch = int(self.manifest["finalized"]["epoch"])
        self.roots = {b["slot"]: b["root"] for b in self.manifest["blocks"] if b.get("file")}

    def root_at(self, slot: int) -> str:
        """The root of the latest block at or before `slot`."""
        while slot not in self.roots:
            slot -= 1
        return self.roots[slot]

    def block_ssz(self, slot: int) -> tuple[str, bytes] | None:
        b = self.blocks.get(slot)
        if not b or not b.get("file"):
            return None
        return b["fork"], (self.dir / b["file"]).read_bytes()

    def state_ssz(self, slot: int) -> tuple[str, bytes] | None:
        s = self.states.get(slot)
        if not s:
            return None
        return s["fork"], (self.dir / s["file"]).read_bytes()


class BeaconApiServer:
    def __init__(self, fixture: Path = FIXTURE, port: int = 0):
        self.chain = FixtureChain(fixture)
        self.faults = Faults()
        self.requests = 0
        self._lock = threading.Lock()
        self.finalized_epoch = self.chain.finalized_epoch
        self.reveal_ahead: int | None = None
        self.advance_per_poll = 0
        self.events = False
        self.finality_moves: list = []        # (epoch, time.monotonic()) per move
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._404s_left = 0
        self._forks: dict = {}   # fork_from -> {slot: (block bytes, root) or None}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):
                with server._lock:
                    server.requests += 1
                    n = server.requests
                try:
                    server._route(self, n)
                except (BrokenPipeError, ConnectionResetError):  # the client was killed
                    pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                # a client that hangs up while its answer is flushed: not the server's
                # error, and a traceback here lands in the output of the command under test
                import sys

                if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                    super().handle_error(request, client_address)

        self.httpd = Server(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "BeaconApiServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- the live chain --------------------------------------------------------------------
    @property
    def spe(self) -> int:
        return int(self.chain.spec["SLOTS_PER_EPOCH"])

    @property
    def finalized_slot(self) -> int:
        return self.finalized_epoch * self.spe

    def advance(self, epochs: int = 1) -> bool:
        """Move finality `epochs` epochs (not past the fixture's); False when it cannot."""
        import time

        with self._cond:
            new = min(self.chain.finalized_epoch, self.finalized_epoch + epochs)
            if new == self.finalized_epoch:
                return False
            self.finalized_epoch = new
            self._404s_left = self.faults.finalized_404
            self.finality_moves.append((new, time.monotonic()))
            self._cond.notify_all()
        return True

    def _revealed(self, slot: int) -> bool:
        return self.reveal_ahead is None or slot <= self.finalized_slot + self.reveal_ahead

    def _events(self, h) -> None:
        if not self.events:
            return self._not_found(h, "event stream")
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        h.wfile.flush()
        seen = self.finalized_epoch
        while not self._stopping.is_set():
            with self._cond:
                if self.finalized_epoch == seen:
                    self._cond.wait(0.5)
                epoch = self.finalized_epoch
            if epoch != seen:
                seen = epoch
                slot = epoch * self.spe
                data = json.dumps({"block": self.chain.root_at(slot), "state": "0x" + "00" * 32,
                                   "epoch": str(epoch), "execution_optimistic": False})
                h.wfile.write(f"event: finalized_checkpoint\ndata: {data}\n\n".encode())
                h.wfile.flush()

    # -- routing ---------------------------------------------------------------------------
    _send = staticmethod(send_reply)
    _json = staticmethod(send_json)

    def _forked(self, slot: int) -> bytes:
        """The block at `slot` on the fork of `faults.fork_from` (see Faults)."""
        from era_tools.ssz.layout import block_root

        c, start = self.chain, self.faults.fork_from
        net_preset = c.spec.get("PRESET_BASE", "minimal")
        with self._lock:
            forks = self._forks.setdefault(start, {})
            prev = None
            for s in range(start, slot + 1):
                if s not in forks:
                    got = c.block_ssz(s)
                    if got is None:
                        forks[s] = None
                        continue
                    fork, data = got
                    data = bytearray(data)
                    if s == start:
                        data[STATE_ROOT] = b"\x55" * 32
                    elif prev is not None:
                        data[PARENT_ROOT] = prev[1]
                    forks[s] = (bytes(data), block_root(bytes(data), fork, net_preset, "fork"))
                if forks[s] is not None:
                    prev = forks[s]
            return forks[slot][0]

    def _not_found(self, h, what):
        self._json(h, {"code": 404, "message": f"{what} not found"}, status=404)

    def _route(self, h, n: int) -> None:
        path = h.path.split("?")[0]
        parts = path.strip("/").split("/")
        f = self.faults
        c = self.chain
        if f.stall:
            self._stopping.wait()
            return
        if path == "/eth/v1/events":
            return self._events(h)
        if path == "/eth/v1/config/spec":
            return self._json(h, {"data": c.spec})
        if path == "/eth/v1/beacon/genesis":
            g = dict(c.genesis)
            if f.other_network:
                g["genesis_validators_root"] = "0x" + "ab" * 32
            return self._json(h, {"data": g})
        if path == "/eth/v1/node/syncing":
            fin_slot = self.finalized_slot
            return self._json(h, {"data": {
                "head_slot": str(fin_slot + 23), "sync_distance": "900" if f.syncing else "0",
                "is_syncing": f.syncing, "is_optimistic": False, "el_offline": False}})
        if len(parts) == 6 and parts[:4] == ["eth", "v1", "beacon", "states"] and \
                parts[5] == "finality_checkpoints":
            if self.advance_per_poll:
                self.advance(self.advance_per_poll)
            e, root = self.finalized_epoch, c.root_at(self.finalized_slot)
            if f.rewound is not None:
                e, root = f.rewound
            cp = {"epoch": str(e), "root": root}
            return self._json(h, {"data": {"previous_justified": cp, "current_justified": cp,
                                           "finalized": cp}})
        if len(parts) == 5 and parts[:4] == ["eth", "v2", "beacon", "blocks"]:
            try:
                slot = int(parts[4])
            except ValueError:
                return self._json(h, {"code": 400, "message": "bad block id"}, status=400)
            if f.fail_every and n % f.fail_every == 0:
                return self._json(h, {"code": 500, "message": "injected failure"}, status=500)
            got = c.block_ssz(slot) if self._revealed(slot) and slot != f.hide_slot else None
            if got is None:
                return self._not_found(h, f"block at slot {slot}")
            fork, data = got
            if f.fork_from is not None and slot >= f.fork_from:
                data = self._forked(slot)
            if f.bad_link_slot == slot:
                data = bytearray(data)
                data[PARENT_ROOT] = b"\x66" * 32
                data = bytes(data)
            vh = {} if f.no_version_header else {"Eth-Consensus-Version": fork}
            if f.json_only:
                return self._json(h, {"version": fork, "execution_optimistic": False,
                                      "finalized": True, "data": _block_json(data, fork)},
                                  headers=vh)
            return self._send(h, 200, data, "application/octet-stream", vh)
        if len(parts) == 6 and parts[:5] == ["eth", "v2", "debug", "beacon", "states"]:
            if f.state_delay:
                self._stopping.wait(f.state_delay)
            if parts[5] == "finalized":
                with self._cond:
                    if self._404s_left > 0:
                        self._404s_left -= 1
                        return self._not_found(h, "finalized state (moving)")
                parts[5] = str(self.finalized_slot)
            try:
                slot = int(parts[5])
            except ValueError:
                return self._json(h, {"code": 400, "message": "bad state id"}, status=400)
            got = c.state_ssz(slot) if slot <= self.finalized_slot and \
                slot not in f.no_states else None
            if got is None:
                return self._not_found(h, f"state at slot {slot}")
            fork, data = got
            if f.bad_state_tail == slot:
                data = data[:-1] + bytes([data[-1] ^ 1])
            if f.bad_state_slot == slot:
                data = bytearray(data)
                i = BLOCK_ROOTS_OFFSET + 32 * 5
                data[i:i + 32] = b"\x77" * 32
                data = bytes(data)
            return self._send(h, 200, data, "application/octet-stream",
                              {} if f.no_version_header else {"Eth-Consensus-Version": fork})
        return self._not_found(h, path)


def _block_json(data: bytes, fork: str):
    """The Beacon API JSON of an SSZ block (via era_tools.ssz's JSON mapping)."""
    from era_tools import ssz
    from era_tools.ssz import json as ssz_json

    blk = ssz.decode_block(data, fork, "minimal")
    return ssz_json.to_json(blk)


if __name__ == "__main__":  # pragma: no cover - manual use
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--fixture", type=Path, default=FIXTURE)
    a = ap.parse_args()
    srv = BeaconApiServer(a.fixture, a.port)
    print(srv.url, flush=True)
    try:
        srv.httpd.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
