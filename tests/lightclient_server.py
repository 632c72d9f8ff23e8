"""A small real HTTP server (stdlib) serving the committed light-client data
(tests/data/lightclient/) over the Beacon API `light_client` routes, honest or hostile.

    with LightClientServer("honest") as srv:
        srv.url

Routes: /eth/v1/config/spec, /eth/v1/beacon/genesis, /eth/v1/node/syncing,
/eth/v1/beacon/states/head/finality_checkpoints (the checkpoint below, for `era sync`),
/eth/v1/beacon/light_client/bootstrap/{root}, .../updates?start_period=P&count=N,
.../finality_update, .../optimistic_update.  SSZ when asked (`Accept:
application/octet-stream`, with Eth-Consensus-Version; the updates list as chunks
`<uint64 length><fork digest><ssz>`, digests from the executable spec), else JSON
(`{"version", "data"}`).  Like Lodestar: counts above MAX_COUNT are refused (400), and a
period it lacks, or a range past its newest period, is `500 No partialUpdate available`.

Modes:
  honest          as above
  json_only       ignores Accept: JSON always (older nodes)
  bad_signature   updates signed... by another update's signature
  bit_flipped     one participation bit flipped in every update
  bad_branch      the finality branch proves another root
  wrong_digest    updates labelled with another fork's digest (SSZ) / version (JSON)
  stale           knows periods 0..1 only, and an old finality update; no optimistic update
  withhold        answers updates with an empty list; no finality/optimistic update
  flaky           answers 500 to its first FLAKY_FAILS light-client requests, then honest
  bad_bootstrap   its bootstraps carry a sync committee that does not prove
  bad_state       honest light-client data, but its finalized checkpoint state is altered
  bad_block       honest light-client data, but its finalized checkpoint block is altered
  late_finality   no finality update at the first request (404), the honest one after
  bad_parent      honest light-client data, but a block below the checkpoint is altered
  far_head        announces an optimistic update signed in sync-committee period 10
  other_network   honest data, but /eth/v1/beacon/genesis names another genesis root
  json_no_version JSON only, without `version` or Eth-Consensus-Version (older nodes)

`state_delay`: seconds to wait before answering a state request (crash tests); `max_count`:
the largest `count` it accepts.

For `era checkpoint-sync` it also serves the finalized checkpoint (manifest `checkpoint`):
/eth/v2/debug/beacon/states/{finalized|slot} and /eth/v2/beacon/blocks/{slot}.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from era_tools import ssz  # noqa: E402
from era_tools.ssz.json import to_json  # noqa: E402
from tests import lightclient_data as D  # noqa: E402
from tests.beacon_api_server import send_json, send_reply  # noqa: E402

MAX_COUNT = 4
FLAKY_FAILS = 3
LC = "/eth/v1/beacon/light_client"


def _replace(obj, **fields):
    cls = type(obj)
    return cls(**{n: fields.get(n, getattr(obj, n)) for n, _ in cls._meta.fields})


def corrupt(mode: str, obj):
    """The hostile version of an update / finality update (same type)."""
    if mode == "bad_signature":
        other = D.decode(D.items("sample")[3])
        return _replace(obj, sync_aggregate=_replace(
            obj.sync_aggregate,
            sync_committee_signature=other.sync_aggregate.sync_committee_signature))
    if mode == "bit_flipped":
        bits = list(obj.sync_aggregate.sync_committee_bits)
        bits[5] = not bits[5]
        return _replace(obj, sync_aggregate=_replace(obj.sync_aggregate,
                                                     sync_committee_bits=tuple(bits)))
    if mode == "bad_branch" and hasattr(obj, "finality_branch"):
        branch = list(obj.finality_branch)
        branch[0] = b"\x11" * 32
        return _replace(obj, finality_branch=tuple(branch))
    return obj


class LightClientServer:
    def __init__(self, mode: str = "honest", port: int = 0, state_delay: float = 0.0,
                 max_count: int = MAX_COUNT):
        self.mode = mode
        self.max_count = max_count
        self.state_delay = state_delay
        self.requests: list[str] = []
        self.fails_left = FLAKY_FAILS if mode == "flaky" else 0
        self._lock = threading.Lock()
        m = D.manifest()
        self.spec_json = json.loads((D.DATA / "spec.json").read_text())
        self.genesis = json.loads((D.DATA / "genesis.json").read_text())
        fulu = D.phases()["fulu"]
        self.gvr = D.gvr()
        self.digest = lambda slot: bytes(fulu.compute_fork_digest(
            self.gvr, int(slot) // 8))
        self.bootstraps = {i["block_root"]: i for i in D.items("bootstrap")}
        periods = {i["period"]: i for i in D.items("update")}
        if mode == "stale":
            periods = {p: i for p, i in periods.items() if p <= 1}
        self.periods = periods
        self.finality = (D.items("finality_update_old") if mode == "stale"
                         else D.items("finality_update"))[0]
        self.optimistic = None if mode in ("stale",) else D.items("optimistic_update")[0]
        if mode == "withhold":
            self.finality = self.optimistic = None
        self._last_period = max(periods)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                try:
                    server._route(self)
                except Exception as exc:  # keep the test's failure visible as a 500
                    server._send(self, 500, json.dumps({"message": repr(exc)}).encode(),
                                 "application/json")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- answers ------------------------------------------------------------------------------
    _send = staticmethod(send_reply)
    _json = staticmethod(send_json)

    def _wants_ssz(self, h) -> bool:
        return "application/octet-stream" in h.headers.get("Accept", "") and \
            self.mode not in ("json_only", "json_no_version")

    def _item(self, h, item: dict, obj=None):
        obj = obj if obj is not None else D.decode(item)
        fork = item["fork"]
        if self._wants_ssz(h):
            self._send(h, 200, ssz.encode(obj), "application/octet-stream",
                       {"Eth-Consensus-Version": fork})
        elif self.mode == "json_no_version":
            self._json(h, {"data": to_json(obj)})
        else:
            self._json(h, {"version": fork, "data": to_json(obj)},
                       headers={"Eth-Consensus-Version": fork})

    def _route(self, h) -> None:
        u = urlsplit(h.path)
        path = u.path
        with self._lock:
            self.requests.append(h.path)
            if path.startswith(LC) and self.fails_left > 0:
                self.fails_left -= 1
                return self._json(h, {"message": "overloaded"}, status=500)
        if path == "/eth/v1/config/spec":
            return self._json(h, {"data": self.spec_json})
        if path == "/eth/v1/beacon/genesis":
            if self.mode == "other_network":
                return self._json(h, {"data": dict(self.genesis, genesis_validators_root="0x"
                                                   + "77" * 32)})
            return self._json(h, {"data": self.genesis})
        if path == "/eth/v1/node/syncing":
            return self._json(h, {"data": {"is_syncing": False, "head_slot": "224",
                                           "sync_distance": "0"}})
        if path == "/eth/v1/beacon/states/head/finality_checkpoints":  # for `era sync`
            cp = D.manifest()["checkpoint"]
            fin = D.manifest()["expected"]["finalized"]
            epoch = cp["state_slot"] // int(self.spec_json["SLOTS_PER_EPOCH"])
            return self._json(h, {"data": {"finalized": {"epoch": str(epoch),
                                                         "root": fin["root"]}}})
        if path.startswith(f"{LC}/bootstrap/"):
            item = self.bootstraps.get(path.rsplit("/", 1)[1].lower())
            if item is None:
                return self._json(h, {"message": "bootstrap not available"}, status=500)
            obj = D.decode(item)
            if self.mode == "bad_bootstrap":
                c = obj.current_sync_committee
                obj = _replace(obj, current_sync_committee=_replace(
                    c, pubkeys=tuple(c.pubkeys[1:]) + (c.pubkeys[0],)))
            return self._item(h, item, obj)
        if path == f"{LC}/updates":
            q = parse_qs(u.query)
            try:
                start, count = int(q["start_period"][0]), int(q["count"][0])
            except (KeyError, ValueError):
                return self._json(h, {"message": "bad query"}, status=400)
            if count > self.max_count:
                return self._json(h, {"message": f"count {count} > {self.max_count}"},
                                  status=400)
            if self.mode == "withhold":
                return self._updates(h, [])
            wanted = list(range(start, start + count))
            if any(p not in self.periods for p in wanted) or start + count - 1 > \
                    self._last_period:
                missing = next(p for p in wanted if p not in self.periods)
                return self._json(h, {"message": f"No partialUpdate available for period "
                                                 f"{missing}"}, status=500)
            return self._updates(h, [self.periods[p] for p in wanted])
        cp = D.manifest()["checkpoint"]
        if path.startswith("/eth/v2/debug/beacon/states/"):
            sid = path.rsplit("/", 1)[1]
            early = cp["early_state"]
            if sid in ("finalized", str(cp["state_slot"])):
                file, fork = cp["state_file"], cp["state_fork"]
            elif sid == str(early["slot"]):
                file, fork = early["file"], early["fork"]
            else:
                return self._json(h, {"message": "state not available"}, status=404)
            if self.state_delay:
                import time

                time.sleep(self.state_delay)
            data = bytearray((D.DATA / file).read_bytes())
            if self.mode == "bad_state":
                data[200] ^= 1  # inside block_roots
            return self._send(h, 200, bytes(data), "application/octet-stream",
                              {"Eth-Consensus-Version": fork})
        if path.startswith("/eth/v2/beacon/blocks/"):
            bid = path.rsplit("/", 1)[1].lower()
            blk = next((b for b in cp["blocks"] if bid in (str(b["slot"]), b["root"])), None)
            if blk is None:
                return self._json(h, {"message": "block not available"}, status=404)
            data = bytearray((D.DATA / blk["file"]).read_bytes())
            if self.mode == "bad_block" and blk["slot"] == cp["block_slot"]:
                data[200] ^= 1  # inside the body's randao_reveal
            if self.mode == "bad_parent" and blk["slot"] == cp["block_slot"] - 3:
                data[120] ^= 1  # its parent_root
            return self._send(h, 200, bytes(data), "application/octet-stream",
                              {"Eth-Consensus-Version": blk["fork"]})
        if path == f"{LC}/finality_update":
            if self.mode == "late_finality" and not any(
                    r.endswith("/finality_update") for r in self.requests[:-1]):
                return self._json(h, {"message": "no finality update yet"}, status=404)
            if self.finality is None:
                return self._json(h, {"message": "no finality update"}, status=404)
            return self._item(h, self.finality, corrupt(self.mode, D.decode(self.finality)))
        if path == f"{LC}/optimistic_update":
            if self.optimistic is None:
                return self._json(h, {"message": "no optimistic update"}, status=404)
            if self.mode == "far_head":
                return self._item(h, self.optimistic, _replace(
                    D.decode(self.optimistic), signature_slot=10 * 64 + 1))
            return self._item(h, self.optimistic)
        return self._json(h, {"message": f"no route {path}"}, status=404)

    def _updates(self, h, items):
        objs = [(i, corrupt(self.mode, D.decode(i))) for i in items]
        if self._wants_ssz(h):
            body = bytearray()
            for item, obj in objs:
                data = ssz.encode(obj)
                slot = int(obj.attested_header.beacon.slot)
                digest = self.digest(slot)
                if self.mode == "wrong_digest":
                    digest = self.digest(slot + 8 * 8 * 2)  # two periods on: another fork
                    if digest == self.digest(slot):
                        digest = b"\xde\xad\xbe\xef"
                body += (len(data) + 4).to_bytes(8, "little") + digest + data
            return self._send(h, 200, bytes(body), "application/octet-stream")
        out = []
        for item, obj in objs:
            version = item["fork"]
            if self.mode == "wrong_digest":
                version = "altair" if version != "altair" else "capella"
            if self.mode == "json_no_version":
                out.append({"data": to_json(obj)})
                continue
            out.append({"version": version, "data": to_json(obj)})
        return self._json(h, out)


if __name__ == "__main__":  # `python tests/lightclient_server.py [MODE] [--port N]`
    import argparse
    import time

    ap = argparse.ArgumentParser(description="Serve tests/data/lightclient over the Beacon API")
    ap.add_argument("mode", nargs="?", default="honest")
    ap.add_argument("--port", type=int, default=8081)
    args = ap.parse_args()
    with LightClientServer(args.mode, args.port) as srv:
        print(srv.url, flush=True)
        while True:
            time.sleep(3600)
