#!/usr/bin/env python3
"""Benchmark `era verify` on one era file (e.g. from scripts/make_synthetic_era.py).

For each level (structure, roots, signatures), in a fresh subprocess: wall time, blocks/s and
peak RSS (this process + its BLS worker processes).  Baseline in the same run: the BLS-only
floor, the same proposer signature sets batch-verified with nothing else, with the same number
of processes.  `--backends N` also times N signatures through every installed BLS binding
(pyblst, py_arkworks_bls12381, blspy: RLC batch where the binding allows it, else one by one).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + kids) / 1024  # Linux: KiB; children: the largest child


def run_level(path: str, level: str, jobs: int, network: str) -> dict:
    from era_tools.config import get_network
    from era_tools.verify import verify_archive

    t = time.perf_counter()
    rep = verify_archive([path], get_network(network), level, jobs=jobs)
    dt = time.perf_counter() - t
    f = rep.files[0]
    return {"level": level, "seconds": dt, "blocks": f.blocks, "ok": f.ok, "line": f.line(),
            "blocks_per_s": f.blocks / dt if dt else 0, "peak_rss_mb": peak_rss_mb()}


def collect_sets(path: str, network: str):
    from era_tools import bls
    from era_tools.config import get_network
    from era_tools.era import EraReader
    from era_tools.signing import DOMAIN_BEACON_PROPOSER, compute_domain, compute_signing_root
    from era_tools.verify import _decode_block_root, validator_pubkeys

    net = get_network(network)
    sets = []
    with EraReader(path) as r:
        state = r.state_ssz()
        fork = net.fork_name_at_slot(r.state_slot)
        pks = validator_pubkeys(state, fork, net.preset_base)
        gvr = state[8:40]
        for slot, data in r.iter_blocks():
            if slot == 0:
                continue
            root = _decode_block_root(data, net.fork_name_at_slot(slot), net.preset_base, "")
            proposer = int.from_bytes(data[108:116], "little")
            v = net.fork_at_epoch(slot // net.slots_per_epoch).version
            msg = compute_signing_root(root, compute_domain(DOMAIN_BEACON_PROPOSER, v, gvr))
            sets.append((pks[proposer].tobytes(), msg, bytes(data[4:100])))
    return sets


def bls_floor(sets, jobs: int) -> dict:
    from era_tools import verify

    chunk = verify.BLS_CHUNK
    chunks = [sets[i:i + chunk] for i in range(0, len(sets), chunk)]
    t = time.perf_counter()
    if jobs > 1:
        with cf.ProcessPoolExecutor(jobs, mp_context=verify._mp_context()) as pool:
            # warm the workers so pool start-up is not counted against the floor
            list(pool.map(verify._bls_chunk, [sets[:1]] * jobs))
            t = time.perf_counter()
            bad = [i for b in pool.map(verify._bls_chunk, chunks) for i in b]
    else:
        bad = [i for c in chunks for i in verify._bls_chunk(c)]
    dt = time.perf_counter() - t
    return {"seconds": dt, "signatures": len(sets), "bad": len(bad),
            "per_signature_us": dt / max(1, len(sets)) * 1e6}


def bench_backends(n: int) -> list[dict]:
    import hashlib
    import secrets

    from era_tools import bls

    out = []
    sks = [int.from_bytes(hashlib.sha256(b"k%d" % i).digest(), "big") % bls.CURVE_ORDER
           for i in range(n)]
    msgs = [hashlib.sha256(b"m%d" % i).digest() for i in range(n)]
    pks = [bls.secret_to_pubkey(k) for k in sks]
    sigs = [bls.sign(k, m) for k, m in zip(sks, msgs)]
    sets = [bls.SignatureSet(*x) for x in zip(pks, msgs, sigs)]
    t = time.perf_counter()
    ok = bls.batch_verify(sets, bls.get_backend("blst"))
    out.append({"binding": "pyblst (era_tools.bls blst, RLC batch)", "ok": ok,
                "us_per_sig": (time.perf_counter() - t) / n * 1e6})
    try:
        import py_arkworks_bls12381 as ark

        t = time.perf_counter()
        g1 = ark.G1Point()
        P = [ark.G1Point.from_compressed_bytes(p) for p in pks]
        S = [ark.G2Point.from_compressed_bytes(s) for s in sigs]
        H = [ark.G2Point.hash_to_curve(m, bls.DST) for m in msgs]
        sc = [ark.Scalar(secrets.randbits(64) | 1) for _ in range(n)]
        agg = ark.G2Point.multiexp_unchecked(S, sc)
        ok = ark.GT.pairing_check([p * s for p, s in zip(P, sc)] + [-g1], H + [agg])
        out.append({"binding": "py_arkworks_bls12381 (RLC batch, multi-pairing)", "ok": ok,
                    "us_per_sig": (time.perf_counter() - t) / n * 1e6})
    except ImportError:
        pass
    try:
        import blspy

        t = time.perf_counter()
        ok = all(blspy.PopSchemeMPL.verify(blspy.G1Element.from_bytes(p), m,
                                           blspy.G2Element.from_bytes(s))
                 for p, m, s in zip(pks, msgs, sigs))
        out.append({"binding": "blspy (one by one: no point scalar multiplication, so no "
                               "RLC batch)", "ok": ok,
                    "us_per_sig": (time.perf_counter() - t) / n * 1e6})
    except ImportError:
        pass
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", help="era file (default: the newest in bench_out/)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--network", default="mainnet")
    ap.add_argument("--levels", default="structure,roots,signatures")
    ap.add_argument("--backends", type=int, default=0, metavar="N",
                    help="also compare BLS bindings on N signatures")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        print(json.dumps(run_level(args.path, args._child, args.jobs, args.network)))
        return 0
    path = args.path or str(sorted((ROOT / "bench_out").glob("*.era"))[-1])
    print(f"era file: {path} ({os.path.getsize(path) / 1e6:.0f} MB), jobs={args.jobs}")
    results = []
    for level in args.levels.split(","):
        out = subprocess.run([sys.executable, __file__, path, "--_child", level, "--jobs",
                              str(args.jobs), "--network", args.network],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(r)
        print(f"  {level:<11} {r['seconds']:7.2f} s  {r['blocks_per_s']:8.0f} blocks/s  "
              f"peak RSS {r['peak_rss_mb']:6.0f} MB  {r['line']}")
    sets = collect_sets(path, args.network)
    floor = bls_floor(sets, args.jobs)
    print(f"  BLS-only floor: {floor['seconds']:.2f} s for {floor['signatures']} signatures "
          f"({floor['per_signature_us']:.0f} us each, {args.jobs} processes)")
    sig = next((r for r in results if r["level"] == "signatures"), None)
    if sig:
        print(f"  signatures level / BLS floor = {sig['seconds'] / floor['seconds']:.2f}x")
    if args.backends:
        for b in bench_backends(args.backends):
            print(f"  backend {b['binding']}: {b['us_per_sig']:.0f} us/signature "
                  f"(ok={b['ok']}, one process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
