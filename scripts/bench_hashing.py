#!/usr/bin/env python3
"""Benchmark: SHA-256 of many 64-byte inputs (one merkle layer), native vs hashlib.

Native: era_tools._sha256.hash_pairs (OpenSSL's block function, SHA-NI where the CPU has it).
Baseline: the hashlib loop era_tools.hashing falls back to, measured in the same run.
Also a whole merkleize of 2**20 chunks both ways, and the roots of the fixture chain's 890
blocks: era_tools.ssz.fast.hash_tree_root_bytes from the bytes vs py-ssz decode + root.

    python scripts/bench_hashing.py [--pairs 1000000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from era_tools import hashing  # noqa: E402


def best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1_000_000)
    args = ap.parse_args()
    if hashing._native_hash_pairs is None:
        sys.exit("era_tools._sha256 is not built: nothing to compare")
    buf = os.urandom(64 * args.pairs)
    chunks = os.urandom(32 * 2**20)
    native = hashing._native_hash_pairs
    t_native = best_of(lambda: native(buf))
    t_native_m = best_of(lambda: hashing.merkleize(chunks))
    root_native = hashing.merkleize(chunks)
    hashing._native_hash_pairs = None
    try:
        t_py = best_of(lambda: hashing.hash_layer(buf), repeat=1)
        t_py_m = best_of(lambda: hashing.merkleize(chunks), repeat=1)
        assert hashing.merkleize(chunks) == root_native
    finally:
        hashing._native_hash_pairs = native
    n = args.pairs
    print(f"hash_pairs, {n:,} x 64-byte inputs:")
    print(f"  native (OpenSSL)  {t_native:.3f} s  {n / t_native / 1e6:.2f} M hashes/s")
    print(f"  hashlib loop      {t_py:.3f} s  {n / t_py / 1e6:.2f} M hashes/s  "
          f"(native {t_py / t_native:.1f}x)")
    print("merkleize, 2**20 chunks (1,048,575 hashes):")
    print(f"  native (OpenSSL)  {t_native_m:.3f} s")
    print(f"  hashlib layers    {t_py_m:.3f} s  (native {t_py_m / t_native_m:.1f}x)")
    bench_blocks()


def bench_blocks() -> None:
    fixture = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "lodestar-minimal-1"
    root = Path(__file__).resolve().parents[1]
    if not (fixture / "blocks").is_dir():
        print("fixture chain not found: block roots skipped")
        return
    import ssz as pyssz

    from era_tools import ssz
    from era_tools.config import load_config
    from era_tools.ssz.fast import hash_tree_root_bytes

    net = load_config(root / "sample_eras" / "spec.json")
    items = []
    for f in sorted((fixture / "blocks").glob("*.ssz")):
        t = ssz.types_for(net.fork_name_at_slot(int(f.stem)), net.preset_base)
        items.append((t.SignedBeaconBlock, f.read_bytes()))
    t_fast = best_of(lambda: [hash_tree_root_bytes(s, d) for s, d in items])
    t_py = best_of(lambda: [pyssz.get_hash_tree_root(s.deserialize(d)) for s, d in items],
                   repeat=1)
    n = len(items)
    print(f"SignedBeaconBlock roots, {n} fixture blocks (minimal preset):")
    print(f"  fast, from bytes        {t_fast:.3f} s  {t_fast / n * 1e3:.2f} ms/block")
    print(f"  py-ssz decode + root    {t_py:.3f} s  {t_py / n * 1e3:.2f} ms/block  "
          f"(fast {t_py / t_fast:.1f}x)")


if __name__ == "__main__":
    main()
