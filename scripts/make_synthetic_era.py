#!/usr/bin/env python3
"""Write a synthetic mainnet-preset era file for benchmarking `era verify`.

- 8192 slots, about 5% empty; deneb (era 1100, the default) or electra (era 1500) on the
  mainnet schedule;
- blocks shaped like mainnet's by default (`--shape mainnet`): the figures of the era issue 15
  measured (a mainnet Deneb era, 7,773 blocks of ~157 KB SSZ, 96 attestations and 159
  transactions per block on average), drawn per body variant (`--variants`, default 8 distinct
  bodies, cycled over the slots):
  * transactions: count ~ normal(159, 40); sizes log-normal with a 300-byte median and sigma
    1.4 (mean ~800 bytes: most are transfers and swaps of 110-600 bytes, a tail of calldata
    and deployments; capped at 128 KB), which puts ~127 KB of transactions in a ~157 KB block;
  * attestations: deneb, count ~ normal(96, 16) within MAX_ATTESTATIONS = 128, one committee
    each, committees of validators / (32 slots x 64 committees) members (~488 at 1M
    validators); electra (EIP-7549 on-chain aggregates), MAX_ATTESTATIONS_ELECTRA = 8 per block,
    each over all 64 committees of a slot (aggregation_bits of ~31,000 bits);
  * blob commitments: count ~ Poisson(3) capped at 6 in deneb (target/max 3/6 blobs),
    Poisson(6) capped at 9 in electra (EIP-7691: 6/9);
  * 16 withdrawals (MAX_WITHDRAWALS_PER_PAYLOAD, full in practice), a sync aggregate;
  `--shape legacy` keeps the older shape (150 transactions of 300-1300 bytes, 64
  attestations: ~136 KiB blocks) for comparison with earlier BENCHMARKS.md figures;
- every block: a real BLS proposer signature from a generated key (DOMAIN_BEACON_PROPOSER, the
  fork version of the block's epoch, mainnet's genesis_validators_root);
- a state with 1,000,000 validators, built as bytes with numpy (proposers get real pubkeys,
  everyone else random bytes), whose block_roots match the blocks, so every level of
  `era verify` up to `signatures` passes (the chain level needs neighbouring eras).

Each body variant is built once (with the executable spec's default-constructible types) and
only its graffiti changes per slot, so block roots are computed from cached field roots.
Output: a directory (--out, default bench_out/), named by the era's own rules.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from era_tools import bls, ssz  # noqa: E402
from era_tools.config import get_network  # noqa: E402
from era_tools.era import EraWriter  # noqa: E402
from era_tools.hashing import merkleize, sha256  # noqa: E402
from era_tools.signing import (DOMAIN_BEACON_PROPOSER, compute_domain,  # noqa: E402
                               compute_signing_root)
from era_tools.verify import field_range  # noqa: E402

SPHR = 8192
ERAS = {"deneb": 1100, "electra": 1500}
VALIDATOR_SIZE = 121


def u64(n: int) -> bytes:
    return n.to_bytes(8, "little")


def leaf64(n: int) -> bytes:
    return n.to_bytes(32, "little")


def spec_module(fork: str):
    import importlib

    return importlib.import_module(f"eth_consensus_specs.{fork}.mainnet")


def normal_quantiles(n: int, mean: float, sd: float, rng: np.random.Generator) -> np.ndarray:
    """n values at the normal distribution's quantiles (k + 0.5) / n, shuffled: the sample has
    the distribution's shape and mean exactly, whatever n."""
    from statistics import NormalDist

    dist = NormalDist(mean, sd)
    return rng.permutation([dist.inv_cdf((k + 0.5) / n) for k in range(n)])


def tx_sizes(rng: np.random.Generator, n: int, shape: str) -> list[int]:
    if shape == "legacy":
        return [int(x) for x in rng.integers(300, 1300, n)]
    sizes = np.exp(normal_quantiles(n, np.log(300), 1.4, rng)) if n else np.zeros(0)
    return [int(x) for x in np.clip(sizes, 100, 128 * 1024)]


