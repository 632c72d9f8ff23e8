#!/usr/bin/env python3
"""Benchmark `era sync`: follow-mode publish latency and forward-sync speed.

1. **Latency** (the issue's goal: an era published within 2 s of its boundary state being
   available).  A live chain (tests/beacon_api_server.py over the fixture chain, in a thread)
   starts finalized at slot 192; `SyncPipeline` follows it in another thread, with the
   node's finalized_checkpoint event stream (and, second, by polling every --poll seconds).
   Each time the previous era is published, finality moves one era on (8 epochs); the
   latency is the time from that move (the moment the era's boundary state becomes
   available) to the era file being in place and listed in checksums.txt and index.json.
2. **Forward sync** (goal: >= 0.9x the verification floor).  `era serve` serves the era
   files (--eras, default sample_eras/) as a Beacon API node; the follow stage pulls every
   slot from genesis to the node's finalized slot into a fresh store (over the node's range
   endpoint: `era serve` has one).  Baselines in the same run: `era pull` (pull.pull, one
   GET per slot) of the same range from the same node, and the floor: the work
   the forward sync must do per block with nothing else (hash_tree_root of each block from
   its bytes, parent links, snappy framing), in the same number of threads.  The forward
   sync checks roots and links, not signatures (as `era pull`), so the floor has no BLS.

Prints the CPU flags, the hashing path and the load average; the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from benchenv import cpu_flags  # noqa: E402  (scripts/benchenv.py)

from era_tools import framing, hashing  # noqa: E402
from era_tools.config import load_config  # noqa: E402
from era_tools.era import EraReader, era_files_in  # noqa: E402
from era_tools.store import ChainStore  # noqa: E402
from era_tools.sync.pipeline import (SyncOptions, SyncPipeline, connect,  # noqa: E402
                                     make_servers)
from era_tools.ssz.layout import block_summary  # noqa: E402
from era_tools.sync.pull import pull  # noqa: E402


def latency(poll: float | None, log) -> list[float]:
    from beacon_api_server import BeaconApiServer

    out = []
    with BeaconApiServer() as srv, tempfile.TemporaryDirectory() as tmp:
        srv.finalized_epoch, srv.reveal_ahead, srv.events = 24, 16, poll is None
        servers = make_servers([srv.url], timeout=10)
        net = connect(servers)
        published: dict[int, float] = {}
        cond = threading.Condition()

        def on_publish(path, t):
            era = int(os.path.basename(path).split("-")[1])
            with cond:
                published[era] = t
                cond.notify_all()

        with ChainStore.open(os.path.join(tmp, "db"), net) as store:
            pipe = SyncPipeline(store, servers, SyncOptions(
                publish_dir=os.path.join(tmp, "pub"), poll_interval=poll or 30.0,
                status_every=1e9), on_publish=on_publish)
            t = threading.Thread(target=lambda: _quiet(pipe.run), daemon=True)
            t.start()
            with cond:
                cond.wait_for(lambda: 3 in published, timeout=120)
            for era in range(4, 17):
                time.sleep(0.2)
                moved = time.monotonic()
                srv.advance(8)
                with cond:
                    if not cond.wait_for(lambda: era in published, timeout=60):
                        raise SystemExit(f"era {era} was not published within 60 s")
                out.append(published[era] - moved)
            pipe.stop()
            t.join(30)
    log(f"  {'event stream' if poll is None else f'polling every {poll:g} s'}: "
        f"median {statistics.median(out):.3f} s, max {max(out):.3f} s over {len(out)} eras")
    return out


def long_pull(state_delay: float, rounds: int, log) -> None:
    """`era pull` of the whole fixture chain (1,025 slots, 16 eras: the finalized state names
    the last era's roots, each older era's boundary state must come before its blocks) from
    tests/beacon_api_server.py, whose states each take `state_delay` s to come (a large state
    over a WAN), with the next era's state fetched while the era before is pulled (this tree)
    and without (`_StatePrefetch.start` a no-op), alternating; seconds per pull."""
    from beacon_api_server import BeaconApiServer

    from era_tools.sync import pull as pull_mod
    from era_tools.sync.peers import BeaconApiClient

    start = pull_mod._StatePrefetch.start
    times: dict[str, list[float]] = {"prefetch": [], "none": []}
    with BeaconApiServer() as srv:
        srv.faults.state_delay = state_delay
        for _ in range(rounds):
            for mode in times:
                pull_mod._StatePrefetch.start = start if mode == "prefetch" else \
                    (lambda self, slot: None)
                try:
                    api = BeaconApiClient(srv.url, timeout=30)
                    net = pull_mod.node_network(api)
                    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp, \
                            ChainStore.open(os.path.join(tmp, "db"), net) as store:
                        t = time.perf_counter()
                        res = pull(store, api, workers=8)
                        times[mode].append(time.perf_counter() - t)
                        assert res.states == 17 and not res.linked_only
                finally:
                    pull_mod._StatePrefetch.start = start
    med = {k: statistics.median(v) for k, v in times.items()}
    log(f"long pull of the fixture chain (16 eras, 17 states), each state answered after "
        f"{state_delay:g} s, median of {rounds}: next era's state fetched during the era "
        f"before {med['prefetch']:.2f} s ({', '.join(f'{x:.2f}' for x in times['prefetch'])}"
        f"), fetched between eras {med['none']:.2f} s "
        f"({', '.join(f'{x:.2f}' for x in times['none'])}); {med['none'] / med['prefetch']:.2f}x")


def _quiet(fn):
    try:
        fn()
    except KeyboardInterrupt:
        pass


def start_node(era_dir: Path, network: str | None, cpus: set | None = None):
    """`era serve` in a subprocess (on `cpus` only, with its worker processes, when given)."""
    cmd = [sys.executable, "-c", "from era_tools.cli import main; main()", "serve",
           str(era_dir), "--port", "0"] + (["--network", network] if network else [])
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)),
                         preexec_fn=None if cpus is None else
                         (lambda: os.sched_setaffinity(0, cpus)))
    deadline = time.time() + 120
    while time.time() < deadline:
        line = p.stderr.readline()
        m = re.search(r"on (http://[0-9.]+:\d+)/", line or "")
        if m:
            return p, m.group(1)
        if p.poll() is not None:
            break
    p.kill()
    raise SystemExit("era serve did not start")


def floor(era_dir: Path, net, workers: int, from_slot: int) -> tuple[float, int, float]:
    """CPU seconds-equivalent wall time of the forward sync's own per-block work over every
    block of the eras at or above `from_slot`, with no HTTP and no store: decompress the
    framed block (as a range reply brings it), its root from the bytes, the parent link;
    `workers` threads.  Reading the framed bytes from the files is not timed."""
    def one(item):
        slot, framed = item
        data = framing.decompress(framed)
        _, root, parent = block_summary(data, net.fork_name_at_slot(slot), net.preset_base,
                                        "bench")
        return root, parent

    total, cpu, n, prev = 0.0, 0.0, 0, None
    with ThreadPoolExecutor(workers) as pool:
        for path in era_files_in([era_dir]):
            with EraReader(path) as r:
                slots = [s for s in r.block_slots() if s >= from_slot]
                for i in range(0, len(slots), 256):
                    chunk = [(s, bytes(r.block_framed(s))) for s in slots[i:i + 256]]
                    t, c = time.perf_counter(), time.process_time()
                    for root, parent in pool.map(one, chunk):
                        assert prev is None or parent == prev
                        prev = root
                    total += time.perf_counter() - t
                    cpu += time.process_time() - c
                    n += len(chunk)
    return total, n, cpu


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) that a process and its descendants (`era serve`'s worker
    processes) have used so far, from Linux /proc."""
    stats = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                f = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(d)] = (int(f[1]), int(f[11]) + int(f[12]))  # ppid, utime + stime
    tree, grew = {pid}, True
    while grew:
        more = {p for p, (pp, _) in stats.items() if pp in tree} - tree
        grew = bool(more)
        tree |= more
    return sum(stats[p][1] for p in tree if p in stats) / os.sysconf("SC_CLK_TCK")


