#!/usr/bin/env python3
"""Benchmark: SHA-256 of many 64-byte inputs (one merkle layer), native vs hashlib.

Native: era_tools._sha256 and its hash paths, every one usable on this CPU measured in the same
run (`_sha256._path`): OpenSSL's block function one input at a time (`openssl`), SHA-NI one,
two, four and eight inputs interleaved (`sha-ni-x1/x2/x4/x8`), eight lanes of AVX2
(`avx2-x8`) and sixteen of AVX-512 (`avx512-x16`); beside them, hashtree's kernels
(prysmaticlabs/hashtree, built outside this repository: `--hashtree path/to/libhashtree.so`,
default $HASHTREE_LIB or /tmp/hashtree/build/libhashtree.so when present) on the same inputs.
Every figure names its path; the header names the CPU, its flags (avx512f, sha_ni, avx2), the
path picked at import and the pick without AVX-512 (ERA_TOOLS_NO_AVX512=1, as on CPUs without
it) and without SHA-NI, each from a fresh interpreter.

Sections: ns/hash of hash_pairs on --pairs inputs per path (best of 3 interleaved rounds);
dependent hash chains per path (latency-bound); with the full run also the hashlib loop
baseline, a whole merkleize of 2**20 chunks both ways and the fixture chain's 890 block roots
(era_tools.ssz.fast from bytes vs py-ssz decode + root).

Mainnet blocks (--blocks N, default 300, of the newest era in bench_out/ or --era PATH;
scripts/make_synthetic_era.py makes a mainnet-shaped one): hash_tree_root of each
SignedBeaconBlock from its bytes with the batched native walker on every path, beside the
per-value walker on SHA-NI pairs it replaced (`_tune(batched=0, lanes=2)`), best of 5
interleaved rounds, with CPU time per block (process time: the machine is shared) and the
SHA-256 calls per path; snappy decompression timed on its own.

End to end (--verify N): `era verify --level roots -j 1` of that era file in a fresh process,
as is and with ERA_TOOLS_NO_AVX512=1, alternating, N rounds each, best wall time.

    python scripts/bench_hashing.py [--pairs 1000000] [--blocks 300] [--era PATH] [--era-only]
                                    [--verify N] [--hashtree LIB]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchenv import cpu_flags, cpu_model  # noqa: E402  (scripts/benchenv.py)

from era_tools import _sha256, hashing  # noqa: E402


FLAGS = "cpu flags " + cpu_flags()


def import_pick(env: dict) -> str:
    """The path a fresh interpreter picks at import with env (its own timing)."""
    import subprocess

    base = {k: v for k, v in os.environ.items()
            if not k.startswith("ERA_TOOLS_NO_") and k != "ERA_TOOLS_SHA256_PATH"}
    r = subprocess.run([sys.executable, "-c", "from era_tools import _sha256 as s; "
                        "print(s.PATH, ' '.join(f'{k}={v:.0f}' for k, v in s._timings().items()))"],
                       env={**base, **env}, capture_output=True, text=True, check=True)
    return r.stdout.strip()


def print_header() -> None:
    print(f"{cpu_model()}, {os.cpu_count()} CPUs, {FLAGS}; load average "
          f"{os.getloadavg()[0]:.2f}")
    print(f"  this process: path {_sha256.PATH} of {', '.join(_sha256.PATHS)} "
          f"(import timings ns/hash: "
          f"{', '.join(f'{k} {v:.0f}' for k, v in _sha256._timings().items())})")
    for name, env in (("as is", {}), ("ERA_TOOLS_NO_AVX512=1", {"ERA_TOOLS_NO_AVX512": "1"}),
                      ("ERA_TOOLS_NO_SHANI=1", {"ERA_TOOLS_NO_SHANI": "1"})):
        print(f"  fresh interpreter, {name}: picks {import_pick(env)}")


def best_of(fn, repeat: int = 3, clock=time.perf_counter) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1_000_000,
                    help="64-byte inputs per hash_pairs measurement")
    ap.add_argument("--blocks", type=int, default=300, help="mainnet era blocks (0: skip)")
    ap.add_argument("--era", help="era file (default: the newest in bench_out/)")
    ap.add_argument("--era-only", action="store_true", help="only the mainnet block section")
    ap.add_argument("--verify", type=int, default=0, metavar="N",
                    help="also time `era verify --level roots` with and without AVX-512, N rounds")
    ap.add_argument("--hashtree", default=os.environ.get("HASHTREE_LIB",
                                                         "/tmp/hashtree/build/libhashtree.so"),
                    help="hashtree shared library to compare with (skipped when absent)")
    args = ap.parse_args()
    if hashing._native_hash_pairs is None:
        sys.exit("era_tools._sha256 is not built: nothing to compare")
    print_header()
    if args.era_only:
        bench_lanes(args.pairs, args.hashtree)
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
    path = f"native {_sha256.PATH}"
    print(f"hash_pairs, {n:,} x 64-byte inputs ({FLAGS}):")
    print(f"  {path:18s} {t_native:.3f} s  {n / t_native / 1e6:.2f} M hashes/s")
    print(f"  {'hashlib loop':18s} {t_py:.3f} s  {n / t_py / 1e6:.2f} M hashes/s  "
          f"(native {t_py / t_native:.1f}x)")
    print(f"merkleize, 2**20 chunks (1,048,575 hashes; {FLAGS}):")
    print(f"  {path:18s} {t_native_m:.3f} s")
    print(f"  {'hashlib layers':18s} {t_py_m:.3f} s  (native {t_py_m / t_native_m:.1f}x)")
    bench_lanes(args.pairs, args.hashtree)
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
    # each run picks its own path at import (the header shows typical picks per setting)
    variants = {"as is": {}, "ERA_TOOLS_NO_AVX512=1": {"ERA_TOOLS_NO_AVX512": "1"}}
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, extra in variants.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, env={**os.environ, **extra}, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
    base = best[list(variants)[1]]
    print(f"era verify --level roots -j 1 {Path(path).name}, best of {rounds} alternating "
          f"({FLAGS}; load average {os.getloadavg()[0]:.2f}):")
    for name, t in best.items():
        print(f"  {name:40s} {t:6.2f} s  ({base / t:.2f}x without AVX-512)")


def paths() -> tuple[str, ...]:
    return _sha256.PATHS


def hashtree_kernels(lib: str | None):
    """(name, function(out, in, count)) of hashtree's x86 kernels this CPU runs, or []."""
    import ctypes

    if not lib or not Path(lib).exists():
        return []
    h = ctypes.CDLL(lib)
    flags = set(Path("/proc/cpuinfo").read_text().split())
    want = [("shani_x2", "sha_ni"), ("avx2_x8", "avx2"), ("avx512_x16", "avx512f"),
            ("avx_x4", "avx"), ("avx_x1", "avx"), ("sse_x1", "sse")]
    out = []
    for name, flag in want:
        fn = getattr(h, f"hashtree_sha256_{name}", None)
        if fn is not None and flag in flags:
            fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint64]
            fn.restype = None
            out.append((f"hashtree {name}", fn))
    return out