def make_body(spec, fork: str, rng: np.random.Generator, n_tx: int, n_att: int, n_blobs: int = 0,
              validators: int = 1_000_000, shape: str = "legacy"):
    body = spec.BeaconBlockBody()
    payload = spec.ExecutionPayload()
    txs = []
    for size in tx_sizes(rng, n_tx, shape):
        # half random, half structured: compresses roughly like real calldata
        raw = rng.integers(0, 256, size // 2, dtype=np.uint8).tobytes()
        raw += (b"\x00" * 12 + bytes(range(20))) * ((size - len(raw)) // 32 + 1)
        txs.append(spec.Transaction(raw[:size]))
    payload.transactions = txs
    payload.block_number = 20_000_000
    payload.gas_limit = 30_000_000
    payload.gas_used = 15_000_000
    payload.extra_data = spec.ExecutionPayload.fields()["extra_data"](b"synthetic")
    for i in range(16):
        payload.withdrawals.append(spec.Withdrawal(index=i, validator_index=i * 7,
                                                   address=b"\x11" * 20, amount=10**7))
    body.execution_payload = payload
    committee = 440 if shape == "legacy" else max(1, validators // (32 * 64))
    n_att = min(n_att, spec.BeaconBlockBody.fields()["attestations"].limit())  # electra: 8
    att_fields = spec.Attestation.fields()
    for i in range(n_att):
        if fork == "electra":
            committees = 4 if shape == "legacy" else 64
            bits = att_fields["aggregation_bits"](
                *[bool(x) for x in rng.integers(0, 2, committee * committees)])
            att = spec.Attestation(aggregation_bits=bits, committee_bits=att_fields[
                "committee_bits"](*([True] * committees + [False] * (64 - committees))))
        else:
            bits = att_fields["aggregation_bits"](
                *[bool(x) for x in rng.integers(0, 2, committee)])
            att = spec.Attestation(aggregation_bits=bits)
            att.data.index = i % 64
        att.data.slot = int(rng.integers(0, 2**20))
        att.data.beacon_block_root = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
        att.signature = spec.BLSSignature(b"\xc0" + b"\x00" * 95)
        body.attestations.append(att)
    for _ in range(n_blobs):
        body.blob_kzg_commitments.append(
            spec.KZGCommitment(b"\xa0" + rng.integers(0, 256, 47, dtype=np.uint8).tobytes()))
    body.sync_aggregate.sync_committee_signature = spec.BLSSignature(b"\xc0" + b"\x00" * 95)
    return body


def variant_counts(rng: np.random.Generator, fork: str, args, v: int,
                   counts: tuple) -> tuple[int, int, int]:
    """(transactions, attestations, blob commitments) of body variant v; counts: the
    variants' transaction and attestation counts (normal_quantiles)."""
    if args.shape == "legacy":
        return args.transactions or 150, args.attestations or 64, 0
    n_tx = max(0, int(round(counts[0][v])))
    if fork == "electra":
        n_att = args.attestations or 8
        n_blobs = min(9, int(rng.poisson(6)))
    else:
        n_att = max(1, min(128, int(round(counts[1][v]))))
        n_blobs = min(6, int(rng.poisson(3)))
    return n_tx, n_att, n_blobs


def build_state(spec, fork: str, era: int, block_roots: bytes, gvr: bytes, prev_v: bytes,
                cur_v: bytes, fork_epoch: int, n_validators: int, proposer_pks: dict,
                rng: np.random.Generator) -> bytes:
    state = spec.BeaconState()
    state.genesis_time = 1606824023
    state.genesis_validators_root = gvr
    state.slot = era * SPHR
    state.fork = spec.Fork(previous_version=prev_v, current_version=cur_v, epoch=fork_epoch)
    base = state.encode_bytes()
    cls = ssz.types_for(fork, "mainnet").BeaconState
    # fixed-size fields patched in place
    a, _ = field_range(cls, base, "block_roots")
    base = base[:a] + block_roots + rng.integers(0, 256, 32 * SPHR, dtype=np.uint8).tobytes() \
        + base[a + 64 * SPHR:]
    n = n_validators
    vals = np.zeros((n, VALIDATOR_SIZE), dtype=np.uint8)
    vals[:, :48] = rng.integers(0, 256, (n, 48), dtype=np.uint8)
    vals[:, 48] = 1
    vals[:, 49:80] = rng.integers(0, 256, (n, 31), dtype=np.uint8)
    eb = np.full(n, 32 * 10**9, dtype="<u8")
    vals[:, 80:88] = eb.view(np.uint8).reshape(n, 8)
    far = np.full((n, 2), 2**64 - 1, dtype="<u8").view(np.uint8).reshape(n, 16)
    vals[:, 105:121] = far  # exit_epoch, withdrawable_epoch
    for idx, pk in proposer_pks.items():
        vals[idx, :48] = np.frombuffer(pk, dtype=np.uint8)
    balances = (np.full(n, 32 * 10**9, dtype="<u8") + rng.integers(0, 10**7, n).astype("<u8"))
    replace = {
        "validators": vals.tobytes(),
        "balances": balances.astype("<u8").tobytes(),
        "previous_epoch_participation": np.full(n, 7, dtype=np.uint8).tobytes(),
        "current_epoch_participation": np.full(n, 7, dtype=np.uint8).tobytes(),
        "inactivity_scores": np.zeros(n, dtype="<u8").tobytes(),
    }
    return splice_fields(cls, base, replace)


def splice_fields(cls, data: bytes, new: dict) -> bytes:
    """Re-serialize a container with some variable-size fields' bytes replaced."""
    fixed, var = [], []
    for name, sedes in cls._meta.fields:
        a, b = field_range(cls, data, name)
        if sedes.is_fixed_sized:
            fixed.append((False, data[a:b]))
        else:
            fixed.append((True, None))
            var.append(new.get(name, data[a:b]))
    fixed_len = sum(4 if is_var else len(v) for is_var, v in fixed)
    out, offs, pos = [], [], fixed_len
    for v in var:
        offs.append(pos)
        pos += len(v)
    it = iter(offs)
    for is_var, v in fixed:
        out.append(next(it).to_bytes(4, "little") if is_var else v)
    return b"".join(out) + b"".join(var)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fork", choices=sorted(ERAS), default="deneb",
                    help="fork of the era (deneb: era 1100, electra: era 1500)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench_out",
                    help="output directory (an older file of the same era is replaced)")
    ap.add_argument("--validators", type=int, default=1_000_000,
                    help="validators in the state (also sets the committee sizes)")
    ap.add_argument("--empty", type=float, default=0.05, help="fraction of empty slots")
    ap.add_argument("--shape", choices=("mainnet", "legacy"), default="mainnet",
                    help="block shape: mainnet's (see the module docstring) or the older "
                         "150 transactions / 64 attestations")
    ap.add_argument("--transactions", type=int, default=0,
                    help="mean transactions per block (default: 159, legacy 150)")
    ap.add_argument("--attestations", type=int, default=0,
                    help="mean attestations per block (default: deneb 96, electra 8, legacy 64)")
    ap.add_argument("--variants", type=int, default=8, help="distinct block bodies, cycled")
    ap.add_argument("--slots", type=int, default=SPHR, help="blocks in the first N slots only "
                    "(for quick runs; the rest are empty)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (same seed, same file)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    net = get_network("mainnet")
    fork = args.fork
    era = ERAS[fork]
    spec = spec_module(fork)
    rng = np.random.default_rng(args.seed)
    gvr = net.genesis_validators_root
    start = (era - 1) * SPHR
    assert net.fork_name_at_slot(start) == fork and net.fork_name_at_slot(era * SPHR) == fork

    t = ssz.types_for(fork, "mainnet")
    gi = [n for n, _ in t.BeaconBlockBody._meta.fields].index("graffiti")
    g_off = 96 + 72  # randao_reveal, eth1_data, then graffiti
    variants = []  # (field roots, body bytes) per body variant
    nv = max(1, args.variants)
    tx_mean, att_mean = args.transactions or 159, args.attestations or 96
    counts = (normal_quantiles(nv, tx_mean, tx_mean / 4, rng),
              normal_quantiles(nv, att_mean, att_mean / 6, rng))
    for v in range(nv):
        n_tx, n_att, n_blobs = variant_counts(rng, fork, args, v, counts)
        body = make_body(spec, fork, rng, n_tx, n_att, n_blobs, args.validators, args.shape)
        body_obj = ssz.decode(body.encode_bytes(), t.BeaconBlockBody)
        field_roots = [ssz.hash_tree_root(getattr(body_obj, n), s)
                       for n, s in t.BeaconBlockBody._meta.fields]
        body_bytes = bytearray(body.encode_bytes())
        assert bytes(body_bytes[g_off:g_off + 32]) == bytes(body.graffiti)
        variants.append((field_roots, body_bytes))
        print(f"body variant {v}: {n_tx} transactions, {n_att} attestations, {n_blobs} blob "
              f"commitments, {len(body_bytes) / 1e3:.0f} KB", file=sys.stderr)

    version = net.fork_at_slot(start).version
    domain = compute_domain(DOMAIN_BEACON_PROPOSER, version, gvr)
    empty = rng.random(SPHR) < args.empty
    empty[args.slots:] = True
    proposers = rng.integers(0, args.validators, SPHR)
    keys: dict[int, int] = {}
    pks: dict[int, bytes] = {}
    blocks: dict[int, bytes] = {}
    block_roots = bytearray(32 * SPHR)
    parent = hashlib.sha256(b"parent of the era").digest()
    for i in range(SPHR):
        slot = start + i
        if empty[i]:
            block_roots[32 * i:32 * i + 32] = parent
            continue
        proposer = int(proposers[i])
        if proposer not in keys:
            sk = int.from_bytes(sha256(b"key" + u64(proposer)), "big") % bls.CURVE_ORDER or 1
            keys[proposer] = sk
            pks[proposer] = bls.secret_to_pubkey(sk)
        graffiti = sha256(u64(slot))
        field_roots, body_bytes = variants[i % len(variants)]
        roots = list(field_roots)
        roots[gi] = graffiti
        body_root = merkleize(b"".join(roots), 16)
        state_root = sha256(b"state" + u64(slot))
        root = merkleize(leaf64(slot) + leaf64(proposer) + parent + state_root + body_root, 8)
        sig = bls.sign(keys[proposer], compute_signing_root(root, domain))
        body_bytes[g_off:g_off + 32] = graffiti
        msg = u64(slot) + u64(proposer) + parent + state_root + (84).to_bytes(4, "little")
        blocks[slot] = (100).to_bytes(4, "little") + sig + msg + bytes(body_bytes)
        block_roots[32 * i:32 * i + 32] = root
        parent = root
        if i % 1024 == 0:
            print(f"slot {slot}: {len(blocks)} blocks, {time.perf_counter() - t0:.1f}s",
                  file=sys.stderr)
    # self-check the root shortcut against the full SSZ root, on the first block of each variant
    firsts: dict[int, int] = {}
    for slot in sorted(blocks):
        firsts.setdefault((slot - start) % len(variants), slot)
    for first in firsts.values():
        obj = ssz.decode_block(blocks[first], fork, "mainnet")
        want = bytes(block_roots[32 * (first - start):32 * (first - start) + 32])
        assert ssz.block_root(obj) == want, f"block root shortcut wrong at slot {first}"

    prev_v = net.forks[[f.name for f in net.forks].index(fork) - 1].version
    state = build_state(spec, fork, era, bytes(block_roots), gvr, prev_v, version,
                        net.fork_by_name(fork).epoch, args.validators, pks, rng)
    print(f"state: {len(state) / 1e6:.0f} MB, {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob(f"mainnet-{era:05d}-*.era"):
        old.unlink()
    with EraWriter(args.out, "mainnet", era, SPHR) as w:
        for slot in sorted(blocks):
            w.add_block(slot, ssz=blocks[slot])
        w.set_state(ssz=state)
        path = w.finish()
    size = os.path.getsize(path)
    avg = sum(len(b) for b in blocks.values()) / len(blocks)
    print(f"{path}: {len(blocks)} blocks (avg {avg / 1e3:.0f} KB), {SPHR - len(blocks)} empty, "
          f"{args.validators} validators, {size / 1e6:.0f} MB, {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
