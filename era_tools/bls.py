"""BLS12-381 signatures as Ethereum uses them (the proof-of-possession ciphersuite), behind one
small interface.  The only module that imports a BLS library.

Backends:
- ``blst`` (default): `pyblst`, bindings to supranational/blst.  Measured against `blspy` and
  `py_arkworks_bls12381` in scripts/bench_verify.py --backends (see BENCHMARKS.md).
- ``py_ecc``: the pure-Python reference.  Slow (seconds per pairing); it is the fallback when
  no native binding is installed and the oracle tests check the fast backend against.

Choose with ``ERA_TOOLS_BLS_BACKEND=blst|py_ecc`` or ``get_backend(name)``.

Batch verification (`batch_verify`) checks many (pubkey, message, signature) sets with one
final exponentiation using a random linear combination:

    e(g1, sum r_i * sig_i) == prod e(r_i * pk_i, H(m_i))      r_i random, non-zero, 64-bit

Plain aggregation (all r_i = 1) is *not* used: it accepts crafted pairs of bad signatures
(sig_1 + D, sig_2 - D).  `verify_sets` bisects a failing batch so the caller learns which sets
are bad.

Cost per signature in a batch (blst): decompress + subgroup-check the pubkey and the signature,
hash-to-G2 of the message, one 64-bit G1 scalar multiplication r_i * pk_i, one Miller loop;
sum r_i * sig_i is a Pippenger multi-scalar multiplication over point additions (`msm_g2`,
~5x cheaper per point than pyblst's `scalar_mul`, which always runs the full 255-bit ladder).
One final exponentiation per batch.  (`scripts/bench_verify.py --backends N` measures this
against py_arkworks_bls12381's multi-pairing and blspy; pyblst was the fastest.)

Subgroup checks (KeyValidate for pubkeys, signature_to_point + subgroup for signatures):
- blst: `BlstP1Element/BlstP2Element.uncompress` run blst's `*_uncompress` and then
  `*_in_g1/in_g2`, rejecting points off the curve or outside the prime-order subgroup
  (BLST_POINT_NOT_IN_GROUP); the identity pubkey is rejected here by its infinity flag.
- py_ecc: `pubkey_to_G1`/`signature_to_G2` check the curve; the subgroup is checked here by
  multiplying by the curve order.
tests/test_bls.py feeds both backends on-curve points outside the subgroups.
"""

from __future__ import annotations

import os
import secrets
from typing import NamedTuple, Sequence

DST = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
ZERO_SIGNATURE = b"\x00" * 96
# Compressed generator of G1 (zcash serialization).
_G1_GENERATOR = bytes.fromhex(
    "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb"
    "22c6bb")
CURVE_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001


class SignatureSet(NamedTuple):
    pubkey: bytes      # 48-byte compressed G1
    message: bytes     # the signing root
    signature: bytes   # 96-byte compressed G2


class InvalidPoint(ValueError):
    """Bytes that are not a valid compressed point of the right subgroup."""


# --------------------------------------------------------------------------------------------
# Backends: the same few primitives, so the batch logic is written once.


class _Blst:
    name = "blst"

    def __init__(self):
        import pyblst

        self._m = pyblst
        self._P1 = pyblst.BlstP1Element
        self._P2 = pyblst.BlstP2Element
        self.g1 = self._P1().uncompress(_G1_GENERATOR)

    def pubkey(self, data: bytes):
        if len(data) != 48:
            raise InvalidPoint(f"public key is {len(data)} bytes, expected 48")
        if data[0] & 0x40:  # infinity flag: KeyValidate rejects the identity
            raise InvalidPoint("public key is the point at infinity")
        try:
            return self._P1().uncompress(bytes(data))  # checks curve and subgroup
        except ValueError as exc:
            raise InvalidPoint(f"invalid public key: {exc}") from None

    def signature(self, data: bytes):
        if len(data) != 96:
            raise InvalidPoint(f"signature is {len(data)} bytes, expected 96")
        try:
            return self._P2().uncompress(bytes(data))
        except ValueError as exc:
            raise InvalidPoint(f"invalid signature: {exc}") from None

    def hash_to_g2(self, message: bytes):
        return self._P2.hash_to_group(bytes(message), DST)

    def mul_g1(self, p, r: int):
        return p.scalar_mul(r)

    def mul_g2(self, p, r: int):
        return p.scalar_mul(r)

    def add_g2(self, a, b):
        return a + b

    def neg_g2(self, a):
        return -a

    def msm_g2(self, points, scalars):
        """sum scalars[i] * points[i] (scalars < 2**64) by Pippenger's bucket method: each
        c-bit window costs one addition per point plus 2 * 2**c bucket additions."""
        return _pippenger(points, scalars, 64)

    def compress_g2(self, p) -> bytes:
        return bytes(p.compress())

    def compress_g1(self, p) -> bytes:
        return bytes(p.compress())

    def g1_mul_generator(self, sk: int):
        return self.g1.scalar_mul(sk)

    def check(self, pairs, agg_sig) -> bool:
        """prod e(P_i, H_i) == e(g1, agg_sig)."""
        ml = None
        for p, h in pairs:
            x = self._m.miller_loop(p, h)
            ml = x if ml is None else ml * x
        return bool(self._m.final_verify(ml, self._m.miller_loop(self.g1, agg_sig)))


