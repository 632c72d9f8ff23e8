#!/usr/bin/env python3
"""Benchmark light-client sync: updates verified per second over a mainnet-preset chain of
sync-committee periods, beside the floor of one FastAggregateVerify of 512 keys per update.

A synthetic electra chain (mainnet preset: 512-member committees, 8192 slots a period) is made
in memory: per period a committee of 512 distinct keys (secret keys derived from the period
and the index), a header whose state root commits (by a 64-leaf state tree) to the finalized
checkpoint, the current and the next committee, an execution payload header proven into the
block body, and a sync aggregate signed by the committee: the participants' secret keys are
summed and the sum signs once, which is exactly their aggregate signature.  Then, timed:

- `process`: `LightClientSpec.process_light_client_update` of every update in order from the
  bootstrap (branches, committee hash_tree_root, participation, signature), as the driver
  runs it on decoded objects;
- `decode+process`: the same, decoding each update from its SSZ bytes first;
- the floor: `bls.fast_aggregate_verify` over the 512 participant keys of each update (keys
  decompressed without subgroup checks, as a light client may for a proven committee), plus
  the same with subgroup checks.

Printed: updates/s and the ratio to the floor, the CPU flags, the BLS backend and hasher that
ran, and the load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from era_tools import bls, hashing, ssz  # noqa: E402
from era_tools.config import Fork, Network  # noqa: E402
from era_tools.lightclient import protocol as P  # noqa: E402
from era_tools.signing import compute_domain, compute_signing_root  # noqa: E402

SIZE = 512
SLOTS_PER_PERIOD = 8192
GVR = hashlib.sha256(b"bench_lightclient").digest()


def network() -> Network:
    versions = [("phase0", 0, "00000000"), ("altair", 0, "01000000"),
                ("bellatrix", 0, "02000000"), ("capella", 0, "03000000"),
                ("deneb", 0, "04000000"), ("electra", 0, "05000000")]
    return Network(name="benchnet", config_name="benchnet", preset_base="mainnet",
                   forks=tuple(Fork(n, e, bytes.fromhex(v)) for n, e, v in versions),
                   genesis_validators_root=GVR, genesis_time=0)


def secret(period: int, i: int) -> int:
    h = hashlib.sha256(b"sk" + period.to_bytes(8, "little") + i.to_bytes(4, "little")).digest()
    return int.from_bytes(h, "big") % (bls.CURVE_ORDER - 1) + 1


def committee(t, b, period: int):
    sks = [secret(period, i) for i in range(SIZE)]
    points = [b.g1_mul_generator(sk) for sk in sks]
    agg = points[0]
    for p in points[1:]:
        agg = b.add_g1(agg, p)
    return sks, t.SyncCommittee(pubkeys=tuple(b.compress_g1(p) for p in points),
                                aggregate_pubkey=b.compress_g1(agg))


def tree(leaves: list[bytes]) -> list[list[bytes]]:
    levels = [leaves]
    while len(levels[-1]) > 1:
        prev = levels[-1]
        levels.append([hashing.sha256(prev[k] + prev[k + 1]) for k in range(0, len(prev), 2)])
    return levels


def branch(levels, index: int) -> list[bytes]:
    out = []
    for level in levels[:-1]:
        out.append(level[index ^ 1])
        index //= 2
    return out


def lc_header(t, slot: int, state_root: bytes, seed: int):
    execution = t.ExecutionPayloadHeader(**{
        n: (ssz.default(s) if n not in ("block_number", "block_hash") else
            (slot if n == "block_number" else hashlib.sha256(seed.to_bytes(8, "little")).digest()))
        for n, s in t.ExecutionPayloadHeader._meta.fields})
    leaves = [hashlib.sha256(b"body" + bytes([k]) + seed.to_bytes(8, "little")).digest()
              for k in range(16)]
    leaves[9] = ssz.hash_tree_root(execution)  # EXECUTION_PAYLOAD_GINDEX 25 = 16 + 9
    levels = tree(leaves)
    beacon = t.BeaconBlockHeader(slot=slot, proposer_index=seed % 1000, parent_root=b"\x01" * 32,
                                 state_root=state_root, body_root=levels[-1][0])
    return t.LightClientHeader(beacon=beacon, execution=execution,
                               execution_branch=tuple(branch(levels, 9)))


def state(current, nxt, finalized_root: bytes, finalized_epoch: int, seed: int):
    """A 64-leaf electra state tree: (root, branches by gindex)."""
    leaves = [hashlib.sha256(b"field" + bytes([k]) + seed.to_bytes(8, "little")).digest()
              for k in range(64)]
    cp_leaves = [finalized_epoch.to_bytes(32, "little"), finalized_root]
    leaves[20] = hashing.sha256(cp_leaves[0] + cp_leaves[1])   # finalized_checkpoint
    leaves[22] = ssz.hash_tree_root(current)
    leaves[23] = ssz.hash_tree_root(nxt)
    levels = tree(leaves)
    return levels[-1][0], {
        "finalized": [cp_leaves[0]] + branch(levels, 20),       # gindex 169: depth 7
        "current": branch(levels, 22), "next": branch(levels, 23)}


def build(periods: int, participation: float, b, progress):
    t = ssz.types_for("electra", "mainnet")
    net = network()
    n_part = round(SIZE * participation)
    bits = tuple(i < n_part for i in range(SIZE))
    comms = [committee(t, b, p) for p in range(periods + 2)]
    progress("committees", periods + 2)
    # bootstrap early in period 0
    root0, br0 = state(comms[0][1], comms[1][1], b"\x00" * 32, 0, 0)
    boot_header = lc_header(t, 32, root0, 0)
    boot = t.LightClientBootstrap(header=boot_header, current_sync_committee=comms[0][1],
                                  current_sync_committee_branch=tuple(br0["current"]))
    updates = []
    for p in range(periods):
        base = p * SLOTS_PER_PERIOD
        fin_slot, att_slot = base + 4096, base + 6000
        fin_header = lc_header(t, fin_slot, hashlib.sha256(b"fs" + bytes(8) +
                                                           p.to_bytes(8, "little")).digest(),
                               10 * p + 1)
        fin_root = ssz.hash_tree_root(fin_header.beacon)
        sroot, br = state(comms[p][1], comms[p + 1][1], fin_root, fin_slot // 32, 10 * p + 2)
        att_header = lc_header(t, att_slot, sroot, 10 * p + 3)
        sig_slot = att_slot + 1
        domain = compute_domain(P.DOMAIN_SYNC_COMMITTEE, net.fork_at_slot(sig_slot - 1).version,
                                GVR)
        msg = compute_signing_root(ssz.hash_tree_root(att_header.beacon), domain)
        sk = sum(s for s, bit in zip(comms[p][0], bits) if bit) % bls.CURVE_ORDER
        sig = bls.sign(sk, msg, b)
        updates.append(t.LightClientUpdate(
            attested_header=att_header, next_sync_committee=comms[p + 1][1],
            next_sync_committee_branch=tuple(br["next"]), finalized_header=fin_header,
            finality_branch=tuple(br["finalized"]),
            sync_aggregate=t.SyncAggregate(sync_committee_bits=bits,
                                           sync_committee_signature=sig),
            signature_slot=sig_slot))
    return net, t, boot, updates, [c[1] for c in comms]


def cpu_line() -> str:
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    wanted = [f for f in ("avx512f", "sha_ni", "avx2") if f in flags]
    return (f"cpu flags: {' '.join(wanted) or 'none of avx512f/sha_ni/avx2'}; "
            f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")


def run(periods: int, participation: float, b) -> dict:
    t0 = time.perf_counter()
    net, t, boot, updates, comms = build(periods, participation, b, lambda *a: None)
    build_s = time.perf_counter() - t0
    raw = [ssz.encode(u) for u in updates]
    boot_root = ssz.hash_tree_root(boot.header.beacon)
    spec = P.LightClientSpec(net, backend=b)
    current = periods * SLOTS_PER_PERIOD + 1

    def sync(decoded: bool) -> float:
        store = spec.initialize_light_client_store(boot_root, boot)
        t1 = time.perf_counter()
        for k in range(periods):
            u = ssz.decode(raw[k], t.LightClientUpdate) if not decoded else updates[k]
            spec.process_light_client_update(store, u, current, GVR)
        dt = time.perf_counter() - t1
        assert int(store.finalized_header.beacon.slot) == int(
            updates[-1].finalized_header.beacon.slot), "sync did not reach the last period"
        return dt

    # fresh objects for the decoded run: py-ssz memoizes roots on the instances
    updates = [ssz.decode(r, t.LightClientUpdate) for r in raw]
    process_s = sync(True)
    decode_s = sync(False)

    def floor(subgroup: bool) -> float:
        t1 = time.perf_counter()
        for k, u in enumerate(updates):
            keys = [bytes(pk) for pk, bit in zip(comms[k].pubkeys,
                                                 u.sync_aggregate.sync_committee_bits) if bit]
            domain = compute_domain(P.DOMAIN_SYNC_COMMITTEE,
                                    net.fork_at_slot(u.signature_slot - 1).version, GVR)
            msg = compute_signing_root(ssz.hash_tree_root(u.attested_header.beacon), domain)
            assert bls.fast_aggregate_verify(keys, msg, bytes(
                u.sync_aggregate.sync_committee_signature), b, registry_pubkeys=not subgroup)
        return time.perf_counter() - t1

    floor_s = floor(False)
    floor_sg_s = floor(True)
    return {"periods": periods, "participation": participation, "build_s": build_s,
            "process_s": process_s, "decode_process_s": decode_s, "floor_s": floor_s,
            "floor_subgroup_s": floor_sg_s}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--periods", type=int, default=300,
                    help="sync-committee periods (300 ~ 3.4 years of mainnet at 27 h each)")
    ap.add_argument("--participation", type=float, action="append",
                    help="share of the committee signing (repeat; default 1.0 and 0.97)")
    args = ap.parse_args()
    b = bls.get_backend()
    print(cpu_line())
    print(f"code path: BLS backend {b.name}; native SHA-256 hasher: {hashing.native()}; "
          f"signature check: aggregate_pubkey minus the absent keys, committee keys without "
          f"subgroup checks (proven committee)")
    for part in args.participation or [1.0, 0.97]:
        r = run(args.periods, part, b)
        n = r["periods"]
        print(f"\n{n} mainnet-preset periods, participation {part:.2f} "
              f"({round(SIZE * part)}/{SIZE}); chain built in {r['build_s']:.1f} s")
        rows = [("process_light_client_update (decoded updates)", r["process_s"]),
                ("decode SSZ + process_light_client_update", r["decode_process_s"]),
                ("floor: FastAggregateVerify of the participants' keys", r["floor_s"]),
                ("floor with subgroup checks of every key", r["floor_subgroup_s"])]
        for name, s in rows:
            print(f"  {name:56s} {s:7.2f} s  {n / s:8.1f} updates/s  "
                  f"{s / r['floor_s']:5.2f}x floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
