"""bls.py: the fast backend against the py_ecc oracle, batch verification with random linear
combinations, bisection, and the crafted pair that fools plain aggregation."""

from __future__ import annotations

import hashlib

import pytest

from era_tools import bls
from era_tools.signing import (DOMAIN_BEACON_PROPOSER, compute_domain, compute_fork_data_root,
                               compute_signing_root)


def key(i: int) -> int:
    return int.from_bytes(hashlib.sha256(i.to_bytes(4, "little")).digest(), "big") % bls.CURVE_ORDER


def make_sets(n: int) -> list[bls.SignatureSet]:
    out = []
    for i in range(1, n + 1):
        msg = hashlib.sha256(b"msg %d" % i).digest()
        out.append(bls.SignatureSet(bls.secret_to_pubkey(key(i)), msg, bls.sign(key(i), msg)))
    return out


@pytest.fixture(scope="module")
def sets():
    return make_sets(12)


def test_fast_backend_matches_py_ecc_oracle():
    from py_ecc.bls import G2ProofOfPossession as oracle

    sk, msg = key(7), b"\x33" * 32
    assert bls.secret_to_pubkey(sk) == oracle.SkToPk(sk)
    assert bls.sign(sk, msg) == oracle.Sign(sk, msg)
    ecc = bls.get_backend("py_ecc")
    assert bls.verify(oracle.SkToPk(sk), msg, oracle.Sign(sk, msg), ecc)
    assert not bls.verify(oracle.SkToPk(sk), b"\x34" * 32, oracle.Sign(sk, msg), ecc)


def test_signing_helpers_match_the_spec():
    from eth_consensus_specs.capella import minimal as spec

    gvr, version, root = b"\x83" * 32, b"\x03\x00\x00\x01", b"\x5a" * 32
    assert compute_fork_data_root(version, gvr) == bytes(spec.compute_fork_data_root(
        spec.Version(version), spec.Root(gvr)))
    domain = compute_domain(DOMAIN_BEACON_PROPOSER, version, gvr)
    assert domain == bytes(spec.compute_domain(spec.DOMAIN_BEACON_PROPOSER, spec.Version(version),
                                               spec.Root(gvr)))
    assert compute_signing_root(root, domain) == bytes(spec.compute_signing_root(
        spec.Root(root), spec.Domain(domain)))


def test_batch_verify_accepts_valid_sets(sets):
    assert bls.batch_verify(sets)
    assert bls.batch_verify(sets[:1])
    assert bls.batch_verify([])
    assert bls.find_invalid(sets) == []


def test_bisection_names_every_bad_set(sets):
    bad = list(sets)
    bad[2] = bad[2]._replace(signature=sets[3].signature)
    bad[9] = bad[9]._replace(message=b"\x00" * 32)
    bad[11] = bad[11]._replace(pubkey=sets[0].pubkey)
    assert not bls.batch_verify(bad)
    assert bls.find_invalid(bad) == [2, 9, 11]


def test_invalid_points_are_rejected(sets):
    s = sets[0]
    infinity_pk = b"\xc0" + b"\x00" * 47
    assert not bls.verify(infinity_pk, s.message, s.signature)
    assert not bls.batch_verify([s, s._replace(pubkey=b"\xa0" + b"\x00" * 47)])
    assert bls.find_invalid([s, s._replace(signature=b"\x00" * 96)]) == [1]
    assert not bls.verify(s.pubkey[:47], s.message, s.signature)


def test_crafted_pair_passes_plain_aggregation_but_not_batch_verification(sets):
    a, b = sets[0], sets[1]
    delta = bls.sign(key(99), b"delta")
    a_bad = a._replace(signature=bls.signature_add(a.signature, delta))
    b_bad = b._replace(signature=bls.signature_add(b.signature, bls.signature_neg(delta)))
    assert not bls.verify(*a_bad) and not bls.verify(*b_bad)
    # Plain aggregation cannot tell: the deltas cancel in the sum.
    agg = bls.aggregate([a_bad.signature, b_bad.signature])
    assert bls.aggregate_verify([a.pubkey, b.pubkey], [a.message, b.message], agg)
    # The random linear combination can.
    assert not bls.batch_verify([a_bad, b_bad])
    assert not bls.batch_verify([a_bad, b_bad] + sets[2:])
    assert bls.find_invalid([a_bad, b_bad] + sets[2:]) == [0, 1]


def test_py_ecc_backend_batch_agrees(sets):
    ecc = bls.get_backend("py_ecc")
    delta = bls.sign(key(98), b"delta")
    a, b = sets[0], sets[1]
    pair = [a._replace(signature=bls.signature_add(a.signature, delta)),
            b._replace(signature=bls.signature_add(b.signature, bls.signature_neg(delta)))]
    assert bls.batch_verify(sets[:2], ecc)
    assert not bls.batch_verify(pair, ecc)


# On the curve, outside the prime-order subgroups (G1: x = 4; G2: an SSWU map output before
# cofactor clearing), compressed.
NON_SUBGROUP_PK = bytes.fromhex("80" + "00" * 46 + "04")
NON_SUBGROUP_SIG = bytes.fromhex(
    "80b383ec2171a4820ffb284d92c5c046080227eb5b60ed71db04d7d0e78fb20889f265ae5e061669811569a6a6c4"
    "918a00c85d5ad55709df9f7add6bbc1dab8537bca1f7a08dda2803047fb0ec79bc4fb114440efcc4459cb41400"
    "ed6d01d98c")