class _PyEcc:
    name = "py_ecc"

    def __init__(self):
        import hashlib

        from py_ecc import optimized_bls12_381 as curve
        from py_ecc.bls import g2_primitives as prim
        from py_ecc.bls.hash_to_curve import hash_to_G2

        self._c = curve
        self._prim = prim
        self._h2c = lambda m: hash_to_G2(m, DST, hashlib.sha256)
        self.g1 = curve.G1

    def pubkey(self, data: bytes):
        if len(data) != 48:
            raise InvalidPoint(f"public key is {len(data)} bytes, expected 48")
        try:
            p = self._prim.pubkey_to_G1(bytes(data))
        except Exception as exc:  # py_ecc raises ValueError/AssertionError on bad points
            raise InvalidPoint(f"invalid public key: {exc}") from None
        if self._c.is_inf(p):
            raise InvalidPoint("public key is the point at infinity")
        if not self._c.is_inf(self._c.multiply(p, CURVE_ORDER)):
            raise InvalidPoint("public key is not in the G1 subgroup")
        return p

    def signature(self, data: bytes):
        if len(data) != 96:
            raise InvalidPoint(f"signature is {len(data)} bytes, expected 96")
        try:
            s = self._prim.signature_to_G2(bytes(data))
        except Exception as exc:
            raise InvalidPoint(f"invalid signature: {exc}") from None
        if not self._c.is_inf(self._c.multiply(s, CURVE_ORDER)):
            raise InvalidPoint("signature is not in the G2 subgroup")
        return s

    def hash_to_g2(self, message: bytes):
        return self._h2c(bytes(message))

    def mul_g1(self, p, r: int):
        return self._c.multiply(p, r)

    def mul_g2(self, p, r: int):
        return self._c.multiply(p, r)

    def add_g2(self, a, b):
        return self._c.add(a, b)

    def msm_g2(self, points, scalars):
        acc = None
        for p, r in zip(points, scalars):
            x = self._c.multiply(p, r)
            acc = x if acc is None else self._c.add(acc, x)
        return acc

    def neg_g2(self, a):
        return self._c.neg(a)

    def compress_g2(self, p) -> bytes:
        return bytes(self._prim.G2_to_signature(p))

    def compress_g1(self, p) -> bytes:
        return bytes(self._prim.G1_to_pubkey(p))

    def g1_mul_generator(self, sk: int):
        return self._c.multiply(self._c.G1, sk)

    def check(self, pairs, agg_sig) -> bool:
        c = self._c
        acc = c.pairing(agg_sig, c.neg(c.G1), final_exponentiate=False)
        for p, h in pairs:
            acc = acc * c.pairing(h, p, final_exponentiate=False)
        return c.final_exponentiate(acc) == c.FQ12.one()