def bench_lanes(n: int, hashtree_lib: str | None = None) -> None:
    """ns per hash of hash_pairs on n independent inputs per path (and hashtree's kernels on
    the same inputs), best of 3 interleaved rounds."""
    import ctypes

    buf = os.urandom(64 * n)
    prev = _sha256._path()
    best, outs = {}, {}
    ht = hashtree_kernels(hashtree_lib)
    ht_out = ctypes.create_string_buffer(32 * n)
    try:
        for _ in range(3):
            for path in paths():
                _sha256._path(path)
                t0 = time.process_time()
                outs[path] = _sha256.hash_pairs(buf)
                best[path] = min(best.get(path, float("inf")), time.process_time() - t0)
            for name, fn in ht:
                t0 = time.process_time()
                fn(ht_out, buf, n)
                best[name] = min(best.get(name, float("inf")), time.process_time() - t0)
                outs[name] = ht_out.raw
    finally:
        _sha256._path(prev)
    assert len(set(outs.values())) == 1, "hash paths disagree"
    ref = best.get("sha-ni-x2", best["openssl"])
    print(f"hash_pairs per path, {n:,} x 64-byte inputs ({FLAGS}; picked at import: {prev}; "
          f"CPU time, best of 3 interleaved; load average {os.getloadavg()[0]:.2f}):")
    for name, t in best.items():
        print(f"  {name:22s} {t / n * 1e9:6.1f} ns/hash  ({ref / t:.2f}x "
              f"{'sha-ni-x2' if 'sha-ni-x2' in best else 'openssl'})")
    if hashtree_lib and not ht:
        print(f"  (hashtree not found at {hashtree_lib}: --hashtree LIB)")


