#!/usr/bin/env python3
"""`era pull` speed over the real-client fixture chain (890 blocks, 17 states, minimal preset)
served by the test Beacon API server on 127.0.0.1, beside two baselines measured in the same
run: the HTTP fetch alone (same client, same threads, no hashing, no store: the floor) and
the old per-block cost, py-ssz decode + hash_tree_root of the same blocks.

    python scripts/bench_pull.py [--workers 8]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from beacon_api_server import BeaconApiServer  # noqa: E402
from era_tools import ssz  # noqa: E402
from era_tools.sync.pull import block_root_of, node_network, pull  # noqa: E402
from era_tools.store import ChainStore  # noqa: E402
from era_tools.sync.peers import BeaconApiClient  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=8)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_pull-"))
    try:
        with BeaconApiServer() as srv:
            api = BeaconApiClient(srv.url)
            net = node_network(api)
            last = srv.chain.finalized_epoch * net.slots_per_epoch
            # floor: fetch every block, nothing else
            t = time.perf_counter()
            with ThreadPoolExecutor(a.workers) as pool:
                got = [r for r in pool.map(api.block, range(last + 1)) if r is not None]
            t_fetch = time.perf_counter() - t
            # the pull itself
            store = ChainStore.open(tmp / "db", net)
            t = time.perf_counter()
            res = pull(store, api, workers=a.workers)
            t_pull = time.perf_counter() - t
            store.close()
        forks = [net.fork_name_at_slot(s) for s in range(last + 1)]
        t = time.perf_counter()
        for r in got:
            slot = int.from_bytes(r.ssz[100:108], "little")
            block_root_of(r.ssz, forks[slot], net.preset_base, r.url)
        t_fast = time.perf_counter() - t
        t = time.perf_counter()
        for r in got:
            slot = int.from_bytes(r.ssz[100:108], "little")
            ssz.block_root(ssz.decode_block(r.ssz, forks[slot], net.preset_base))
        t_pyssz = time.perf_counter() - t
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = len(got)
    print(f"era pull: {res.slots} slots, {res.blocks} blocks, {res.states} states in "
          f"{t_pull:.2f} s = {res.slots / t_pull:,.0f} slots/s ({args_w(a)})")
    print(f"baseline  HTTP fetch of the same {n} blocks alone (same client/threads): "
          f"{t_fetch:.2f} s = {n / t_fetch:,.0f} blocks/s")
    print(f"block roots from bytes (ssz.fast, as pull does): {t_fast * 1e3 / n:.2f} ms/block, "
          f"{t_fast:.2f} s in all; py-ssz decode + hash_tree_root (old path): "
          f"{t_pyssz * 1e3 / n:.2f} ms/block, {t_pyssz:.2f} s ({t_pyssz / t_fast:.1f}x)")
    return 0


def args_w(a) -> str:
    return f"{a.workers} worker threads"


if __name__ == "__main__":
    sys.exit(main())
