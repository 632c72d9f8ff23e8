#!/usr/bin/env python3
"""Benchmark `era backfill`: 8192 synthetic mainnet-preset slots from local `era serve` peers.

Serves a synthetic mainnet era (scripts/make_synthetic_era.py; made here with a small
validator registry if missing, since the 1M-validator state only slows the set-up) from
--peers `era serve` processes on 127.0.0.1, starts a store whose anchor sits right above the
era (the era's state stands in for the checkpoint state: proposer keys come from it), and
backfills the whole era with full checks (decode, roots, parent links, every proposer
signature).  Prints slots/s beside the BLS-only floor measured in the same run: the same
signature sets verified in batches of one epoch with the same number of processes and nothing
else.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from era_tools import framing  # noqa: E402
from era_tools.config import get_network  # noqa: E402
from era_tools.era import EraReader, era_files_in  # noqa: E402
from era_tools.hashing import sha256  # noqa: E402
from era_tools.signing import (DOMAIN_BEACON_PROPOSER, compute_domain,  # noqa: E402
                               compute_signing_root)
from era_tools.store import ChainStore  # noqa: E402
from era_tools.sync.backfill import backfill  # noqa: E402
from era_tools.sync.queue import _verify_sets_task  # noqa: E402
from era_tools.verify import validator_pubkeys  # noqa: E402


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


def bls_floor(reader: EraReader, net, pubkeys, procs: int, batch: int) -> tuple[float, int]:
    """Seconds to verify every proposer signature of the era, epoch batches, `procs`
    processes (0: this thread), and the number of signatures."""
    sets = []
    gvr = net.genesis_validators_root
    from era_tools.sync.checkpoint import block_root_of

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eras", type=Path, default=ROOT / "bench_out" / "backfill" / "eras")
    ap.add_argument("--validators", type=int, default=20000,
                    help="validators in the synthetic state when it has to be made")
    ap.add_argument("--peers", type=int, default=2)
    ap.add_argument("--workers", type=int, default=6)
    ap.add_argument("--bls-procs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

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
        # the store: the era's state as the checkpoint state, a stand-in anchor block at S
        with ChainStore.open(tmp / "db", net) as store:
            b = store.batch()
            last_root = reader.state_head(8192).block_root_at(S - 1)
            b.put_block(S, sha256(b"checkpoint stand-in"), last_root,
                        framing.compress(b"stand-in"))
            b.put_state(S, reader.state_framed())
            b.cover(S, S)
            store.commit(b)
            t = time.perf_counter()
            res = backfill(store, [u for _, u in peers], to_slot=min(slots),
                           workers=args.workers, bls_processes=args.bls_procs, timeout=60)
            wall = time.perf_counter() - t
            q = res.queue
            assert q.blocks == len(slots), (q.blocks, len(slots))
            assert store.index_entry(min(slots)) is not None
        # the BLS-only floor, same run
        floor_s, n = bls_floor(reader, net, pubkeys, args.bls_procs, 32)
        kinds = ",".join(sorted(set(res.peer_kinds.values())))
        span = S - min(slots)
        print(f"backfill: {span} slots ({q.blocks} blocks, {q.bytes / 1e6:.0f} MB framed) "
              f"from {args.peers} `era serve` peers ({kinds} endpoint), {args.workers} "
              f"workers, {args.bls_procs} BLS processes: {wall:.2f} s = "
              f"{span / wall:.0f} slots/s (incl. pool start-up)")
        print(f"BLS-only floor: {n} signatures in {floor_s:.2f} s = {span / floor_s:.0f} "
              f"slots/s ({n / floor_s:.0f} signatures/s, {args.bls_procs} processes)")
        print(f"backfill / BLS-only floor: {floor_s / wall:.2f}")
    finally:
        for p, _ in peers:
            p.terminate()
            p.wait()
        reader.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