def _pippenger(points, scalars, bits: int):
    """Multi-scalar multiplication with the points' own + (no identity element needed)."""
    n = len(points)
    if n == 0:
        raise ValueError("empty multi-scalar multiplication")
    c = 3 if n < 16 else 4 if n < 48 else 5 if n < 128 else 6
    mask = (1 << c) - 1
    acc = None
    for w in range((bits + c - 1) // c - 1, -1, -1):
        if acc is not None:
            for _ in range(c):
                acc = acc + acc
        buckets = [None] * (mask + 1)
        shift = w * c
        for p, r in zip(points, scalars):
            k = (r >> shift) & mask
            if k:
                cur = buckets[k]
                buckets[k] = p if cur is None else cur + p
        running = total = None
        for k in range(mask, 0, -1):  # total = sum k * bucket[k]
            x = buckets[k]
            if x is not None:
                running = x if running is None else running + x
            if running is not None:
                total = running if total is None else total + running
        if total is not None:
            acc = total if acc is None else acc + total
    return acc


_BACKENDS = {"blst": _Blst, "py_ecc": _PyEcc}
_instances: dict[str, object] = {}


def available_backends() -> list[str]:
    out = []
    for name in _BACKENDS:
        try:
            get_backend(name)
        except ImportError:
            continue
        out.append(name)
    return out


def get_backend(name: str | None = None):
    """The named backend, or the configured default (env ERA_TOOLS_BLS_BACKEND, else blst,
    else py_ecc)."""
    if name is None:
        name = os.environ.get("ERA_TOOLS_BLS_BACKEND") or None
    if name is None:
        try:
            return get_backend("blst")
        except ImportError:
            return get_backend("py_ecc")
    if name not in _BACKENDS:
        raise ValueError(f"unknown BLS backend {name!r}; known: {', '.join(_BACKENDS)}")
    inst = _instances.get(name)
    if inst is None:
        inst = _instances[name] = _BACKENDS[name]()
    return inst


# --------------------------------------------------------------------------------------------
# Public API


def verify(pubkey: bytes, message: bytes, signature: bytes, backend=None) -> bool:
    """One signature (IETF `Verify` of the PoP ciphersuite, with KeyValidate)."""
    b = backend or get_backend()
    try:
        p, s = b.pubkey(pubkey), b.signature(signature)
    except InvalidPoint:
        return False
    return b.check([(p, b.hash_to_g2(message))], s)


def _random_scalar(rng) -> int:
    while True:
        r = rng.getrandbits(64)
        if r:
            return r


def batch_verify(sets: Sequence[SignatureSet], backend=None, rng=None,
                 _pk_cache: dict | None = None) -> bool:
    """True when every set is valid, checked together with a random linear combination
    (random non-zero 64-bit scalars).  An empty batch is valid."""
    b = backend or get_backend()
    rng = rng or secrets.SystemRandom()
    if not sets:
        return True
    cache = _pk_cache if _pk_cache is not None else {}
    pairs = []
    sigs = []
    scalars = []
    try:
        for pk, msg, sig in sets:
            p = cache.get(pk)
            if p is None:
                p = cache[pk] = b.pubkey(pk)
            s = b.signature(sig)
            if len(sets) == 1:
                return b.check([(p, b.hash_to_g2(msg))], s)
            r = _random_scalar(rng)
            pairs.append((b.mul_g1(p, r), b.hash_to_g2(msg)))
            sigs.append(s)
            scalars.append(r)
    except InvalidPoint:
        return False
    return b.check(pairs, b.msm_g2(sigs, scalars))


def find_invalid(sets: Sequence[SignatureSet], backend=None, rng=None,
                 _pk_cache: dict | None = None) -> list[int]:
    """Indices of the invalid sets: batch-verify, and bisect a failing batch."""
    b = backend or get_backend()
    cache = _pk_cache if _pk_cache is not None else {}
    bad: list[int] = []

    def go(lo: int, hi: int, known_bad: bool) -> None:
        if lo >= hi:
            return
        if not known_bad and batch_verify(sets[lo:hi], b, rng, cache):
            return
        if hi - lo == 1:
            bad.append(lo)
            return
        mid = (lo + hi) // 2
        left_ok = batch_verify(sets[lo:mid], b, rng, cache)
        if not left_ok:
            go(lo, mid, True)
        # The range failed; if the left half is fine, the right half must be bad.
        go(mid, hi, left_ok)

    go(0, len(sets), False)
    return bad


def verify_sets(sets: Sequence[SignatureSet], backend=None, rng=None) -> list[int]:
    """Alias of `find_invalid`: [] when every set verifies."""
    return find_invalid(sets, backend, rng)


# --- key handling and point arithmetic, for tests, tampering and the synthetic benchmark ---


def secret_to_pubkey(sk: int, backend=None) -> bytes:
    b = backend or get_backend()
    if not 0 < sk < CURVE_ORDER:
        raise ValueError("secret key out of range")
    return b.compress_g1(b.g1_mul_generator(sk))


def sign(sk: int, message: bytes, backend=None) -> bytes:
    b = backend or get_backend()
    if not 0 < sk < CURVE_ORDER:
        raise ValueError("secret key out of range")
    return b.compress_g2(b.mul_g2(b.hash_to_g2(message), sk))


def signature_add(a: bytes, b_: bytes, backend=None) -> bytes:
    b = backend or get_backend()
    return b.compress_g2(b.add_g2(b.signature(a), b.signature(b_)))


def signature_neg(a: bytes, backend=None) -> bytes:
    b = backend or get_backend()
    return b.compress_g2(b.neg_g2(b.signature(a)))


def aggregate(signatures: Sequence[bytes], backend=None) -> bytes:
    """Plain sum of signatures (IETF `Aggregate`)."""
    b = backend or get_backend()
    acc = None
    for s in signatures:
        p = b.signature(s)
        acc = p if acc is None else b.add_g2(acc, p)
    if acc is None:
        raise ValueError("nothing to aggregate")
    return b.compress_g2(acc)


def aggregate_verify(pubkeys: Sequence[bytes], messages: Sequence[bytes],
                     aggregate_signature: bytes, backend=None) -> bool:
    """IETF `AggregateVerify` (distinct messages, one aggregate signature).  Right for real
    aggregates; never a substitute for `batch_verify` of separate signatures."""
    b = backend or get_backend()
    try:
        pairs = [(b.pubkey(pk), b.hash_to_g2(m)) for pk, m in zip(pubkeys, messages)]
        s = b.signature(aggregate_signature)
    except InvalidPoint:
        return False
    return b.check(pairs, s)