def forward(url: str, net, workers: int, tmp: str, name: str,
            from_slot: int | None) -> tuple[float, int, int, float]:
    """(seconds, slots, blocks, CPU seconds of this process) of one forward sync into a fresh store: "sync" is `era
    sync`'s follow stage (from genesis; with `from_slot`, the pull it runs: the forward
    SyncQueue over the node's range endpoint), "pull" is `era pull` (the same queue over
    the standard route, one GET per slot)."""
    from era_tools.sync.peers import BackfillPeer

    servers = make_servers([url], timeout=60)
    net = connect(servers)  # the node's network, with its genesis
    with ChainStore.open(os.path.join(tmp, name), net) as store:
        t, c = time.perf_counter(), time.process_time()
        if name == "pull":
            res = pull(store, servers[0].api, from_slot=from_slot, workers=workers)
            slots, blocks = res.slots, res.blocks
        elif from_slot is not None:
            src = BackfillPeer(url, timeout=60)
            assert src.detect(from_slot) == "range"
            res = pull(store, servers[0].api, from_slot=from_slot, workers=workers,
                       source=src)
            slots, blocks = res.slots, res.blocks
        else:
            store.put_sync_record({"stage": "follow"})  # straight to the follow stage
            pipe = SyncPipeline(store, servers, SyncOptions(once=True, workers=workers))
            out = pipe.run()
            slots, blocks = out["slots"], out["blocks"]
        return time.perf_counter() - t, slots, blocks, time.process_time() - c


