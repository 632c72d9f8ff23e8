#!/usr/bin/env python3
"""Benchmark the range fast path of the shared HTTP client (sync/peers.py HttpClient.get_into,
through BackfillPeer.fetch) against a baseline tree (default /work/main: the code before the
shared client), in the same run.

A raw-socket server on 127.0.0.1 answers every range request with the same ~18 MB reply (the
size of 8 mainnet epochs): real chunks of `era serve` over sample_eras/ repeated, kept alive.
Each tree runs in its own process (`--_child TREE`) and fetches and splits the reply
`--fetches` times; rounds alternate the two trees and the medians are printed with MB/s,
CPU ms per reply, the CPU flags and the code path (which client class ran).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_BYTES = 18 << 20
SLOTS = 64


def range_reply() -> tuple[bytes, int]:
    """(body, slot count) of a range reply of about TARGET_BYTES, from `era serve`."""
    sys.path.insert(0, str(ROOT))
    import urllib.request

    from era_tools.config import load_config
    from era_tools.serve.app import make_app
    from era_tools.serve.testing import ServerThread

    eras = ROOT / "sample_eras"
    with ServerThread(make_app(eras, load_config(eras / "spec.json"))) as srv:
        url = srv.url.rstrip("/") + f"/era_tools/v1/blocks_by_range?start_slot=64&count={SLOTS}"
        with urllib.request.urlopen(urllib.request.Request(
                url, headers={"Accept": "application/octet-stream"})) as r:
            one = r.read()
    n = max(1, TARGET_BYTES // len(one))
    return one * n, SLOTS * n


def serve(body: bytes, last: int) -> tuple[socket.socket, str]:
    sock = socket.create_server(("127.0.0.1", 0))
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            b"Era-Tools-Last-Slot: %d\r\nContent-Length: %d\r\n\r\n" % (last, len(body)))

    def conn(c):
        with c:
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                buf = buf.split(b"\r\n\r\n", 1)[1]
                try:
                    c.sendall(head)
                    c.sendall(body)
                except OSError:
                    return

    def loop():
        while True:
            try:
                c, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=conn, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def child(tree: str, url: str, slots: int, fetches: int) -> dict:
    sys.path.insert(0, tree)
    from era_tools.sync import peers

    peer = peers.BackfillPeer(url, timeout=30)
    peer.kind = "range"
    path = "HttpClient.get_into" if hasattr(peers, "HttpClient") else "BackfillPeer._get_into"
    blocks = len(peer.fetch(0, slots - 1).blocks)  # warm: connection, buffer
    t0, c0 = time.perf_counter(), time.process_time()
    nbytes = 0
    for _ in range(fetches):
        reply = peer.fetch(0, slots - 1)
        nbytes += reply.nbytes
        assert len(reply.blocks) == blocks > 0
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peer.close()
    return {"tree": tree, "path": path, "mb_s": nbytes / wall / 1e6,
            "cpu_ms_per_reply": 1000 * cpu / fetches, "reply_mb": nbytes / fetches / 1e6,
            "module": peers.__file__, "blocks": blocks}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="/work/main", help="tree to compare against")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--fetches", type=int, default=20, help="replies per round")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--slots", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._child:
        print(json.dumps(child(a._child, a.url, a.slots, a.fetches)))
        return 0

    sys.path.insert(0, str(ROOT / "scripts"))
    from benchenv import cpu_flags, cpu_model

    body, slots = range_reply()
    sock, url = serve(body, slots - 1)
    trees = {"baseline": os.path.abspath(a.baseline), "this tree": str(ROOT)}
    got: dict[str, list] = {k: [] for k in trees}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for r in range(a.rounds):
        for name, tree in (trees.items() if r % 2 == 0 else reversed(trees.items())):
            out = subprocess.run([sys.executable, __file__, "--_child", tree, "--url", url,
                                  "--slots", str(slots), "--fetches", str(a.fetches)],
                                 capture_output=True, text=True, env=env)
            if out.returncode:
                sys.exit(f"{name} ({tree}) failed:\n{out.stderr[-3000:]}")
            got[name].append(json.loads(out.stdout))
    sock.close()
    print(f"cpu: {cpu_model()}  flags: {cpu_flags()}  load average: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"reply: {len(body) / 1e6:.1f} MB, {got['this tree'][0]['blocks']} blocks over "
          f"{slots} slots; {a.rounds} rounds x "
          f"{a.fetches} replies per tree")
    for name, rows in got.items():
        rev = subprocess.run(["git", "-C", trees[name], "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        print(f"{name:>10} {rev}: {statistics.median(x['mb_s'] for x in rows):7.0f} MB/s  "
              f"{statistics.median(x['cpu_ms_per_reply'] for x in rows):6.1f} CPU ms/reply  "
              f"({rows[0]['path']}, {rows[0]['module']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
