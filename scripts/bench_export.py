#!/usr/bin/env python3
"""Export speed (MB/s of .era output) beside the snappy library's framed-compression
throughput measured in the same run.  Blocks are stored framed, so export copies them through
with no recompression: from a copy-mode store out of LevelDB, from a reference-mode store
(the default) straight from the referenced era file (os.copy_file_range over runs of adjacent
records, headers checked with numpy).

Baseline (snappy framed compression, `era_tools.framing.compress`, input MB/s = uncompressed
bytes per second, the usual measure and the stricter one for compressible data), on:
  * realistic blocks: the deneb blocks of `scripts/make_synthetic_era.py`'s era (~140 KB each,
    150 transactions, attestations; `--realistic PATH`, default bench_out/mainnet-01100-*.era)
    when that file exists, else the real-client fixture chain's blocks (minimal preset, small);
  * and, for continuity with earlier figures, the dummy blocks of bench_frontfill.py (mostly
    incompressible bodies, which snappy skips through fast).
The script says which it used.  Exports run with fsync on (as `era export` does).

    python scripts/bench_export.py [--eras 2] [--block-kb 24] [--realistic PATH]
"""

from __future__ import annotations

import argparse
import glob
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

FIXTURE = ROOT.parent / "shared" / "fixtures" / "lodestar-minimal-1"


def compress_rate(blocks: list[bytes], repeat: int = 3) -> tuple[float, float, float]:
    """Best-of-`repeat` snappy framed compression: (MB/s in, MB/s out, ratio)."""
    raw = sum(len(b) for b in blocks)
    best = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = sum(len(framing.compress(b)) for b in blocks)
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    return raw / best / 1e6, out / best / 1e6, raw / out


def realistic_blocks(path: str | None, limit_bytes: int = 300 << 20):
    """(description, blocks) of realistic uncompressed blocks, at most `limit_bytes`."""
    if path is None:
        found = sorted(glob.glob(str(ROOT / "bench_out" / "mainnet-01100-*.era")))
        path = found[0] if found else None
    blocks, total = [], 0
    if path and os.path.exists(path):
        with EraReader(path) as r:
            for _slot, b in r.iter_blocks():
                blocks.append(b)
                total += len(b)
                if total >= limit_bytes:
                    break
        return (f"{len(blocks)} deneb blocks of {os.path.basename(path)} "
                f"(make_synthetic_era.py, avg {total / len(blocks) / 1e3:.0f} KB)"), blocks, path
    for p in sorted((FIXTURE / "blocks").glob("*.ssz")):
        b = p.read_bytes()
        blocks.append(b)
    return (f"{len(blocks)} real-client fixture blocks (lodestar, minimal preset, avg "
            f"{sum(map(len, blocks)) / len(blocks) / 1e3:.1f} KB; make_synthetic_era.py's era "
            "not found)"), blocks, None


def copy_floor(src: str, dst: Path, repeat: int) -> float:
    """MB/s of copying `src` whole with os.copy_file_range and fsyncing the copy."""
    best = None
    for _ in range(repeat):
        t = time.perf_counter()
        fi = os.open(src, os.O_RDONLY)
        fo = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        n, done = os.fstat(fi).st_size, 0
        while done < n:
            done += os.copy_file_range(fi, fo, n - done, done, done)
        os.fsync(fo)
        os.close(fo)
        os.close(fi)
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
        os.unlink(dst)
    return n / best / 1e6


def timed_export(store: ChainStore, out: Path, repeat: int = 1):
    best = None
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        res = export(store, out, fsync=True)
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    size = sum(os.path.getsize(p) for p in res.written)
    return res, size, best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eras", type=int, default=2)
    ap.add_argument("--block-kb", type=int, default=24)
    ap.add_argument("--realistic", default=None, help="an era file with realistic blocks")
    ap.add_argument("--repeat", type=int, default=3, help="export runs per store (best kept)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench_out" / "export")
    a = ap.parse_args()
    shutil.rmtree(a.out, ignore_errors=True)
    net = get_network("mainnet")

    what, blocks, real_path = realistic_blocks(a.realistic)
    base_in, base_out, ratio = compress_rate(blocks)
    del blocks
    print(f"baseline  snappy framed compression, realistic blocks: {base_in:.0f} MB/s in, "
          f"{base_out:.0f} MB/s out (compresses {ratio:.2f}x) on {what}", flush=True)

    paths, _raw = make_eras(a.out / "eras", 1100, a.eras, a.block_kb)
    dummy = []
    for p in paths:
        with EraReader(p) as r:
            dummy += [b for _, b in r.iter_blocks()]
    d_in, d_out, d_ratio = compress_rate(dummy, repeat=1)
    del dummy
    print(f"baseline  snappy framed compression, bench_frontfill dummy blocks: {d_in:.0f} MB/s "
          f"in, {d_out:.0f} MB/s out (compresses {d_ratio:.2f}x)", flush=True)

    def report(label, res, size, dt):
        rate = size / dt / 1e6
        print(f"export {label}: {len(res.written)} eras, {size / 1e6:.0f} MB in {dt:.2f} s = "
              f"{rate:.0f} MB/s of era output = {rate / base_in:.0%} of the realistic "
              f"framed-compression rate (target >= 50%; {rate / d_in:.0%} of the dummy-block "
              "rate)", flush=True)

    for mode in ("copy", "reference"):
        db = a.out / f"db-{mode}"
        store = ChainStore.open(db, net)
        frontfill(store, paths, mode=mode, check="index", link_states=False)
        res, size, dt = timed_export(store, a.out / f"out-{mode}", a.repeat)
        store.close()
        report(f"from {mode:9s} store (dummy eras)", res, size, dt)
    if real_path:
        floor = copy_floor(real_path, a.out / "floor.tmp", a.repeat)
        print(f"floor     whole-file os.copy_file_range + fsync of the same era file (what any "
              f"exporter needs at least on this disk): {floor:.0f} MB/s", flush=True)
        db = a.out / "db-realistic"
        store = ChainStore.open(db, net)
        frontfill(store, [real_path], mode="reference", check="index", link_states=False)
        res, size, dt = timed_export(store, a.out / "out-realistic", a.repeat)
        store.close()
        report("from reference store (make_synthetic_era.py era)", res, size, dt)
        print(f"          = {size / dt / 1e6 / floor:.0%} of the whole-file copy floor")
        shutil.rmtree(a.out / "out-realistic", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