def replay_proxy(upstream: str) -> None:
    """`--_proxy UPSTREAM` (a child process): an HTTP/1.1 server on 127.0.0.1 in front of
    `era serve` that keeps every answer it fetched, whole, in memory, and replays it byte for
    byte when asked again.  With a warm cache the server side costs one copy into the socket,
    as if `era serve` ran on another machine.  Prints its URL, then serves until killed."""
    import http.client
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import urlsplit

    up = urlsplit(upstream)
    cache: dict = {}
    lock = threading.Lock()
    keep = ("Content-Type", "Era-Tools-Last-Slot", "Era-Tools-Error", "Eth-Consensus-Version")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            key = (self.path, self.headers.get("Accept", ""))
            with lock:
                hit = cache.get(key)
            if hit is None:
                c = http.client.HTTPConnection(up.hostname, up.port, timeout=300)
                c.request("GET", self.path, headers={"Accept": key[1]})
                r = c.getresponse()
                hit = (r.status, [(k, r.getheader(k)) for k in keep if r.getheader(k)],
                       r.read())
                c.close()
                with lock:
                    cache[key] = hit
            status, headers, body = hit
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"http://127.0.0.1:{srv.server_address[1]}", flush=True)
    srv.serve_forever()


def start_proxy(upstream: str, cpus: set | None = None):
    p = subprocess.Popen([sys.executable, __file__, "--_proxy", upstream],
                         stdout=subprocess.PIPE, text=True,
                         preexec_fn=None if cpus is None else
                         (lambda: os.sched_setaffinity(0, cpus)))
    return p, p.stdout.readline().strip()


BASELINE_CHILD = """
import json, sys, tempfile
sys.path[:0] = [sys.argv[1] + "/scripts", sys.argv[1]]
import bench_sync as b
from era_tools.config import get_network, load_config
net = get_network(sys.argv[5]) if sys.argv[5] else load_config(sys.argv[6] + "/spec.json")
for _ in range(2):  # the first not timed: imports, compiled hashing plans
    with tempfile.TemporaryDirectory() as tmp:
        s, slots, blocks, c = b.forward(sys.argv[2], net, int(sys.argv[3]), tmp, "sync",
                                        None if sys.argv[4] == "-" else int(sys.argv[4]))
print(json.dumps([blocks / s, 1000 * c / blocks]))
"""


