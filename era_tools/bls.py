"""BLS12-381 signatures as Ethereum uses them (the proof-of-possession ciphersuite), behind one
small interface.  The only module that imports a BLS library.

Backends (the first that loads is the default):
- ``blst``: supranational/blst's own C API, through ctypes, from the copy that `ckzg` (the
  Ethereum Foundation's KZG binding) links in and exports.  Each batch is a few blst calls per
  signature (decompression, subgroup checks, then blst's pairing aggregator for hash-to-G2,
  the 64-bit scalar multiplication and multi-Miller loops of 8) and blst's Pippenger for
  sum r_i * sig_i; no point object is made in Python.  ctypes drops the GIL for every call.
  Loaded only when every symbol is there, the struct sizes are
  the ones this module assumes, and a known-answer test passes; otherwise skipped.
- ``pyblst``: the `pyblst` binding to blst (point objects, Miller loop, final_verify); the
  batch is assembled here in Python (see below).  About 1.3x slower per signature.
- ``py_ecc``: the pure-Python reference.  Slow (seconds per pairing); it is the fallback when
  no native binding is installed and the oracle tests check the fast backends against.
Measured against each other (and against `blspy`, `py_arkworks_bls12381`) by
`scripts/bench_verify.py --backends N`; figures in BENCHMARKS.md.

Choose with ``ERA_TOOLS_BLS_BACKEND=blst|pyblst|py_ecc`` or ``get_backend(name)``.

Batch verification (`batch_verify`) checks many (pubkey, message, signature) sets with one
final exponentiation using a random linear combination:

    e(g1, sum r_i * sig_i) == prod e(r_i * pk_i, H(m_i))      r_i random, non-zero, 64-bit

Plain aggregation (all r_i = 1) is *not* used: it accepts crafted pairs of bad signatures
(sig_1 + D, sig_2 - D).  `verify_sets` bisects a failing batch so the caller learns which sets
are bad.

Cost per signature in a batch (pyblst): decompress + subgroup-check the pubkey and the signature,
hash-to-G2 of the message, one 64-bit G1 scalar multiplication r_i * pk_i, one Miller loop;
sum r_i * sig_i is a Pippenger multi-scalar multiplication over point additions (`msm_g2`,
~5x cheaper per point than pyblst's `scalar_mul`, which always runs the full 255-bit ladder).
One final exponentiation per batch.  The blst backend does the same sums inside blst, where the
scalar multiplications use the scalars' 64 bits only and the Miller loops share their squarings
in groups of 8.

Subgroup checks (KeyValidate for pubkeys, signature_to_point + subgroup for signatures):
- blst: `blst_p1_uncompress`/`blst_p2_uncompress` (curve), then `blst_p1_affine_in_g1` /
  `blst_p2_affine_in_g2`; the identity pubkey is rejected (KeyValidate).  An identity signature
  can never verify against a valid pubkey; the batch turns it away before pairing.
- pyblst: `BlstP1Element/BlstP2Element.uncompress` run blst's `*_uncompress` and then
  `*_in_g1/in_g2`, rejecting points off the curve or outside the prime-order subgroup
  (BLST_POINT_NOT_IN_GROUP); the identity pubkey is rejected here by its infinity flag.
- py_ecc: `pubkey_to_G1`/`signature_to_G2` check the curve; the subgroup is checked here by
  multiplying by the curve order.
tests/test_bls.py feeds every backend on-curve points outside the subgroups.  Pubkeys read from
a trusted state's validator registry may skip their subgroup check (`find_invalid(...,
registry_pubkeys=True)`, blst only): the registry admits only keys that pass KeyValidate.
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


class _BlstC:
    """blst's C API through ctypes.  Points are plain bytes holding blst structs: G1 as
    blst_p1 (Jacobian, 144 bytes), G2 as blst_p2 (288 bytes); affine forms only inside."""

    name = "blst"
    releases_gil = True  # ctypes drops the GIL around every blst call
    _SIZES = {"blst_p1_affine_sizeof": 96, "blst_p2_affine_sizeof": 192, "blst_p1_sizeof": 144,
              "blst_p2_sizeof": 288, "blst_fp12_sizeof": 576}
    # A valid (pubkey, message, signature) made with py_ecc from sk = 0x2a * 32 mod r.
    _KAT = (bytes.fromhex(
        "8193db75369ee1f1b3d8828adbc05c0dc6bd38ef5dab2528174eace2140da80cd8f253ce43748a53b316fdc2"
        "63234af4"), b"era_tools blst self-test", bytes.fromhex(
        "a2d26a0f8f65ce0d326d15c0d59a414b005fe8b626ba3eeab5c109a25e13a39cc305a3c339c36342d4d0429f"
        "6e6427d90874e344c99a23fd07e4891f0261dae0e99ceb5ef8339ab62adb253a1cbde7a104b8890b34c5664b"
        "120b0ad972e5cc36"))

    def __init__(self):
        import ctypes

        import ckzg  # links blst statically and exports its C API

        C = ctypes
        vp, sz, cp, i, b = C.c_void_p, C.c_size_t, C.c_char_p, C.c_int, C.c_bool
        sigs = {
            "blst_p1_uncompress": (i, [vp, cp]), "blst_p2_uncompress": (i, [vp, cp]),
            "blst_p1_affine_in_g1": (b, [vp]), "blst_p2_affine_in_g2": (b, [vp]),
            "blst_p1_affine_is_inf": (b, [vp]), "blst_p2_affine_is_inf": (b, [vp]),
            "blst_p1_from_affine": (None, [vp, vp]), "blst_p2_from_affine": (None, [vp, vp]),
            "blst_p1_to_affine": (None, [vp, vp]), "blst_p2_to_affine": (None, [vp, vp]),
            "blst_p1_compress": (None, [vp, vp]), "blst_p2_compress": (None, [vp, vp]),
            "blst_p1_mult": (None, [vp, vp, cp, sz]), "blst_p2_mult": (None, [vp, vp, cp, sz]),
            "blst_p2_add_or_double": (None, [vp, vp, vp]), "blst_p2_cneg": (None, [vp, sz]),
            "blst_p1_add_or_double": (None, [vp, vp, vp]), "blst_p1_cneg": (None, [vp, sz]),
            "blst_p1_is_inf": (b, [vp]),
            "blst_p1_generator": (vp, []),
            "blst_hash_to_g2": (None, [vp, cp, sz, vp, sz, vp, sz]),
            "blst_miller_loop": (None, [vp, vp, vp]), "blst_fp12_mul": (None, [vp, vp, vp]),
            "blst_fp12_finalverify": (b, [vp, vp]),
            "blst_pairing_sizeof": (sz, []), "blst_pairing_init": (None, [vp, b, vp, sz]),
            "blst_pairing_chk_n_mul_n_aggr_pk_in_g1": (i, [vp, vp, sz, vp, sz, vp, sz, cp, sz,
                                                           vp, sz]),
            "blst_pairing_commit": (None, [vp]), "blst_pairing_finalverify": (b, [vp, vp]),
            "blst_p2s_mult_pippenger_scratch_sizeof": (sz, [sz]),
            "blst_p2s_mult_pippenger": (None, [vp, vp, sz, vp, sz, vp]),
            "blst_aggregated_in_g2": (None, [vp, vp]),
            **{name: (sz, []) for name in self._SIZES},
        }
        try:
            lib = C.CDLL(ckzg.__file__)
            for name, (restype, argtypes) in sigs.items():
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = restype, argtypes
        except (OSError, AttributeError) as exc:
            raise ImportError(f"blst C API not found in ckzg: {exc}") from None
        for name, size in self._SIZES.items():
            if getattr(lib, name)() != size:
                raise ImportError(f"blst C API: {name}() is not {size}")
        self._C, self._L = C, lib
        self._dst = C.create_string_buffer(DST, len(DST))  # blst keeps a pointer to it
        self._ctx_size = lib.blst_pairing_sizeof()
        self.g1 = C.string_at(lib.blst_p1_generator(), 144)
        pk, msg, sig = self._KAT
        if not (self.batch_check([SignatureSet(pk, msg, sig)] * 2, secrets.SystemRandom(), {})
                and not self.batch_check([SignatureSet(pk, msg + b"!", sig)] * 2,
                                         secrets.SystemRandom(), {})):
            raise ImportError("blst C API failed its known-answer test")

    # -- points ---------------------------------------------------------------------------
    def _affine_g1(self, data: bytes, subgroup_check: bool = True):
        if len(data) != 48:
            raise InvalidPoint(f"public key is {len(data)} bytes, expected 48")
        aff = self._C.create_string_buffer(96)
        err = self._L.blst_p1_uncompress(aff, bytes(data))
        if err:
            raise InvalidPoint(f"invalid public key: blst error {err}")
        if self._L.blst_p1_affine_is_inf(aff):  # KeyValidate rejects the identity
            raise InvalidPoint("public key is the point at infinity")
        if subgroup_check and not self._L.blst_p1_affine_in_g1(aff):
            raise InvalidPoint("public key is not in the G1 subgroup")
        return aff

    def _affine_g2_into(self, buf, data: bytes) -> None:
        if len(data) != 96:
            raise InvalidPoint(f"signature is {len(data)} bytes, expected 96")
        err = self._L.blst_p2_uncompress(buf, bytes(data))
        if err:
            raise InvalidPoint(f"invalid signature: blst error {err}")
        if not self._L.blst_p2_affine_in_g2(buf):
            raise InvalidPoint("signature is not in the G2 subgroup")

    def _jac(self, aff, size: int, fn) -> bytes:
        out = self._C.create_string_buffer(size)
        fn(out, aff)
        return out.raw

    def _aff(self, p: bytes, size: int, fn):
        out = self._C.create_string_buffer(size)
        fn(out, p)
        return out

    def pubkey(self, data: bytes, subgroup_check: bool = True) -> bytes:
        return self._jac(self._affine_g1(data, subgroup_check), 144,
                         self._L.blst_p1_from_affine)

    def add_g1(self, a, b):
        out = self._C.create_string_buffer(144)
        self._L.blst_p1_add_or_double(out, a, b)
        return out.raw

    def neg_g1(self, a):
        out = self._C.create_string_buffer(a, 144)
        self._L.blst_p1_cneg(out, 1)
        return out.raw

    def is_inf_g1(self, a) -> bool:
        return bool(self._L.blst_p1_is_inf(a))

    def signature(self, data: bytes) -> bytes:
        aff = self._C.create_string_buffer(192)
        self._affine_g2_into(aff, data)
        return self._jac(aff, 288, self._L.blst_p2_from_affine)

    def hash_to_g2(self, message: bytes) -> bytes:
        out = self._C.create_string_buffer(288)
        self._L.blst_hash_to_g2(out, bytes(message), len(message), self._dst, len(DST), None, 0)
        return out.raw

    def _mul(self, p: bytes, r: int, fn) -> bytes:
        out = self._C.create_string_buffer(len(p))
        fn(out, p, r.to_bytes(32, "little"), max(r.bit_length(), 1))
        return out.raw

    def mul_g1(self, p, r: int):
        return self._mul(p, r, self._L.blst_p1_mult)

    def mul_g2(self, p, r: int):
        return self._mul(p, r, self._L.blst_p2_mult)

    def add_g2(self, a, b):
        out = self._C.create_string_buffer(288)
        self._L.blst_p2_add_or_double(out, a, b)
        return out.raw

    def neg_g2(self, a):
        out = self._C.create_string_buffer(a, 288)
        self._L.blst_p2_cneg(out, 1)
        return out.raw

    def compress_g1(self, p) -> bytes:
        out = self._C.create_string_buffer(48)
        self._L.blst_p1_compress(out, p)
        return out.raw

    def compress_g2(self, p) -> bytes:
        out = self._C.create_string_buffer(96)
        self._L.blst_p2_compress(out, p)
        return out.raw

    def g1_mul_generator(self, sk: int):
        return self.mul_g1(self.g1, sk)

    def check(self, pairs, agg_sig) -> bool:
        """prod e(P_i, H_i) == e(g1, agg_sig)."""
        L, C = self._L, self._C
        acc, ml = C.create_string_buffer(576), C.create_string_buffer(576)
        for k, (p, h) in enumerate(pairs):
            q = self._aff(h, 192, L.blst_p2_to_affine)
            pa = self._aff(p, 96, L.blst_p1_to_affine)
            L.blst_miller_loop(acc if k == 0 else ml, q, pa)
            if k:
                L.blst_fp12_mul(acc, acc, ml)
        L.blst_miller_loop(ml, self._aff(agg_sig, 192, L.blst_p2_to_affine),
                           self._aff(self.g1, 96, L.blst_p1_to_affine))
        return bool(L.blst_fp12_finalverify(ml, acc))

    # -- the batch, all inside blst ---------------------------------------------------------
    def batch_check(self, sets, rng, cache, registry_pubkeys: bool = False) -> bool:
        """e(g1, sum r_i sig_i) == prod e(r_i pk_i, H(m_i)): blst's pairing aggregator does
        the pubkey side (hash-to-G2, 64-bit multiplication, Miller loops of 8), its Pippenger
        the signature side.  `registry_pubkeys`: see `find_invalid`."""
        C, L = self._C, self._L
        n = len(sets)
        sig_aff = (C.c_char * (192 * n))()
        base = C.addressof(sig_aff)
        words = rng.getrandbits(64 * n).to_bytes(8 * n, "little")
        if b"\0" * 8 in [words[k:k + 8] for k in range(0, 8 * n, 8)]:
            words = b"".join(_random_scalar(rng).to_bytes(8, "little") for _ in range(n))
        scalars = C.create_string_buffer(words, 8 * n)
        sbase = C.addressof(scalars)
        ctx = C.create_string_buffer(self._ctx_size)
        L.blst_pairing_init(ctx, True, self._dst, len(DST))
        try:
            for k, (pk, msg, sig) in enumerate(sets):
                key = ("blst-affine-registry" if registry_pubkeys else "blst-affine", pk)
                pa = cache.get(key)
                if pa is None:
                    pa = cache[key] = self._affine_g1(pk, subgroup_check=not registry_pubkeys)
                sp = base + 192 * k
                self._affine_g2_into(sp, sig)
                if L.blst_p2_affine_is_inf(sp):
                    return False  # never valid with a non-identity pubkey
                if L.blst_pairing_chk_n_mul_n_aggr_pk_in_g1(
                        ctx, pa, 0, None, 0, sbase + 8 * k, 64, bytes(msg), len(msg), None, 0):
                    return False
        except InvalidPoint:
            return False
        agg, aff, gt = (C.create_string_buffer(288), C.create_string_buffer(192),
                        C.create_string_buffer(576))
        scratch = C.create_string_buffer(L.blst_p2s_mult_pippenger_scratch_sizeof(n))
        L.blst_p2s_mult_pippenger(agg, (C.c_void_p * n)(*(base + 192 * k for k in range(n))), n,
                                  (C.c_void_p * n)(*(sbase + 8 * k for k in range(n))), 64,
                                  scratch)
        L.blst_p2_to_affine(aff, agg)
        L.blst_aggregated_in_g2(gt, aff)
        L.blst_pairing_commit(ctx)
        return bool(L.blst_pairing_finalverify(ctx, gt))


class _PyBlst:
    name = "pyblst"
    releases_gil = False

    def __init__(self):
        import pyblst

        self._m = pyblst
        self._P1 = pyblst.BlstP1Element
        self._P2 = pyblst.BlstP2Element
        self.g1 = self._P1().uncompress(_G1_GENERATOR)

    def pubkey(self, data: bytes, subgroup_check: bool = True):
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

    def add_g1(self, a, b):
        return a + b

    def neg_g1(self, a):
        return -a

    def is_inf_g1(self, a) -> bool:
        return bytes(a.compress())[0] & 0x40 != 0

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
    releases_gil = False

    def __init__(self):
        import hashlib

        from py_ecc import optimized_bls12_381 as curve
        from py_ecc.bls import g2_primitives as prim
        from py_ecc.bls.hash_to_curve import hash_to_G2

        self._c = curve
        self._prim = prim
        self._h2c = lambda m: hash_to_G2(m, DST, hashlib.sha256)
        self.g1 = curve.G1

    def pubkey(self, data: bytes, subgroup_check: bool = True):
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

    def add_g1(self, a, b):
        return self._c.add(a, b)

    def neg_g1(self, a):
        return self._c.neg(a)

    def is_inf_g1(self, a) -> bool:
        return self._c.is_inf(a)

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


_BACKENDS = {"blst": _BlstC, "pyblst": _PyBlst, "py_ecc": _PyEcc}
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
    """The named backend, or the configured default (env ERA_TOOLS_BLS_BACKEND, else the
    first of blst, pyblst, py_ecc that loads).  ImportError when the named one cannot load."""
    if name is None:
        name = os.environ.get("ERA_TOOLS_BLS_BACKEND") or None
    if name is None:
        for candidate in _BACKENDS:
            try:
                return get_backend(candidate)
            except ImportError:
                continue
        raise ImportError("no BLS backend could be loaded")
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
                 _pk_cache: dict | None = None, registry_pubkeys: bool = False) -> bool:
    """True when every set is valid, checked together with a random linear combination
    (random non-zero 64-bit scalars).  An empty batch is valid."""
    b = backend or get_backend()
    rng = rng or secrets.SystemRandom()
    if not sets:
        return True
    cache = _pk_cache if _pk_cache is not None else {}
    if hasattr(b, "batch_check"):
        return b.batch_check(sets, rng, cache, registry_pubkeys)
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
                 _pk_cache: dict | None = None, registry_pubkeys: bool = False) -> list[int]:
    """Indices of the invalid sets: batch-verify, and bisect a failing batch.

    registry_pubkeys=True: every pubkey was read from the validator registry of a beacon state
    whose root is trusted.  The registry only admits keys that pass KeyValidate (deposits are
    applied only when `bls.Verify` of their proof of possession succeeds, and Verify runs
    KeyValidate), so the blst backend skips their G1 subgroup check (~55 µs each).  Never for
    pubkeys from untrusted input (an era file's own state, say)."""
    b = backend or get_backend()
    cache = _pk_cache if _pk_cache is not None else {}
    bad: list[int] = []

    def go(lo: int, hi: int, known_bad: bool) -> None:
        if lo >= hi:
            return
        if not known_bad and batch_verify(sets[lo:hi], b, rng, cache, registry_pubkeys):
            return
        if hi - lo == 1:
            bad.append(lo)
            return
        mid = (lo + hi) // 2
        left_ok = batch_verify(sets[lo:mid], b, rng, cache, registry_pubkeys)
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


def fast_aggregate_verify(pubkeys: Sequence[bytes], message: bytes, signature: bytes,
                          backend=None, registry_pubkeys: bool = False,
                          aggregate_pubkey: bytes | None = None,
                          all_pubkeys: Sequence[bytes] | None = None) -> bool:
    """IETF `FastAggregateVerify`: one message signed by every key of `pubkeys`; the keys are
    summed in G1 and one pairing check follows.  False for an empty key list.

    registry_pubkeys=True: the keys come from a trusted state (a sync committee proven into a
    verified state root), so, as in `find_invalid`, the blst backend skips their G1 subgroup
    checks.  `aggregate_pubkey` with `all_pubkeys` (a sync committee's `aggregate_pubkey` and
    `pubkeys`, both trusted): `pubkeys` must be a subset of `all_pubkeys` and the sum is taken
    as the aggregate minus the keys left out, cheaper when most keys took part."""
    b = backend or get_backend()
    if not pubkeys:
        return False
    check = not registry_pubkeys
    try:
        s = b.signature(signature)
        if aggregate_pubkey is not None and all_pubkeys is not None \
                and 2 * len(pubkeys) > len(all_pubkeys):
            chosen = list(pubkeys)
            missing, k = [], 0
            for pk in all_pubkeys:  # the keys of all_pubkeys not in pubkeys, in order
                if k < len(chosen) and chosen[k] == pk:
                    k += 1
                else:
                    missing.append(pk)
            if k != len(chosen):
                raise ValueError("pubkeys is not an ordered subset of all_pubkeys")
            acc = b.pubkey(aggregate_pubkey, check)
            for pk in missing:
                acc = b.add_g1(acc, b.neg_g1(b.pubkey(pk, check)))
        else:
            acc = None
            for pk in pubkeys:
                p = b.pubkey(pk, check)
                acc = p if acc is None else b.add_g1(acc, p)
    except InvalidPoint:
        return False
    if b.is_inf_g1(acc):
        return False
    return b.check([(acc, b.hash_to_g2(message))], s)
