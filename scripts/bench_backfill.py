#!/usr/bin/env python3
"""Benchmark `era backfill`: 8192 synthetic mainnet-preset slots from local `era serve` peers.

Serves a synthetic mainnet era (scripts/make_synthetic_era.py; made here with a small
validator registry if missing, since the 1M-validator state only slows the set-up) from
--peers `era serve` processes on 127.0.0.1, starts a store whose anchor sits right above the
era (the era's state stands in for the checkpoint state: proposer keys come from it), and
backfills the whole era with full checks (decode, roots, parent links, every proposer
signature).  Prints slots/s beside the BLS-only floor measured in the same run: the same
signature sets verified in batches of one epoch with the same number of processes and nothing
else.  The era file is read once before the timed run, so the peers serve it from the page
cache as a serving node would (their CPU is still counted and printed), and only after the
peers have finished their start-up work (hashing their files for checksums.txt), as a
long-running server has.  `--rounds N` adds N rounds alternating a backfill and the
verification floor, with their medians.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import inspect
import json
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from era_tools import bls, framing  # noqa: E402
from era_tools.config import get_network  # noqa: E402
from era_tools.era import EraReader, era_files_in  # noqa: E402
from era_tools.hashing import sha256  # noqa: E402
from era_tools.signing import (DOMAIN_BEACON_PROPOSER, compute_domain,  # noqa: E402
                               compute_signing_root)
from era_tools.store import ChainStore  # noqa: E402
from era_tools.sync.backfill import backfill, default_bls_processes  # noqa: E402
from era_tools.sync.queue import _check_blocks_task  # noqa: E402

try:
    from era_tools.sync.queue import RANGE_BATCHES  # noqa: E402
except ImportError:  # an older tree
    RANGE_BATCHES = 1
from era_tools.verify import validator_pubkeys  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_verify import warm_page_cache  # noqa: E402  (one copy, shared by both benches)


def start_peer(era_dir: Path):
    cmd = [sys.executable, "-c", "from era_tools.cli import main; main()", "serve",
           str(era_dir), "--port", "0", "--network", "mainnet"]
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    deadline = time.time() + 120
    while time.time() < deadline:
        line = p.stderr.readline()
        m = re.search(r"on (http://[0-9.]+:\d+/)", line or "")
        if m:
            return p, m.group(1)
        if p.poll() is not None:
            break
    p.kill()
    raise SystemExit(f"era serve did not start: {line}")


class CpuMeter:
    """CPU seconds used by this process and all its descendants (the `era serve` peers, the
    forkserver's pool processes), sampled from /proc every 0.5 s while running."""

    def __init__(self):
        self.tick = os.sysconf("SC_CLK_TCK")
        self.seen: dict[int, tuple[str, float]] = {}
        self.stop = threading.Event()

    def _stat(self, pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            return int(parts[1]), (int(parts[11]) + int(parts[12])) / self.tick
        except (OSError, IndexError, ValueError):
            return None

    def sample(self):
        me = os.getpid()
        stats = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                st = self._stat(int(d))
                if st:
                    stats[int(d)] = st
        for pid, (ppid, cpu) in stats.items():
            if pid == me:  # counted as "main" from os.times()
                continue
            p, depth = pid, 0
            while p in stats and p != me and depth < 6:
                p, depth = stats[p][0], depth + 1
            if p == me:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    cmd = "?"
                kind = "serve" if " serve " in cmd else "pool"
                self.seen[pid] = (kind, max(cpu, self.seen.get(pid, ("", 0.0))[1]))

    @staticmethod
    def machine():
        """(busy, all) core-seconds of the whole machine so far (/proc/stat)."""
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        tick = os.sysconf("SC_CLK_TCK")
        return (sum(v) - v[3] - v[4]) / tick, sum(v) / tick

    def __enter__(self):
        self.m0 = self.machine()
        self.t0 = os.times()
        self.sample()
        self.base = dict(self.seen)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def _loop(self):
        while not self.stop.wait(0.5):
            self.sample()

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.sample()
        t1 = os.times()
        m1 = self.machine()
        self.machine_busy, self.machine_all = m1[0] - self.m0[0], m1[1] - self.m0[1]
        self.main = (t1.user - self.t0.user) + (t1.system - self.t0.system)
        self.by_kind = {"main": self.main}
        for pid, (kind, cpu) in self.seen.items():
            self.by_kind[kind] = self.by_kind.get(kind, 0.0) + cpu - self.base.get(
                pid, ("", 0.0))[1]


def verify_floor(reader: EraReader, net, pubkeys, procs: int, batch: int) -> float:
    """Seconds for the verification work alone (decompress, hash every block root,
    batch-verify every proposer signature) over the era's framed blocks, `batch` blocks per
    task, `procs` processes: what the backfill must spend on CPU besides I/O."""
    gvr = net.genesis_validators_root
    items = []
    for slot in reader.block_slots():
        framed = bytes(reader.block_framed(slot))
        head = framing.decompress_prefix(framed, 148)
        proposer = int.from_bytes(head[108:116], "little")
        dom = compute_domain(DOMAIN_BEACON_PROPOSER,
                             net.fork_at_epoch(slot // 32).version, gvr)
        items.append((framed, True, framing.uncompressed_length(framed),
                      net.fork_name_at_slot(slot), pubkeys[proposer].tobytes(), dom))
    chunks = [items[i:i + batch] for i in range(0, len(items), batch)]
    ctx = mp.get_context("forkserver")
    with cf.ProcessPoolExecutor(procs, mp_context=ctx) as pool:
        list(pool.map(_check_blocks_task, chunks[:procs], ["mainnet"] * procs))  # warm up
        t = time.perf_counter()
        for roots, _, errors, bad, _ in pool.map(_check_blocks_task, chunks,
                                              ["mainnet"] * len(chunks)):
            assert not errors and not bad
        return time.perf_counter() - t


def store_floor(reader: EraReader, net, path: Path, slots_per_commit: int,
                files: bool = True) -> tuple[float, float]:
    """Seconds to write the era's blocks (framed, as fetched) with their index entries and
    anchor into a fresh store, `slots_per_commit` slots per atomic commit, newest first, as
    the backfill importer does: one block file per commit (`files`), or inline in LevelDB.
    Returns (wall seconds, CPU seconds of this process, LevelDB's compaction thread included)."""
    from era_tools.ssz.layout import block_root as block_root_of

    S = reader.state_slot
    rows = {}
    for slot in reader.block_slots():
        framed = bytes(reader.block_framed(slot))
        data = framing.decompress(framed)
        rows[slot] = (block_root_of(data, net.fork_name_at_slot(slot), "mainnet", "bench"),
                      bytes(data[116:148]), framed)
    with ChainStore.open(path, net) as store:
        b = store.batch()
        b.put_block(S, sha256(b"checkpoint stand-in"), reader.state_head(8192).block_root_at(
            S - 1), framing.compress(b"stand-in"))
        b.cover(S, S)
        store.commit(b)
        t, c = time.perf_counter(), time.process_time()
        for hi in range(S - 1, S - 8193, -slots_per_commit):
            lo = max(S - 8192, hi - slots_per_commit + 1)
            b = store.batch()
            if files:
                b.put_blocks_file([(s, *rows[s]) for s in range(lo, hi + 1) if s in rows],
                                  f"{lo:012d}-{hi:012d}")
            for s in range(lo, hi + 1):
                if s in rows and not files:
                    b.put_block(s, *rows[s])
                elif s not in rows:
                    b.put_empty(s)
            b.cover(lo, hi)
            store.commit(b)
        return time.perf_counter() - t, time.process_time() - c


_pk_cache: dict = {}


def _verify_sets_task(sets: list) -> list:
    """The signature check of `_check_blocks_task` alone: (pubkey, message, signature)
    triples -> indices of bad ones (pool entry point)."""
    return bls.find_invalid([bls.SignatureSet(*s) for s in sets], _pk_cache=_pk_cache,
                            registry_pubkeys=True)


def bls_floor(reader: EraReader, net, pubkeys, procs: int, batch: int) -> tuple[float, int]:
    """Seconds to verify every proposer signature of the era, epoch batches, `procs`
    processes (0: this thread), and the number of signatures."""
    sets = []
    gvr = net.genesis_validators_root
    from era_tools.ssz.layout import block_root as block_root_of

    for slot in reader.block_slots():
        data = reader.block_ssz(slot)
        fork = net.fork_name_at_slot(slot)
        root = block_root_of(data, fork, "mainnet", "bench")
        proposer = int.from_bytes(data[108:116], "little")
        dom = compute_domain(DOMAIN_BEACON_PROPOSER,
                             net.fork_at_epoch(slot // 32).version, gvr)
        sets.append((pubkeys[proposer].tobytes(), compute_signing_root(root, dom),
                     bytes(data[4:100])))
    chunks = [sets[i:i + batch] for i in range(0, len(sets), batch)]
    if procs:
        ctx = mp.get_context("forkserver")
        with cf.ProcessPoolExecutor(procs, mp_context=ctx) as pool:
            list(pool.map(_verify_sets_task, chunks[:procs]))  # warm up
            t = time.perf_counter()
            bad = sum(len(b) for b in pool.map(_verify_sets_task, chunks))
            dt = time.perf_counter() - t
    else:
        t = time.perf_counter()
        bad = sum(len(_verify_sets_task(c)) for c in chunks)
        dt = time.perf_counter() - t
    assert bad == 0
    return dt, len(sets)


def settle_peers(urls) -> float:
    """Wait until every peer has finished its start-up work (`era serve` hashes its files for
    checksums.txt when it starts: ~0.5 s of CPU per 550 MB era), so that the timed backfill
    meets peers in their steady state, as a long-running server is.  Seconds waited."""
    import urllib.request

    t = time.perf_counter()
    for u in urls:
        with urllib.request.urlopen(u.rstrip("/") + "/checksums.txt", timeout=600) as r:
            r.read()
    return time.perf_counter() - t


def checkpointed_store(path: Path, net, reader: EraReader) -> ChainStore:
    """A store whose anchor sits right above the era: the era's state stands in for the
    checkpoint state (proposer keys come from it), with a stand-in anchor block at its slot
    whose parent is the era's last block root."""
    S = reader.state_slot
    store = ChainStore.open(path, net)
    b = store.batch()
    b.put_block(S, sha256(b"checkpoint stand-in"), reader.state_head(8192).block_root_at(S - 1),
                framing.compress(b"stand-in"))
    b.put_state(S, reader.state_framed())
    b.cover(S, S)
    store.commit(b)
    return store


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eras", type=Path, default=ROOT / "bench_out" / "backfill" / "eras")
    ap.add_argument("--validators", type=int, default=20000,
                    help="validators in the synthetic state when it has to be made")
    ap.add_argument("--peers", type=int, default=2)
    ap.add_argument("--workers", type=int, default=4, help="as `era backfill`")
    ap.add_argument("--bls-procs", type=int, default=None,
                    help="as `era backfill --check-jobs` (default: the same default)")
    ap.add_argument("--range-batches", type=int, default=RANGE_BATCHES,
                    help="epoch batches per range request")
    ap.add_argument("--_child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--peer", action="append", help=argparse.SUPPRESS)
    ap.add_argument("--to-slot", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=1, metavar="N",
                    help="then N more rounds alternating a backfill into a fresh store and the "
                         "verification floor, with the medians (this VM's speed drifts by "
                         "10-20 %% between back-to-back runs, so one pair can mislead)")
    args = ap.parse_args()
    if args.bls_procs is None:
        args.bls_procs = default_bls_processes()
    if args._child:  # one timed backfill into a prepared store (a --rounds round)
        with ChainStore.open(args._child) as store:
            t = time.perf_counter()
            res = backfill(store, args.peer, to_slot=args.to_slot, workers=args.workers,
                           bls_processes=args.bls_procs, timeout=60,
                           range_batches=args.range_batches)
            print(json.dumps({"seconds": time.perf_counter() - t, "blocks": res.queue.blocks}))
        return 0

    files = era_files_in([args.eras]) if args.eras.exists() else []
    if not files:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_synthetic_era.py"),
                        "--validators", str(args.validators), "--out", str(args.eras)],
                       check=True)
        files = era_files_in([args.eras])
    path = Path(files[0])
    net = get_network("mainnet")
    reader = EraReader(path)
    S = reader.state_slot
    slots = reader.block_slots()
    state = reader.state_ssz()
    fork = net.fork_name_at_slot(S)
    pubkeys = validator_pubkeys(state, fork, "mainnet")
    print(f"era file: {path.name}: {len(slots)} blocks in slots {S - 8192}..{S - 1}, "
          f"{len(pubkeys)} validators; {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}")

    tmp = Path(tempfile.mkdtemp(prefix="bench_backfill_"))
    peers = [start_peer(args.eras) for _ in range(args.peers)]
    try:
        settle_s = settle_peers([u for _, u in peers])
        with checkpointed_store(tmp / "db", net, reader) as store:
            warm_s = warm_page_cache(path)
            load0 = os.getloadavg()[0]
            t = time.perf_counter()
            extra = {}
            if "range_batches" in inspect.signature(backfill).parameters:
                extra["range_batches"] = args.range_batches
            else:  # an older tree (before/after comparisons): one epoch per request
                args.range_batches = 1
            with CpuMeter() as cpu:
                res = backfill(store, [u for _, u in peers], to_slot=min(slots),
                               workers=args.workers, bls_processes=args.bls_procs,
                               timeout=60, **extra)
            wall = time.perf_counter() - t
            load1 = os.getloadavg()[0]
            q = res.queue
            assert q.blocks == len(slots), (q.blocks, len(slots))
            assert store.index_entry(min(slots)) is not None
        # the floors, same run
        load2 = os.getloadavg()[0]
        fprocs = args.bls_procs or os.cpu_count() or 1  # the floors always use processes
        floor_s, n = bls_floor(reader, net, pubkeys, fprocs, 32)
        with CpuMeter() as vcpu:
            vfloor_s = verify_floor(reader, net, pubkeys, fprocs,
                                    32 * args.range_batches)
        vpool = vcpu.by_kind.get("pool", 0.0)
        store_s, store_cpu = store_floor(reader, net, tmp / "db2", 32 * args.range_batches)
        inline_s, inline_cpu = store_floor(reader, net, tmp / "db3", 32 * args.range_batches,
                                           files=False)
        load3 = os.getloadavg()[0]
        kinds = ",".join(sorted(set(res.peer_kinds.values())))
        span = S - min(slots)
        print(f"backfill: {span} slots ({q.blocks} blocks, {q.bytes / 1e6:.0f} MB framed) "
              f"from {args.peers} `era serve` peers ({kinds} endpoint), {args.workers} "
              f"workers, " + (f"{args.bls_procs} verification processes" if args.bls_procs
                              else "verified in the worker threads") + f": {wall:.2f} s = "
              f"{span / wall:.0f} slots/s (incl. start-up; {args.range_batches} batches "
              f"per range request; load {load0:.1f} -> {load1:.1f}; the era file read once "
              f"before, {warm_s:.1f} s, so the peers serve it from the page cache; the peers' "
              f"start-up checksums awaited first, {settle_s:.1f} s)")
        nb = q.blocks
        print("backfill CPU: " + ", ".join(f"{k} {v:.1f} s" for k, v in cpu.by_kind.items())
              + f"; total {sum(cpu.by_kind.values()):.1f} s = "
              f"{1e3 * sum(cpu.by_kind.values()) / nb:.2f} ms per block (per-process tick "
              f"counts; the whole machine was busy {cpu.machine_busy:.1f} of "
              f"{cpu.machine_all:.1f} core-s)")
        print(f"BLS-only floor: {n} signatures in {floor_s:.2f} s = {span / floor_s:.0f} "
              f"slots/s ({n / floor_s:.0f} signatures/s, {fprocs} processes)")
        print(f"verification floor (decompress + hash + BLS, {32 * args.range_batches} blocks "
              f"per task, {fprocs} processes): {vfloor_s:.2f} s = "
              f"{span / vfloor_s:.0f} slots/s (load {load2:.1f} -> {load3:.1f}); pool CPU "
              f"{vpool:.1f} s incl. start-up and warm-up = {1e3 * vpool / n:.2f} ms per block")
        print(f"store floor (the same blocks, index and anchor written to a fresh store, "
              f"{32 * args.range_batches} slots per commit, one block file per commit as the "
              f"importer does): {store_s:.2f} s = {span / store_s:.0f} slots/s, CPU "
              f"{store_cpu:.2f} s; blocks inline in LevelDB instead: {inline_s:.2f} s = "
              f"{span / inline_s:.0f} slots/s, CPU {inline_cpu:.2f} s")
        cores = os.cpu_count() or 1
        bound_s = (vpool + store_cpu) / cores
        print(f"idle-machine upper bound with full checks: (verification CPU {vpool:.1f} s + "
              f"store CPU {store_cpu:.1f} s) / {cores} cores = {bound_s:.2f} s = "
              f"{span / bound_s:.0f} slots/s, before any HTTP or hand-over cost")
        print(f"backfill / BLS-only floor: {floor_s / wall:.2f}; "
              f"backfill / verification floor: {vfloor_s / wall:.2f}")
        if args.rounds > 1:
            rates, ratios = [], []
            for i in range(args.rounds):
                db = tmp / f"db-round{i}"
                checkpointed_store(db, net, reader).close()
                warm_page_cache(path)
                # each round's backfill in a fresh process, as a CLI run would be (a second
                # backfill in this process would find its pubkey cache and heap warm); the
                # peers stay up, as real ones do
                out = subprocess.run(
                    [sys.executable, __file__, "--_child", str(db), "--workers",
                     str(args.workers), "--bls-procs", str(args.bls_procs), "--range-batches",
                     str(args.range_batches), "--to-slot", str(min(slots)),
                     *[x for _, u in peers for x in ("--peer", u)]],
                    capture_output=True, text=True, check=True,
                    env=dict(os.environ, PYTHONPATH=str(ROOT)))
                child = json.loads(out.stdout.strip().splitlines()[-1])
                assert child["blocks"] == len(slots), child
                wall = child["seconds"]
                shutil.rmtree(db, ignore_errors=True)
                vfloor_s = verify_floor(reader, net, pubkeys, fprocs, 32 * args.range_batches)
                rates.append(span / wall)
                ratios.append(vfloor_s / wall)
                print(f"round {i + 1}: backfill {span / wall:.0f} slots/s, verification floor "
                      f"{span / vfloor_s:.0f} slots/s, ratio {ratios[-1]:.2f} (load "
                      f"{os.getloadavg()[0]:.1f})")
            rates.sort()
            ratios.sort()
            print(f"median over {args.rounds} rounds: backfill {rates[len(rates) // 2]:.0f} "
                  f"slots/s ({rates[0]:.0f}-{rates[-1]:.0f}), backfill / verification floor "
                  f"{ratios[len(ratios) // 2]:.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})")
    finally:
        for p, _ in peers:
            p.terminate()
            p.wait()
        reader.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
