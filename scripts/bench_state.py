#!/usr/bin/env python3
"""Benchmark: open a big mainnet BeaconState from its compressed e2store record.

Builds a synthetic capella/mainnet BeaconState with N validators (default 1,000,000) directly as
bytes with numpy (no per-validator objects), snappy-frames it into a CompressedBeaconState
e2store record in a temp file, then, in a fresh subprocess (so the peak RSS is the reader's
alone):
  - baseline: read the record + decompress only (the floor);
  - read + decompress + StateView + every pubkey as a compact (N, 48) array;
  - peak RSS of that process (resource.getrusage ru_maxrss).
Then the state hash_tree_root from the bytes with the native batch hasher vs the hashlib
fallback (same code, era_tools.hashing._native_hash_pairs set to None), in the same run.

    python scripts/bench_state.py                 # 1M validators
    python scripts/bench_state.py --validators 100000 --skip-hashlib
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from era_tools import e2store, framing, hashing  # noqa: E402
from era_tools import ssz  # noqa: E402
from era_tools.ssz.fast import compile_sedes, serialize_container  # noqa: E402
from era_tools.ssz.view import StateView, numpy_dtype  # noqa: E402

FORK, PRESET = "capella", "mainnet"


def synthetic_state(n: int, seed: int = 1) -> bytes:
    """Serialized capella/mainnet BeaconState with n validators, built with numpy."""
    t = ssz.types_for(FORK, PRESET)
    node = compile_sedes(t.BeaconState)
    fields = dict(zip(node.names, node.fields))
    rng = np.random.default_rng(seed)
    vdt = numpy_dtype(fields["validators"].elem)
    v = np.zeros(n, dtype=vdt)
    v["pubkey"] = rng.integers(0, 256, size=(n, 48), dtype=np.uint8)
    v["withdrawal_credentials"] = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    v["effective_balance"] = 32_000_000_000
    v["slashed"] = rng.random(n) < 0.001
    v["activation_eligibility_epoch"] = rng.integers(0, 200_000, n)
    v["activation_epoch"] = v["activation_eligibility_epoch"] + 5
    v["exit_epoch"] = 2**64 - 1
    v["withdrawable_epoch"] = 2**64 - 1

    def rand(nbytes):
        return rng.integers(0, 256, size=nbytes, dtype=np.uint8).tobytes()

    slot = 7_000_000
    values = {
        "genesis_time": (1_606_824_023).to_bytes(8, "little"),
        "genesis_validators_root": rand(32),
        "slot": slot.to_bytes(8, "little"),
        "block_roots": rand(fields["block_roots"].size),
        "state_roots": rand(fields["state_roots"].size),
        "historical_roots": rand(32 * 758),
        "randao_mixes": rand(fields["randao_mixes"].size),
        "validators": v.tobytes(),
        "balances": rng.integers(31_000_000_000, 33_000_000_000, n, dtype=np.uint64)
        .astype("<u8").tobytes(),
        "previous_epoch_participation": rng.integers(0, 8, n, dtype=np.uint8).tobytes(),
        "current_epoch_participation": rng.integers(0, 8, n, dtype=np.uint8).tobytes(),
        "inactivity_scores": np.zeros(n, dtype="<u8").tobytes(),
        "historical_summaries": rand(64 * 100),
    }
    return serialize_container(t.BeaconState, values)


def measure_open(path: str, repeat: int = 3) -> dict:
    """Run in a fresh process: read + decompress (the floor), then read + decompress +
    StateView + every pubkey; best of `repeat` each (the machine is shared)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        rec = e2store.read_header(f, 0, size, path)
        t_floor = t_view = t_total = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            payload = e2store.read_data(f, rec)
            data = framing.decompress(payload, where=path, base=rec.data_offset)
            t_floor = min(t_floor, time.perf_counter() - t0)
            del payload, data
        rss_floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        for _ in range(repeat):
            t0 = time.perf_counter()
            payload = e2store.read_data(f, rec)
            data = framing.decompress(payload, where=path, base=rec.data_offset)
            del payload
            view = StateView(data, FORK, PRESET)
            t_view = min(t_view, time.perf_counter() - t0)
            keys = view.pubkeys(contiguous=True)
            t_total = min(t_total, time.perf_counter() - t0)
            state_bytes, n, slot = len(data), int(keys.shape[0]), view.slot
            del view, data, keys
    return {
        "compressed_bytes": rec.length,
        "state_bytes": state_bytes,
        "validators": n,
        "slot": slot,
        "decompress_s": t_floor,
        "open_s": t_view,
        "open_and_pubkeys_s": t_total,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "peak_rss_after_decompress_only_bytes": rss_floor,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--validators", type=int, default=1_000_000)
    ap.add_argument("--skip-hashlib", action="store_true",
                    help="skip the (slow) hashlib-fallback state root")
    ap.add_argument("--measure-open", help=argparse.SUPPRESS)  # internal: subprocess mode
    args = ap.parse_args()
    if args.measure_open:
        print(json.dumps(measure_open(args.measure_open)))
        return

    t0 = time.perf_counter()
    state = synthetic_state(args.validators)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    record = e2store.encode_record(e2store.COMPRESSED_BEACON_STATE, framing.compress(state))
    t_compress = time.perf_counter() - t0
    print(f"synthetic {FORK}/{PRESET} state: {args.validators:,} validators, "
          f"{len(state) / 1e6:.1f} MB SSZ, {len(record) / 1e6:.1f} MB record "
          f"(built in {t_build:.2f} s, compressed in {t_compress:.2f} s)")

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "state.e2s")
        with open(path, "wb") as f:
            f.write(record)
        del record
        out = subprocess.run([sys.executable, __file__, "--measure-open", path],
                             check=True, capture_output=True, text=True)
        m = json.loads(out.stdout)
    print("open from compressed record (fresh process, best of 3):")
    print(f"  read + decompress only (floor)     {m['decompress_s']:.3f} s")
    print(f"  + StateView                        {m['open_s']:.3f} s")
    print(f"  + all {m['validators']:,} pubkeys as (N,48)    {m['open_and_pubkeys_s']:.3f} s")
    print(f"  peak RSS                           {m['peak_rss_bytes'] / 2**20:.0f} MiB "
          f"(after decompress alone: {m['peak_rss_after_decompress_only_bytes'] / 2**20:.0f} MiB)")

    view = StateView(state, FORK, PRESET)
    t_native = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        root_native = view.hash_tree_root()
        t_native = min(t_native, time.perf_counter() - t0)
    native_name = "native OpenSSL" if hashing._native_hash_pairs is not None else "NOT BUILT"
    print(f"state hash_tree_root from bytes ({native_name}): {t_native:.3f} s  "
          f"0x{root_native.hex()}")
    if not args.skip_hashlib:
        saved = hashing._native_hash_pairs
        hashing._native_hash_pairs = None
        try:
            t0 = time.perf_counter()
            root_py = view.hash_tree_root()
            t_py = time.perf_counter() - t0
        finally:
            hashing._native_hash_pairs = saved
        same = "same root" if root_py == root_native else "ROOT MISMATCH"
        print(f"state hash_tree_root from bytes (hashlib fallback): {t_py:.3f} s  ({same}; "
              f"native is {t_py / t_native:.1f}x faster)")


if __name__ == "__main__":
    main()