def baseline_round(tree: Path, url: str, a) -> tuple[float, float]:
    """(blocks/s, client CPU ms per block) of the range forward sync with the code of the
    checkout `tree` (its scripts/bench_sync.py `forward`), in a fresh process that syncs
    once untimed first, against the same `era serve`.  Both sides of a baseline comparison
    run this way (this tree too), with this process's SHA-256 path: a fresh process picks
    its own path from its import timings, and its first sync runs cold."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    if hashing.native():
        from era_tools import _sha256

        env["ERA_TOOLS_SHA256_PATH"] = _sha256.PATH
    out = subprocess.run(
        [sys.executable, "-c", BASELINE_CHILD, str(tree), url, str(a.workers),
         "-" if a.from_slot is None else str(a.from_slot), a.network or "", str(a.eras)],
        capture_output=True, text=True, cwd=tree, env=env)
    if out.returncode:
        raise SystemExit(f"baseline {tree}: {out.stderr.strip().splitlines()[-1:]}")
    bps, ms = json.loads(out.stdout.strip().splitlines()[-1])
    return bps, ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eras", type=Path, default=ROOT / "sample_eras",
                    help="era files for the forward-sync node (default: sample_eras/)")
    ap.add_argument("--network", default=None, help="their network, if not beside them")
    ap.add_argument("--workers", type=int, default=8, help="download threads (era sync -j)")
    ap.add_argument("--poll", type=float, default=1.0,
                    help="poll interval of the polling latency run")
    ap.add_argument("--rounds", type=int, default=3, help="forward-sync rounds (median)")
    ap.add_argument("--from-slot", type=int, default=None,
                    help="forward-sync from this slot (eras that do not start at genesis, "
                         "e.g. make_synthetic_era.py's mainnet-shaped era: its first slot)")
    ap.add_argument("--no-latency", action="store_true", help="skip the latency runs")
    ap.add_argument("--replay", action="store_true",
                    help="also run the range forward sync through a proxy that replays era "
                         "serve's answers from memory (the server's CPU out of the way, as on "
                         "another machine)")
    ap.add_argument("--pin", action="store_true",
                    help="run `era serve` (and the proxy) on the last CPU and this process "
                    "(client, floor, baseline) on the others, so that client and floor "
                    "are measured alike with the server out of their way, as on two "
                    "machines; needs 2 or more CPUs")
    ap.add_argument("--long-pull-state-delay", type=float, default=None, metavar="SECONDS",
                    help="only time a long `era pull` of the fixture chain whose node answers "
                         "each state after SECONDS, with and without the next era's state "
                         "fetched during the era before")
    ap.add_argument("--_proxy", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another checkout (e.g. a git worktree of an older commit): each "
                         "round also runs the range forward sync with its code and with this "
                         "tree's, alternating, each in a fresh process warmed up by an "
                         "untimed sync, with this process's SHA-256 path")
    a = ap.parse_args()
    if a._proxy:
        return replay_proxy(a._proxy)
    log = print
    if hashing.native():
        from era_tools import _sha256

        hasher = f"native, SHA-256 path {_sha256.PATH}"
    else:
        hasher = "hashlib (no native build)"
    log(f"CPU flags: {cpu_flags()}; hasher: {hasher}; cores: "
        f"{os.cpu_count()}; load average: {os.getloadavg()[0]:.2f} (the machine may be "
        "shared)")
    if a.long_pull_state_delay is not None:
        return long_pull(a.long_pull_state_delay, a.rounds, log)
    ev = po = []
    if not a.no_latency:
        log("follow-mode latency, finality moved -> era file + checksums.txt + index.json:")
        ev = latency(None, log)
        po = latency(a.poll, log)
    net = load_config(a.eras / "spec.json") if a.network is None else None
    if net is None:
        from era_tools.config import get_network

        net = get_network(a.network)
    proxy = proxy_url = None
    server_cpus = None
    if a.pin:
        allowed = sorted(os.sched_getaffinity(0))
        if len(allowed) < 2:
            raise SystemExit("--pin needs 2 or more CPUs")
        server_cpus, client_cpus = {allowed[-1]}, set(allowed[:-1])
        log(f"pinned: era serve (and the proxy) on CPU {allowed[-1]}; client, floor and "
            f"baseline on CPU {', '.join(map(str, sorted(client_cpus)))}")
    node, url = start_node(a.eras, a.network, server_cpus)
    if a.pin:
        os.sched_setaffinity(0, client_cpus)  # before any thread: they all inherit it
    try:
        rows = {"sync": [], "pull": [], "floor": [], "base": [], "this": [], "replay": []}
        cpu = {k: [] for k in rows}   # ms of this process's CPU per block
        if a.replay:
            proxy, proxy_url = start_proxy(url, server_cpus)
            with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
                forward(proxy_url, net, a.workers, tmp, "sync", a.from_slot)  # fills it
            proxy_cpu = []
        server_cpu = {"sync": [], "pull": []}         # ms of `era serve`'s CPU per block

        def timed(row: str, server, server_url: str, name: str, server_ms: list) -> tuple:
            """One forward sync into a fresh store: its blocks/s and this process's CPU per
            block go to `row`, the server process tree's CPU per block to `server_ms`."""
            sc = proc_cpu(server.pid)
            with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
                s, slots, blocks, c = forward(server_url, net, a.workers, tmp, name,
                                              a.from_slot)
            rows[row].append(blocks / s)
            cpu[row].append(1000 * c / blocks)
            server_ms.append(1000 * (proc_cpu(server.pid) - sc) / blocks)
            return slots, blocks

        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            # not timed: the server's first answers (its checksums of the era files, the
            # finalized state's root) and this process's imports and compiled hashing plans
            forward(url, net, a.workers, tmp, "sync", a.from_slot)
        for _ in range(a.rounds):
            if a.baseline is not None:
                for row, tree in (("base", a.baseline), ("this", ROOT)):
                    bps, ms = baseline_round(tree, url, a)
                    rows[row].append(bps)
                    cpu[row].append(ms)
            if proxy is not None:
                timed("replay", proxy, proxy_url, "sync", proxy_cpu)
            slots, blocks = timed("sync", node, url, "sync", server_cpu["sync"])
            s, n, c = floor(a.eras, net, a.workers, a.from_slot or 0)  # right after it
            rows["floor"].append(n / s)
            cpu["floor"].append(1000 * c / n)
            timed("pull", node, url, "pull", server_cpu["pull"])
        med = {k: statistics.median(v) for k, v in rows.items() if v}
        mc = {k: statistics.median(v) for k, v in cpu.items() if v}
        log(f"forward sync of {slots} slots ({blocks} blocks; floor over {n}) from `era "
            f"serve` over HTTP, {a.workers} threads, median of {a.rounds}, in blocks/s:")
        log(f"  forward SyncQueue, range endpoint ({'era sync follow stage' if a.from_slot is None else 'pull --source range'}): "
            f"{med['sync']:.0f} blocks/s ({', '.join(f'{x:.0f}' for x in rows['sync'])})")
        if a.baseline is not None:
            log(f"  each in a fresh process (warmed up by one untimed sync), alternating: "
                f"this tree {med['this']:.0f} blocks/s "
                f"({', '.join(f'{x:.0f}' for x in rows['this'])}), client CPU "
                f"{mc['this']:.3f} ms per block; the code of {a.baseline} {med['base']:.0f} "
                f"blocks/s ({', '.join(f'{x:.0f}' for x in rows['base'])}), client CPU "
                f"{mc['base']:.3f} ms per block; this tree / baseline: "
                f"{med['this'] / med['base']:.2f} (wall), {mc['base'] / mc['this']:.2f} (CPU)")
        if proxy is not None:
            log(f"  the same through the replaying proxy (era serve's answers from memory: "
                f"the server's CPU out of the way): {med['replay']:.0f} blocks/s "
                f"({', '.join(f'{x:.0f}' for x in rows['replay'])}), client CPU "
                f"{mc['replay']:.3f} ms, proxy CPU {statistics.median(proxy_cpu):.3f} ms per "
                f"block; replay / floor: {med['replay'] / med['floor']:.2f}")
        log(f"  forward SyncQueue, one GET per slot (era pull): {med['pull']:.0f} blocks/s "
            f"({', '.join(f'{x:.0f}' for x in rows['pull'])})")
        log(f"  floor (decompress + root from bytes + links, no HTTP, no store): "
            f"{med['floor']:.0f} blocks/s ({', '.join(f'{x:.0f}' for x in rows['floor'])})")
        paired = statistics.median(x / f for x, f in zip(rows["sync"], rows["floor"]))
        log(f"  range / floor: {med['sync'] / med['floor']:.2f} (median of the rounds' own "
            f"ratios, each round's floor run right after its range sync: {paired:.2f}); "
            f"GET per slot / floor: {med['pull'] / med['floor']:.2f}")
        where = "on its own CPU" if a.pin else "on the same cores, in its own process"
        log(f"  client CPU per block (the server runs {where}): range {mc['sync']:.3f} ms, GET per slot {mc['pull']:.3f} ms, floor "
            f"{mc['floor']:.3f} ms; floor / range CPU: {mc['floor'] / mc['sync']:.2f}")
        ms = {k: statistics.median(v) for k, v in server_cpu.items()}
        bound = ("" if a.pin else f"; on {os.cpu_count()} shared cores the wall ratio is at "
                 f"most about floor CPU / (client + server CPU) = "
                 f"{mc['floor'] / (mc['sync'] + ms['sync']):.2f}")
        log(f"  server (`era serve`) CPU per block: range {ms['sync']:.3f} ms, GET per slot "
            f"{ms['pull']:.3f} ms{bound}")
        if ev:
            log(f"latency goal (<= 2 s): event stream max {max(ev):.2f} s, polling max "
                f"{max(po):.2f} s")
        log(f"load average now {os.getloadavg()[0]:.2f}")
    finally:
        for p in (node, proxy):
            if p is not None:
                p.terminate()
                p.wait(10)


if __name__ == "__main__":
    main()
