#!/usr/bin/env python3
"""Benchmark: SHA-256 of many 64-byte inputs (one merkle layer), native vs hashlib.

Native: era_tools._sha256.hash_pairs (OpenSSL's block function, SHA-NI where the CPU has it,
16-lane AVX-512 where it has that).  Baseline: the hashlib loop era_tools.hashing falls back
to, measured in the same run.  Per hash path (_sha256._tune lanes: x1, SHA-NI pairs x2, AVX-512
groups of 16 with the pair path for the tail x16), ns/hash of hash_pairs on --pairs inputs.
Also a whole merkleize of 2**20 chunks both ways, and the roots of the fixture chain's 890
blocks: era_tools.ssz.fast.hash_tree_root_bytes from the bytes vs py-ssz decode + root.

Mainnet blocks (--blocks N, default 300, of the newest era in bench_out/ or --era PATH):
hash_tree_root of each SignedBeaconBlock from its bytes with the native walker, batched
(default: every list's elements and every tree hashed level by level in lockstep, through the
16-lane AVX-512 path or the interleaved SHA-NI path) beside the per-value walker it replaced
(_sha256._tune(batched=0, lanes=2): each value's tree climbed alone), every variant in this
run, best of 5 interleaved rounds (so every variant runs after the others, AVX-512 clock
effects included); snappy decompression timed on its own; SHA-256 calls counted by path (x1 =
one input per call, x2 = two interleaved, x16 = an AVX-512 group); and the latency of
dependent hash chains per path (ns/hash).

End to end (--verify N): `era verify --level roots -j 1` of that era file in a fresh process,
as is and with ERA_TOOLS_NO_AVX512=1 (SHA-NI pairs), alternating, N rounds each, best wall time
(decompression, walk and hashing of every block and the state, with whatever clock effects the
AVX-512 code has on the rest).

    python scripts/bench_hashing.py [--pairs 1000000] [--blocks 300] [--era PATH] [--era-only]
                                    [--verify N]
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
    ap.add_argument("--blocks", type=int, default=300, help="mainnet era blocks (0: skip)")
    ap.add_argument("--era", help="era file (default: the newest in bench_out/)")
    ap.add_argument("--era-only", action="store_true", help="only the mainnet block section")
    ap.add_argument("--verify", type=int, default=0, metavar="N",
                    help="also time `era verify --level roots` with and without AVX-512, N rounds")
    args = ap.parse_args()
    if hashing._native_hash_pairs is None:
        sys.exit("era_tools._sha256 is not built: nothing to compare")
    if args.era_only:
        bench_lanes(args.pairs)
        bench_chains()
        bench_era_blocks(args.era, args.blocks)
        bench_verify(args.era, args.verify)
        return
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
    bench_lanes(args.pairs)
    bench_blocks()
    bench_chains()
    bench_era_blocks(args.era, args.blocks)
    bench_verify(args.era, args.verify)


def newest_era(era: str | None) -> str | None:
    eras = sorted((Path(__file__).resolve().parents[1] / "bench_out").glob("*.era"))
    return era or (str(eras[-1]) if eras else None)


def bench_verify(era: str | None, rounds: int) -> None:
    """Best wall time of `era verify --level roots -j 1`, AVX-512 on (as is) and off."""
    import subprocess

    path = newest_era(era)
    if rounds <= 0 or path is None:
        return
    cmd = [sys.executable, "-c", "import sys; from era_tools.cli import main; sys.exit(main())",
           "verify", "--level", "roots", "-j", "1", "--network", "mainnet", path]
    variants = {"as is": {}, "ERA_TOOLS_NO_AVX512=1": {"ERA_TOOLS_NO_AVX512": "1"}}
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, extra in variants.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, env={**os.environ, **extra}, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
    base = best["ERA_TOOLS_NO_AVX512=1"]
    print(f"era verify --level roots -j 1 {Path(path).name}, best of {rounds} alternating "
          f"(load average {os.getloadavg()[0]:.2f}):")
    for name, t in best.items():
        print(f"  {name:22s} {t:6.2f} s  ({base / t:.2f}x without AVX-512)")


def lane_widths() -> tuple[int, ...]:
    from era_tools import _sha256

    return (1, 2, 16) if _sha256.AVX512 else (1, 2)


def bench_lanes(n: int) -> None:
    """ns per hash of hash_pairs on n independent inputs, per widest hash path, interleaved."""
    from era_tools import _sha256

    buf = os.urandom(64 * n)
    prev = _sha256._tune()
    best, outs = {}, {}
    try:
        for _ in range(3):
            for lanes in lane_widths():
                _sha256._tune(-1, lanes)
                t0 = time.perf_counter()
                outs[lanes] = _sha256.hash_pairs(buf)
                best[lanes] = min(best.get(lanes, float("inf")), time.perf_counter() - t0)
    finally:
        _sha256._tune(*prev)
    assert len(set(outs.values())) == 1, "hash paths disagree"
    print(f"hash_pairs per path, {n:,} x 64-byte inputs (backend {_sha256.BACKEND}, "
          f"AVX-512 {'on' if _sha256.AVX512 else 'off'}, default x{prev[1]}; best of 3):")
    for lanes, t in best.items():
        print(f"  x{lanes:<3} {t / n * 1e9:6.1f} ns/hash  ({best[2] / t:.2f}x the x2 path)")


def bench_chains(iters: int = 100_000) -> None:
    """ns per hash of L dependent hash chains run L-wide (x1: a lone node climbing)."""
    from era_tools import _sha256

    print(f"dependent hash chains ({iters:,} hashes per lane; backend {_sha256.BACKEND}):")
    base = None
    for lanes in lane_widths():
        seed = bytes(range(64)) * lanes
        it = iters if lanes < 16 else iters // 8
        t = best_of(lambda: _sha256._chain(seed, it), repeat=3)
        ns = t / (it * lanes) * 1e9
        base = base or ns
        print(f"  x{lanes}  {ns:6.1f} ns/hash  ({base / ns:.2f}x the x1 path)")


def bench_era_blocks(era: str | None, count: int) -> None:
    if count <= 0:
        return
    from era_tools import _sha256, ssz
    from era_tools.config import get_network
    from era_tools.era import EraReader
    from era_tools.ssz.fast import hash_tree_root_bytes

    path = newest_era(era)
    if path is None:
        print("no era file in bench_out/ (scripts/make_synthetic_era.py): mainnet blocks skipped")
        return
    net = get_network("mainnet")
    with EraReader(path) as r:
        slots = [s for s in r.block_slots() if s][:count]
        framed = [(s, r.block_framed(s), r.block_record(s)) for s in slots]
        t0 = time.perf_counter()
        blocks = [(ssz.types_for(net.fork_name_at_slot(s), net.preset_base).SignedBeaconBlock,
                   r._decompress(rec, f)) for s, f, rec in framed]
        t_dec = time.perf_counter() - t0
    n = len(blocks)
    size = sum(len(d) for _, d in blocks) / n
    prev = _sha256._tune()
    modes = {"per-value walker (old)": (0, 2), "batched walker, x2": (1, 2)}
    if _sha256.AVX512:
        modes["batched walker, x16"] = (1, 16)
        modes["per-value walker, x16"] = (0, 16)
    roots, best, counts = {}, {}, {}
    try:
        for name, mode in modes.items():
            _sha256._tune(*mode)
            roots[name] = [hash_tree_root_bytes(s, d) for s, d in blocks]
            _sha256._stats(True)
            for s, d in blocks:
                hash_tree_root_bytes(s, d)
            counts[name] = _sha256._stats(False)
        for _ in range(5):  # interleaved rounds: all see the same machine load
            for name, mode in modes.items():
                _sha256._tune(*mode)
                t0 = time.perf_counter()
                for s, d in blocks:
                    hash_tree_root_bytes(s, d)
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
    finally:
        _sha256._tune(*prev)
    assert len({tuple(r) for r in roots.values()}) == 1, "walkers disagree"
    old, x2 = list(modes)[:2]
    print(f"SignedBeaconBlock roots, {n} blocks of {Path(path).name} (mainnet, "
          f"{size / 1024:.0f} KiB avg; backend {_sha256.BACKEND}, AVX-512 "
          f"{'on' if _sha256.AVX512 else 'off'}, default "
          f"{'batched' if prev[0] else 'per-value'} walker x{prev[1]}): decompression alone "
          f"{t_dec / n * 1e3:.3f} ms/block")
    for name in modes:
        c1, c2, c16, spare = (c / n for c in counts[name])
        print(f"  {name:24s} {best[name] / n * 1e3:.3f} ms/block  "
              f"hashes/block {c1 + 2 * c2 + 16 * c16 - spare:,.0f}: x1 {c1:,.0f}, "
              f"x2 {2 * c2:,.0f}"
              + (f", x16 {16 * c16 - spare:,.0f} (+{spare:.0f} spare lanes)"
                 if _sha256.AVX512 else "")
              + (f"  ({best[old] / best[name]:.2f}x the old walker, "
                 f"{best[x2] / best[name]:.2f}x batched x2)" if name != old else ""))


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
