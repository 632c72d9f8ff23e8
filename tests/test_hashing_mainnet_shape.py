"""Mainnet-shaped blocks from scripts/make_synthetic_era.py: the shape it promises (counts and
sizes per its docstring), and their roots on every native hash path against the Python walker
and the executable spec's own hash_tree_root."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from era_tools import ssz
from era_tools.ssz import fast

ROOT = Path(__file__).resolve().parents[1]


def _synth():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        return importlib.import_module("make_synthetic_era")
    finally:
        sys.path.pop(0)


def _args(**kw):
    import argparse

    return argparse.Namespace(**{"shape": "mainnet", "transactions": 0, "attestations": 0, **kw})


@pytest.mark.parametrize("fork", ["deneb", "electra"])
def test_variant_counts_have_the_documented_means(fork):
    """Transactions average 159 and deneb attestations 96 over the default 8 variants (normal
    quantiles: exact means whatever the count); electra carries 8 on-chain aggregates; blob
    commitments stay within the fork's maximum."""
    synth = _synth()
    rng = np.random.default_rng(1)
    nv = 8
    counts = (synth.normal_quantiles(nv, 159, 159 / 4, rng),
              synth.normal_quantiles(nv, 96, 96 / 6, rng))
    got = [synth.variant_counts(rng, fork, _args(), v, counts) for v in range(nv)]
    txs, atts, blobs = zip(*got)
    assert abs(np.mean(txs) - 159) <= 1 and len(set(txs)) == nv
    if fork == "electra":
        assert set(atts) == {8}
        assert max(blobs) <= 9
    else:
        assert abs(np.mean(atts) - 96) <= 1 and max(atts) <= 128
        assert max(blobs) <= 6


def test_transaction_sizes_are_log_normal_around_300_bytes():
    synth = _synth()
    sizes = synth.tx_sizes(np.random.default_rng(2), 159, "mainnet")
    assert len(sizes) == 159 and min(sizes) >= 100 and max(sizes) <= 128 * 1024
    assert 250 <= float(np.median(sizes)) <= 350
    assert 600 <= float(np.mean(sizes)) <= 1000  # the heavy tail: ~800 bytes on average


@pytest.mark.skipif(fast._native_ssz_root is None, reason="native extension not built")
@pytest.mark.parametrize("fork", ["deneb", "electra"])
def test_mainnet_shaped_body_roots_on_every_hash_path(fork):
    """A mainnet-shaped BeaconBlockBody (deneb: ~96 attestations of one committee, electra: 8
    aggregates over 64 committees; 159 transactions, blob commitments): the spec's
    hash_tree_root == the Python walker == the native walker on every usable hash path."""
    from era_tools import _sha256

    synth = _synth()
    spec = synth.spec_module(fork)
    rng = np.random.default_rng(3)
    n_att = 8 if fork == "electra" else 96
    body = synth.make_body(spec, fork, rng, 159, n_att, 4, 1_000_000, "mainnet")
    data = body.encode_bytes()
    want = bytes(body.hash_tree_root())
    sedes = ssz.types_for(fork, "mainnet").BeaconBlockBody
    assert fast.hash_tree_root_bytes_py(sedes, data) == want
    prev = _sha256._path()
    try:
        for path in _sha256.PATHS:
            _sha256._path(path)
            assert fast.hash_tree_root_bytes(sedes, data) == want, path
    finally:
        _sha256._path(prev)
    assert len(body.attestations) == n_att and len(body.execution_payload.transactions) == 159
    if fork == "electra":
        assert len(body.attestations[0].aggregation_bits) == 64 * (1_000_000 // (32 * 64))
