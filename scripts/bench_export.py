#!/usr/bin/env python3
"""Export speed (MB/s of .era output) from a copy-mode and a reference-mode store, beside the
snappy library's framed-compression throughput on the same block bytes, measured in the same
run.  Blocks are stored framed, so export copies them through with no recompression.

Uses the synthetic mainnet-preset eras of bench_frontfill.py.

    python scripts/bench_export.py [--eras 2] [--block-kb 24]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_frontfill import make_eras  # noqa: E402
from era_tools import framing  # noqa: E402
from era_tools.config import get_network  # noqa: E402
from era_tools.era import EraReader  # noqa: E402
from era_tools.export import export  # noqa: E402
from era_tools.frontfill import frontfill  # noqa: E402
from era_tools.store import ChainStore  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eras", type=int, default=2)
    ap.add_argument("--block-kb", type=int, default=24)
    ap.add_argument("--out", type=Path, default=ROOT / "bench_out" / "export")
    a = ap.parse_args()
    shutil.rmtree(a.out, ignore_errors=True)
    paths, raw = make_eras(a.out / "eras", 1100, a.eras, a.block_kb)
    net = get_network("mainnet")
    # baseline: framed snappy compression of the same uncompressed blocks
    blocks = []
    for p in paths:
        with EraReader(p) as r:
            blocks += [b for _, b in r.iter_blocks()]
    t = time.perf_counter()
    out_bytes = sum(len(framing.compress(b)) for b in blocks)
    dt = time.perf_counter() - t
    base_in, base_out = raw / dt / 1e6, out_bytes / dt / 1e6
    print(f"baseline  snappy framed compression: {base_in:.0f} MB/s in, {base_out:.0f} MB/s of "
          f"framed output ({len(blocks)} blocks)")
    for mode in ("copy", "reference"):
        db = a.out / f"db-{mode}"
        store = ChainStore.open(db, net)
        frontfill(store, paths, mode=mode, check="index", link_states=False)
        out = a.out / f"out-{mode}"
        t = time.perf_counter()
        res = export(store, out, fsync=True)
        dt = time.perf_counter() - t
        store.close()
        size = sum(os.path.getsize(p) for p in res.written)
        print(f"export from {mode:9s} store: {len(res.written)} eras, {size / 1e6:.0f} MB in "
              f"{dt:.2f} s = {size / dt / 1e6:.0f} MB/s of era output "
              f"({size / dt / 1e6 / base_out:.0%} of the framed-compression output rate; "
              "target >= 50%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
