#!/usr/bin/env python3
"""Measure `era tables` per table on one era file, beside decompression alone, in the same run.

    python3 scripts/bench_tables.py bench_out/mainnet-01100-*.era --network mainnet --rounds 3

Each round, on the same file: the baselines (reading and decompressing every block record,
EraReader.iter_blocks; the state), `roots`-level verification alone (era_tools.verify: it
hashes every block), the blocks table with its roots from the verified state (what `era tables`
does after verifying) and with every root hashed (an unverified file), every other table on
its own, all tables in one pass, and `write_era_tables` end to end (verification, all tables,
zstd Parquet).  Prints per round and the median of the rounds: seconds, MB/s of block SSZ
(state SSZ for validators), rows/s, CPU seconds (process time, every thread: steadier than
wall time on a shared machine), and the blocks table's speed as a fraction of
decompression (goal >= 0.5x) and the total (goal < 30 s for a mainnet era); with the CPU flags,
the SHA-256 path and the load average.  Make the input with scripts/make_synthetic_era.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchenv import cpu_flags  # noqa: E402  (scripts/benchenv.py)

from era_tools import hashing  # noqa: E402
from era_tools.config import get_network, resolve_network  # noqa: E402
from era_tools.era import EraReader  # noqa: E402
from era_tools.tables import TABLES, build_tables, write_era_tables  # noqa: E402
from era_tools.verify import verify_file  # noqa: E402


def hash_path() -> str:
    if not hashing.native():
        return "hashlib (no native build)"
    from era_tools import _sha256

    batched, lanes = _sha256._tune()
    return (f"native {_sha256.BACKEND}, AVX-512 {'on' if _sha256.AVX512 else 'off'}, "
            f"widest path {lanes} lanes, {'batched' if batched else 'per-value'} walker")


def timed(fn):
    """(wall seconds, result, CPU seconds of this process: all its threads)."""
    c = time.process_time()
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out, time.process_time() - c


def one_round(path: Path, net, tables) -> dict:
    res = {}

    def with_reader(fn):
        with EraReader(path) as r:
            return timed(lambda: fn(r))

    res["decompress blocks"] = with_reader(lambda r: sum(len(d) for _, d in r.iter_blocks()))
    res["decompress state"] = with_reader(lambda r: len(r.state_ssz()))
    res["verify --level roots"] = timed(lambda: verify_file(path, net, "roots").ok)
    for name in tables:
        if name == "blocks":
            res["blocks (roots from verified state)"] = with_reader(
                lambda r: build_tables(r, net, ("blocks",), roots="state")["blocks"].num_rows)
            res["blocks (roots hashed)"] = with_reader(
                lambda r: build_tables(r, net, ("blocks",))["blocks"].num_rows)
        else:
            res[name] = with_reader(
                lambda r, n=name: build_tables(r, net, (n,), roots="state")[n].num_rows)
    res["all tables, one pass"] = with_reader(
        lambda r: sum(t.num_rows for t in build_tables(r, net, tables, roots="state").values()))
    out = tempfile.mkdtemp(prefix="bench_tables_")
    try:
        res["end to end: verify + all tables + Parquet"] = timed(
            lambda: sum(write_era_tables(path, net, out, tables)["written"].values()))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("era_file", type=Path)
    ap.add_argument("--network", default=None, help="default: beside the file / its name")
    ap.add_argument("--tables", default=",".join(TABLES), help="comma-separated table names")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported")
    args = ap.parse_args()
    net = get_network(args.network) if args.network else resolve_network(
        None, None, [args.era_file])[0]
    tables = tuple(args.tables.split(","))

    with EraReader(args.era_file) as r:  # also warms the page cache, imports and SSZ types
        block_bytes = sum(len(d) for _, d in r.iter_blocks())
        state_bytes = len(r.state_ssz())
        build_tables(r, net, tables, roots="state")
    print(f"file {args.era_file.name}: {block_bytes / 1e6:.1f} MB block SSZ, "
          f"{state_bytes / 1e6:.1f} MB state SSZ")
    print(f"cpu flags: {cpu_flags()}; sha-256: {hash_path()}; "
          f"block tables: era_tools.ssz.bulk (numpy over 64 MB batches)")
    rounds = []
    for i in range(args.rounds):
        load = os.getloadavg()[0]
        res = one_round(args.era_file, net, tables)
        rounds.append(res)
        base = res["decompress blocks"][0]
        print(f"round {i + 1} (load {load:.1f}): decompress {base:.2f} s, blocks "
              f"{res.get('blocks (roots from verified state)', (float('nan'),))[0]:.2f} s "
              f"(hashed {res.get('blocks (roots hashed)', (float('nan'),))[0]:.2f} s), all "
              f"{res['all tables, one pass'][0]:.2f} s, end to end "
              f"{res['end to end: verify + all tables + Parquet'][0]:.2f} s", flush=True)
    print(f"\nmedians of {args.rounds} round(s), load average now "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}:")
    med = {k: statistics.median(r[k][0] for r in rounds) for k in rounds[0]}
    cpu = {k: statistics.median(r[k][2] for r in rounds) for k in rounds[0]}
    print(f"  {'':44s} {'wall':>9s} {'MB/s':>8s} {'rows':>14s} {'rows/s':>18s} {'CPU s':>7s}")
    for k, dt in med.items():
        rows = rounds[0][k][1]
        size = state_bytes if k in ("decompress state", "validators") else block_bytes
        rate = f"{rows / dt:11.0f} rows/s" if not k.startswith(("decompress", "verify")) else ""
        nrows = f"{rows:9d} rows" if rate else ""
        print(f"  {k:44s} {dt:7.2f} s {size / dt / 1e6:8.1f} {nrows:>14s} {rate:>18s} "
              f"{cpu[k]:7.2f}")
    base, base_cpu = med["decompress blocks"], cpu["decompress blocks"]
    for k in ("blocks (roots from verified state)", "blocks (roots hashed)"):
        if k in med:
            print(f"{k} / decompression: {base / med[k]:.2f}x wall, "
                  f"{base_cpu / cpu[k]:.2f}x CPU time (goal >= 0.5x)")
    print(f"all tables, one pass: {med['all tables, one pass']:.1f} s; end to end with "
          f"verification and Parquet: {med['end to end: verify + all tables + Parquet']:.1f} s "
          "(goal < 30 s)")


if __name__ == "__main__":
    main()