@pytest.mark.parametrize("name", ["blst", "pyblst", "py_ecc"])
def test_points_outside_the_subgroups_are_rejected(name):
    from py_ecc.bls.g2_primitives import pubkey_to_G1, signature_to_G2
    from py_ecc.optimized_bls12_381 import b, b2, is_on_curve

    # the test points really are on the curves (only the subgroup check can reject them)
    assert is_on_curve(pubkey_to_G1(NON_SUBGROUP_PK), b)
    assert is_on_curve(signature_to_G2(NON_SUBGROUP_SIG), b2)
    backend = bls.get_backend(name)
    with pytest.raises(bls.InvalidPoint):
        backend.pubkey(NON_SUBGROUP_PK)
    with pytest.raises(bls.InvalidPoint):
        backend.signature(NON_SUBGROUP_SIG)


def test_msm_g2_equals_the_sum_of_scalar_multiples():
    import random

    b = bls.get_backend("pyblst")  # the Python Pippenger; blst's own runs inside its batch
    rng = random.Random(4)
    for n in (1, 2, 3, 17, 50, 130):
        pts = [b.hash_to_g2(b"p%d" % (i % 7)) for i in range(n)]  # repeats: doubling in buckets
        rs = [rng.getrandbits(64) | 1 for _ in range(n)]
        rs[0] = (1 << 64) - 1
        want = None
        for p, r in zip(pts, rs):
            x = b.mul_g2(p, r)
            want = x if want is None else b.add_g2(want, x)
        assert b.compress_g2(b.msm_g2(pts, rs)) == b.compress_g2(want), n


@pytest.mark.parametrize("name", ["blst", "pyblst"])
def test_fast_backend_accepts_and_rejects_like_py_ecc(sets, name):
    """Accept/reject of each native batch path agrees with the py_ecc oracle, set by set."""
    fast, ecc = bls.get_backend(name), bls.get_backend("py_ecc")
    a, b = sets[4], sets[5]
    delta = bls.sign(key(97), b"delta")
    cases = {
        "valid pair": [a, b],
        "swapped signatures": [a._replace(signature=b.signature), b._replace(signature=a.signature)],
        "wrong message": [a, b._replace(message=a.message)],
        "crafted pair": [a._replace(signature=bls.signature_add(a.signature, delta)),
                         b._replace(signature=bls.signature_add(b.signature,
                                                                bls.signature_neg(delta)))],
        "non-subgroup signature": [a, b._replace(signature=NON_SUBGROUP_SIG)],
        "non-subgroup pubkey": [a._replace(pubkey=NON_SUBGROUP_PK), b],
    }
    results = {}
    for what, batch in cases.items():
        got = bls.batch_verify(batch, fast)
        assert got == bls.batch_verify(batch, ecc), what
        results[what] = got
    assert results == {"valid pair": True, "swapped signatures": False, "wrong message": False,
                       "crafted pair": False, "non-subgroup signature": False,
                       "non-subgroup pubkey": False}


def test_default_backend_is_blsts_c_api_and_agrees_with_pyblst(sets):
    """The default is blst's C API (ckzg is a dependency); on valid sets, on each single bad
    set and on duplicated pubkeys (the decompressed-pubkey cache) it answers like pyblst."""
    fast, ref = bls.get_backend(), bls.get_backend("pyblst")
    assert fast.name == "blst"
    twice = sets[:3] + sets[:3]
    assert bls.batch_verify(twice, fast) and bls.batch_verify(twice, ref)
    for i in range(len(sets)):
        bad = list(sets)
        bad[i] = bad[i]._replace(message=bytes(32))
        assert bls.find_invalid(bad, fast) == bls.find_invalid(bad, ref) == [i]
    inf_sig = b"\xc0" + bytes(95)
    assert bls.find_invalid([sets[0], sets[1]._replace(signature=inf_sig)], fast) == [1]
    assert bls.find_invalid([sets[0], sets[1]._replace(signature=inf_sig)], ref) == [1]
    assert fast.compress_g2(fast.neg_g2(fast.signature(sets[0].signature))) == \
        bls.signature_neg(sets[0].signature, ref)


def test_a_blst_library_that_fails_its_known_answer_test_is_not_used(monkeypatch):
    pk, msg, sig = bls._BlstC._KAT
    monkeypatch.setattr(bls._BlstC, "_KAT", (pk, msg + b"?", sig))
    monkeypatch.setattr(bls, "_instances", {})
    monkeypatch.delenv("ERA_TOOLS_BLS_BACKEND", raising=False)
    with pytest.raises(ImportError, match="known-answer"):
        bls.get_backend("blst")
    assert bls.get_backend().name == "pyblst"


@pytest.mark.parametrize("name", ["blst", "pyblst"])
def test_registry_pubkeys_skip_only_the_pubkey_subgroup_check(sets, name):
    """Pubkeys from a trusted state's registry skip their G1 subgroup check (blst); every
    other check stands: bad signatures are still named, non-subgroup signatures rejected."""
    b = bls.get_backend(name)
    assert bls.find_invalid(sets, b, registry_pubkeys=True) == []
    bad = list(sets)
    bad[3] = bad[3]._replace(signature=sets[4].signature)
    bad[7] = bad[7]._replace(signature=NON_SUBGROUP_SIG)
    assert bls.find_invalid(bad, b, registry_pubkeys=True) == [3, 7]
    assert bls.find_invalid([sets[0], sets[1]._replace(pubkey=b"\xc0" + bytes(47))], b,
                            registry_pubkeys=True) == [1]  # the identity is still refused
