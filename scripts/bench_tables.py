#!/usr/bin/env python3
"""Measure `era tables` work per table on one era file, beside decompression alone.

    python3 scripts/bench_tables.py bench_out/mainnet-01100-*.era [--network mainnet]

Baseline, same run, same file: reading and decompressing every block record (EraReader
.iter_blocks), MB/s of decompressed SSZ.  Then each table built on its own
(era_tools.tables.build_tables with that one table; validators: from the state), rows/s and
MB/s of the era's block SSZ (state SSZ for validators), and the whole set in one pass, with
the ratio of the blocks table to decompression (goal >= 0.5x) and the total (goal < 30 s for a
mainnet era).  Make the input with scripts/make_synthetic_era.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from era_tools.config import get_network, resolve_network  # noqa: E402
from era_tools.era import EraReader  # noqa: E402
from era_tools.tables import TABLES, build_tables  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("era_file", type=Path)
    ap.add_argument("--network", default=None, help="default: beside the file / its name")
    ap.add_argument("--tables", default=",".join(TABLES))
    args = ap.parse_args()
    net = get_network(args.network) if args.network else resolve_network(
        None, None, [args.era_file])[0]
    tables = args.tables.split(",")

    with EraReader(args.era_file) as r:
        t = time.perf_counter()
        block_bytes = sum(len(d) for _, d in r.iter_blocks())
        dt_base = time.perf_counter() - t
        t = time.perf_counter()
        state_bytes = len(r.state_ssz())
        dt_state = time.perf_counter() - t
    base_mbs = block_bytes / dt_base / 1e6
    print(f"file {args.era_file.name}: {block_bytes / 1e6:.1f} MB block SSZ, "
          f"{state_bytes / 1e6:.1f} MB state SSZ")
    print(f"baseline  decompress blocks        {dt_base:7.2f} s  {base_mbs:8.1f} MB/s")
    print(f"baseline  decompress state         {dt_state:7.2f} s  "
          f"{state_bytes / dt_state / 1e6:8.1f} MB/s")
    ratio = None
    for name in tables:
        with EraReader(args.era_file) as r:
            t = time.perf_counter()
            tab = build_tables(r, net, (name,))[name]
            dt = time.perf_counter() - t
        size = state_bytes if name == "validators" else block_bytes
        mbs = size / dt / 1e6
        if name == "blocks":
            ratio = mbs / base_mbs
        print(f"table     {name:26s} {dt:7.2f} s  {mbs:8.1f} MB/s  {tab.num_rows:9d} rows "
              f"{tab.num_rows / dt:11.0f} rows/s")
    with EraReader(args.era_file) as r:
        t = time.perf_counter()
        built = build_tables(r, net, tuple(tables))
        dt_all = time.perf_counter() - t
    rows = sum(x.num_rows for x in built.values())
    print(f"all       {len(tables)} tables, one pass       {dt_all:7.2f} s  "
          f"{rows:9d} rows (goal < 30 s)")
    if ratio is not None:
        print(f"blocks table / decompression: {ratio:.2f}x (goal >= 0.5x)")


if __name__ == "__main__":
    main()