def bench_chains(iters: int = 100_000) -> None:
    """ns per hash of L dependent hash chains run L-wide per path (x1: a lone node climbing)."""
    prev = _sha256._path()
    print(f"dependent hash chains ({iters:,} hashes per lane; {FLAGS}; CPU time, best of 3):")
    try:
        for path in paths():
            _sha256._path(path)
            lanes = _sha256._tune()[1]
            seed = bytes(range(64)) * lanes
            it = max(1000, iters // lanes)
            t = best_of(lambda: _sha256._chain(seed, it), repeat=3, clock=time.process_time)
            print(f"  {path:12s} {t / (it * lanes) * 1e9:6.1f} ns/hash ({lanes} chains)")
    finally:
        _sha256._path(prev)


def bench_era_blocks(era: str | None, count: int, rounds: int = 5) -> None:
    if count <= 0:
        return
    from era_tools import ssz
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
        t0, c0 = time.perf_counter(), time.process_time()
        blocks = [(ssz.types_for(net.fork_name_at_slot(s), net.preset_base).SignedBeaconBlock,
                   r._decompress(rec, f)) for s, f, rec in framed]
        t_dec, c_dec = time.perf_counter() - t0, time.process_time() - c0
    n = len(blocks)
    size = sum(len(d) for _, d in blocks) / n
    prev_tune, prev_path = _sha256._tune(), _sha256._path()
    # (walker, path): the per-value walker on SHA-NI pairs (the old default) as the baseline
    modes = {}
    if "sha-ni-x2" in paths():
        modes["per-value walker, sha-ni-x2"] = (0, "sha-ni-x2")
    for p in paths():
        modes[f"batched walker, {p}"] = (1, p)
    roots, best, cpu, counts, widths = {}, {}, {}, {}, {}
    try:
        for name, (walker, p) in modes.items():
            _sha256._tune(walker, -1)
            _sha256._path(p)
            widths[name] = _sha256._tune()[1]
            roots[name] = [hash_tree_root_bytes(s, d) for s, d in blocks]
            _sha256._stats(True)
            for s, d in blocks:
                hash_tree_root_bytes(s, d)
            counts[name] = _sha256._stats(False)
        for _ in range(rounds):  # interleaved rounds: all see the same machine load
            for name, (walker, p) in modes.items():
                _sha256._tune(walker, -1)
                _sha256._path(p)
                t0, c0 = time.perf_counter(), time.process_time()
                for s, d in blocks:
                    hash_tree_root_bytes(s, d)
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
                cpu[name] = min(cpu.get(name, float("inf")), time.process_time() - c0)
    finally:
        _sha256._tune(prev_tune[0], -1)
        _sha256._path(prev_path)
    assert len({tuple(r) for r in roots.values()}) == 1, "walkers disagree"
    base = next(iter(modes))
    print(f"SignedBeaconBlock roots, {n} blocks of {Path(path).name} (mainnet, "
          f"{size / 1024:.0f} KiB avg; {FLAGS}; picked at import: {prev_path}; best of "
          f"{rounds} interleaved rounds; load average {os.getloadavg()[0]:.2f}): decompression "
          f"alone {t_dec / n * 1e3:.3f} ms/block ({c_dec / n * 1e3:.3f} ms CPU)")
    for name in modes:
        c1, c2, cw, spare = (c / n for c in counts[name])
        w = widths[name]
        hashes = c1 + 2 * c2 + (w * cw - spare if w > 2 else 0)
        wide = f", x{w} {w * cw - spare:,.0f} (+{spare:.0f} spare lanes)" if w > 2 else ""
        print(f"  {name:30s} {best[name] / n * 1e3:.3f} ms/block ({cpu[name] / n * 1e3:.3f} ms "
              f"CPU)  hashes/block {hashes:,.0f}: x1 {c1:,.0f}, x2 {2 * c2:,.0f}{wide}"
              + (f"  ({cpu[base] / cpu[name]:.2f}x {base} in CPU)" if name != base else ""))


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
