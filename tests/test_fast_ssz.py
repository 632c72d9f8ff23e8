"""The SSZ fast path: native batch SHA-256, hash_tree_root from bytes, the numpy StateView.

Oracles: py-ssz (`ssz.get_hash_tree_root` of decoded objects) on the real-client fixture chain,
and the executable spec (`eth_consensus_specs.<fork>.<preset>`) on seeded random objects of
every fork in both presets.  The corruption matrix is differential where it can be (py-ssz
rejects => FormatError here; py-ssz accepts => same root) and targeted where it must be.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import random
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import ssz as pyssz

from era_tools import hashing
from era_tools import ssz
from era_tools.config import FORKS
from era_tools.errors import FormatError
from era_tools.ssz import fast
from era_tools.ssz.fast import (
    compile_sedes,
    container_field_ranges,
    hash_tree_root_bytes,
    serialize_container,
    zero_bytes,
)
from era_tools.ssz.view import StateView, numpy_dtype

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "lodestar-minimal-1"
PRESETS = ("minimal", "mainnet")

native = pytest.mark.skipif(hashing._native_hash_pairs is None,
                            reason="era_tools._sha256 not built (no compiler/OpenSSL headers)")


def _hashlib_pairs(buf: bytes) -> bytes:
    return b"".join(hashlib.sha256(buf[i:i + 64]).digest() for i in range(0, len(buf), 64))


def _py_merkleize(chunks: bytes, limit: int) -> bytes:
    """Reference merkleize straight from the spec text (pad to next pow2 of limit)."""
    count = len(chunks) // 32
    size = 1
    while size < max(limit, 1):
        size *= 2
    nodes = [chunks[i * 32:(i + 1) * 32] for i in range(count)] + [b"\x00" * 32] * (size - count)
    while len(nodes) > 1:
        nodes = [hashlib.sha256(nodes[i] + nodes[i + 1]).digest() for i in range(0, len(nodes), 2)]
    return nodes[0]


# --- native hasher ---------------------------------------------------------------------------

@native
@pytest.mark.parametrize("pairs", [0, 1, 2, 3, 255, 256, 257, 5000])
def test_native_hash_pairs_matches_hashlib(pairs):
    rng = random.Random(pairs)
    buf = rng.randbytes(64 * pairs)
    assert hashing._native_hash_pairs(buf) == _hashlib_pairs(buf)
    # any bytes-like input: bytearray, memoryview, numpy
    assert hashing._native_hash_pairs(bytearray(buf)) == _hashlib_pairs(buf)
    assert hashing._native_hash_pairs(np.frombuffer(buf, np.uint8)) == _hashlib_pairs(buf)


@native
@pytest.mark.parametrize("bad", [1, 32, 63, 65, 127])
def test_native_hash_pairs_rejects_partial_input(bad):
    with pytest.raises(ValueError, match="multiple of 64"):
        hashing._native_hash_pairs(b"\x00" * bad)


@native
@pytest.mark.parametrize("count,limit", [(0, 0), (0, 1), (1, 1), (1, 5), (3, 4), (5, 8), (7, 1024),
                                         (33, 33), (100, 2**20)])
def test_native_merkleize_matches_reference(count, limit):
    chunks = random.Random(count * 7 + limit).randbytes(32 * count)
    expected = _py_merkleize(chunks, limit) if limit <= 1024 else None
    got = hashing.merkleize(chunks, limit)
    if expected is not None:
        assert got == expected
    from era_tools import _sha256
    depth = max(limit - 1, 0).bit_length()
    assert _sha256.merkleize(chunks, depth) == got


@native
def test_native_merkleize_rejects_too_many_chunks():
    from era_tools import _sha256
    with pytest.raises(ValueError):
        _sha256.merkleize(b"\x00" * 96, 1)
    with pytest.raises(ValueError):
        _sha256.merkleize(b"\x00" * 33, 3)
    each = _sha256.merkleize_each(bytes(range(256)) * 3, 3, 2)  # 8 items of 3 chunks
    assert len(each) == 8 * 32
    assert each[:32] == _py_merkleize((bytes(range(256)) * 3)[:96], 4)


def test_hashlib_fallback_gives_the_same_roots(monkeypatch):
    data = (FIXTURE / "states" / "1024.ssz").read_bytes()
    t = ssz.types_for("capella", "minimal")
    rng = random.Random(5)
    buf = rng.randbytes(64 * 300)
    native_layer = hashing.hash_layer(buf)
    native_root = hash_tree_root_bytes(t.BeaconState, data)
    native_merkle = hashing.merkleize(buf, 1000)
    monkeypatch.setattr(hashing, "_native_hash_pairs", None)
    assert hashing.hash_layer(buf) == native_layer == _hashlib_pairs(buf)
    assert hashing.merkleize(buf, 1000) == native_merkle == _py_merkleize(buf, 1000)
    assert hash_tree_root_bytes(t.BeaconState, data) == native_root
    assert native_root == pyssz.get_hash_tree_root(t.BeaconState.deserialize(data))


# --- fixture chain: py-ssz oracle ------------------------------------------------------------

def _slot_files(kind: str):
    return sorted((FIXTURE / kind).glob("*.ssz"), key=lambda p: int(p.stem))


@pytest.fixture(scope="module")
def fixture_blocks(network):
    if not FIXTURE.exists():
        pytest.skip("fixture chain missing")
    return [(int(p.stem), network.fork_name_at_slot(int(p.stem)), p.read_bytes())
            for p in _slot_files("blocks")]


@pytest.fixture(scope="module")
def fixture_states(network):
    if not FIXTURE.exists():
        pytest.skip("fixture chain missing")
    return [(int(p.stem), network.fork_name_at_slot(int(p.stem)), p.read_bytes())
            for p in _slot_files("states")]


def test_fixture_blocks_root_equals_py_ssz(fixture_blocks, network):
    assert len(fixture_blocks) == 890
    forks = set()
    for slot, fork, data in fixture_blocks:
        t = ssz.types_for(fork, network.preset_base)
        blk = t.SignedBeaconBlock.deserialize(data)
        assert hash_tree_root_bytes(t.SignedBeaconBlock, data) == \
            pyssz.get_hash_tree_root(blk), slot
        msg = t.BeaconBlock.serialize(blk.message)
        assert hash_tree_root_bytes(t.BeaconBlock, msg) == \
            pyssz.get_hash_tree_root(blk.message), slot
        forks.add(fork)
    assert forks == {"phase0", "altair", "bellatrix", "capella"}


def test_fixture_states_root_and_view(fixture_states, network):
    assert len(fixture_states) == 17
    for slot, fork, data in fixture_states:
        t = ssz.types_for(fork, network.preset_base)
        st = t.BeaconState.deserialize(data)
        root = pyssz.get_hash_tree_root(st)
        assert hash_tree_root_bytes(t.BeaconState, data) == root, slot
        v = StateView(data, fork, network.preset_base)
        assert v.hash_tree_root() == root
        _assert_view_matches(v, st, fork)


def _assert_view_matches(v: StateView, st, fork: str) -> None:
    """Every StateView accessor equals the decoded object's field."""
    assert v.slot == st.slot
    assert v.genesis_time == st.genesis_time
    assert v.genesis_validators_root == bytes(st.genesis_validators_root)
    assert v.fork == st.fork
    assert v.latest_block_header == st.latest_block_header
    assert [bytes(r) for r in v.block_roots] == [bytes(r) for r in st.block_roots]
    assert [bytes(r) for r in v.state_roots] == [bytes(r) for r in st.state_roots]
    assert [bytes(r) for r in v.historical_roots] == [bytes(r) for r in st.historical_roots]
    assert v.block_roots.shape == (len(st.block_roots), 32)
    vals = v.validators
    assert len(vals) == len(st.validators) == v.validator_count
    assert vals.dtype.itemsize == 121
    for name, _ in st.validators[0]._meta.fields if len(st.validators) else ():
        col = vals[name]
        want = [getattr(x, name) for x in st.validators]
        if col.dtype == np.uint8 and col.ndim == 2:
            assert [bytes(r) for r in col] == [bytes(w) for w in want], name
        else:
            assert col.tolist() == list(want), name
    keys = v.pubkeys()
    assert keys.shape == (len(st.validators), 48)
    assert np.array_equal(keys, v.pubkeys(contiguous=True))
    assert v.pubkeys(contiguous=True).flags.c_contiguous
    assert v.balances.tolist() == list(st.balances)
    assert v.balances.dtype == np.dtype("<u8")
    if ssz.fork_at_least(fork, "capella"):
        hs = v.historical_summaries
        assert hs.shape == (len(st.historical_summaries), 64)
        assert [bytes(r) for r in hs] == [bytes(h.block_summary_root) + bytes(h.state_summary_root)
                                          for h in st.historical_summaries]
    else:
        with pytest.raises(KeyError):
            v.historical_summaries
    sedes = type(st)._meta.container_sedes.field_sedes
    for i, name in enumerate(v.field_names):
        assert bytes(v.field_bytes(name)) == sedes[i].serialize(getattr(st, name)), name
    # zero-copy: the arrays are views of the state bytes, not copies
    assert not vals.flags.owndata and not v.balances.flags.owndata


# --- executable-spec oracle: random objects, every fork, both presets ----------------------

def _spec(fork: str, preset: str):
    try:
        return importlib.import_module(f"eth_consensus_specs.{fork}.{preset}")
    except ImportError as exc:  # pragma: no cover - the oracle is a test dependency
        pytest.skip(f"executable spec unavailable: {exc}")


def _random(spec_type, seed: int, mode_name: str):
    from eth_consensus_specs.debug.random_value import RandomizationMode, get_random_ssz_object

    mode = getattr(RandomizationMode, mode_name)
    return get_random_ssz_object(random.Random(seed), spec_type, 600, 5, mode, False)


SMALL_TYPES = ("BeaconBlockBody", "SignedBeaconBlock", "Validator", "Attestation",
               "ExecutionPayload", "ExecutionPayloadHeader")


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("fork", FORKS)
def test_spec_oracle_random_blocks(fork, preset):
    spec = _spec(fork, preset)
    t = ssz.types_for(fork, preset)
    checked = 0
    for name in SMALL_TYPES:
        if not hasattr(spec, name):
            continue
        for seed, mode in enumerate(["mode_random", "mode_random", "mode_max_count", "mode_zero",
                                     "mode_nil_count", "mode_one_count"]):
            obj = _random(getattr(spec, name), seed, mode)
            data = obj.encode_bytes()
            assert hash_tree_root_bytes(getattr(t, name), data) == bytes(obj.hash_tree_root()), \
                (name, mode)
            checked += 1
    assert checked >= 12


def _sparse_random_state(spec, seed: int):
    """A random BeaconState whose big vectors (block_roots, randao_mixes, ... : thousands of
    elements in mainnet) hold random values at a few random indices, zero elsewhere; every
    other field fully random.  The spec's own random helper fills all 65536 randao mixes
    element by element (~4-8 s per mainnet state); this takes ~1 s."""
    from eth_consensus_specs.debug.random_value import RandomizationMode, get_random_ssz_object

    rng = random.Random(seed)
    st = spec.BeaconState()
    for name, typ in spec.BeaconState.fields().items():
        length = getattr(typ, "vector_length", None)
        if length is not None and length() > 256:
            vec = getattr(st, name)
            for _ in range(8):
                vec[rng.randrange(length())] = get_random_ssz_object(
                    rng, typ.element_cls(), 600, 5, RandomizationMode.mode_random, False)
        else:
            setattr(st, name, get_random_ssz_object(rng, typ, 600, 5,
                                                    RandomizationMode.mode_random, False))
    return st


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("fork", FORKS)
def test_spec_oracle_random_states(fork, preset):
    """Random BeaconStates with a few validators: minimal from the spec's random helper in
    three modes, mainnet with sparse big vectors (see _sparse_random_state)."""
    spec = _spec(fork, preset)
    t = ssz.types_for(fork, preset)
    modes = ["sparse"] if preset == "mainnet" else ["mode_random", "mode_max_count", "mode_zero",
                                                    "sparse"]
    for seed, mode in enumerate(modes):
        if mode == "sparse":
            obj = _sparse_random_state(spec, 200 + seed)
        else:
            obj = _random(spec.BeaconState, 100 + seed, mode)
        data = obj.encode_bytes()
        root = bytes(obj.hash_tree_root())
        assert hash_tree_root_bytes(t.BeaconState, data) == root, mode
        v = StateView(data, fork, preset)
        assert v.hash_tree_root() == root
        assert v.slot == int(obj.slot)
        assert len(v.validators) == len(obj.validators)
        assert [bytes(k) for k in v.pubkeys()] == [bytes(x.pubkey) for x in obj.validators]
        assert v.balances.tolist() == [int(b) for b in obj.balances]
        assert v.validators["slashed"].tolist() == [bool(x.slashed) for x in obj.validators]
        if preset == "minimal" and mode == "mode_random":
            _assert_view_matches(v, t.BeaconState.deserialize(data), fork)


# --- synthetic states built with numpy, batching --------------------------------------------

def _synthetic_state(fork: str, preset: str, n: int, seed: int = 3) -> bytes:
    t = ssz.types_for(fork, preset)
    node = compile_sedes(t.BeaconState)
    fields = dict(zip(node.names, node.fields))
    rng = np.random.default_rng(seed)
    v = np.zeros(n, dtype=numpy_dtype(fields["validators"].elem))
    raw = v.view(np.uint8).reshape(n, 121)
    raw[:] = rng.integers(0, 256, size=(n, 121), dtype=np.uint8)
    v["slashed"] = rng.random(n) < 0.5
    values = {
        "slot": (12345).to_bytes(8, "little"),
        "block_roots": rng.integers(0, 256, fields["block_roots"].size, dtype=np.uint8),
        "validators": v,
        "balances": rng.integers(0, 2**63, n, dtype=np.uint64).astype("<u8"),
    }
    for name in ("previous_epoch_participation", "current_epoch_participation"):
        if name in fields:
            values[name] = rng.integers(0, 8, n, dtype=np.uint8)
    if "inactivity_scores" in fields:
        values["inactivity_scores"] = np.arange(n, dtype="<u8")
    return serialize_container(t.BeaconState, values)


@pytest.mark.parametrize("fork", ["phase0", "capella", "deneb"])
def test_synthetic_state_batched_equals_py_ssz(fork, monkeypatch):
    monkeypatch.setattr(fast, "BATCH", 97)  # many uneven batches
    data = _synthetic_state(fork, "minimal", 1000)
    t = ssz.types_for(fork, "minimal")
    st = t.BeaconState.deserialize(data)
    assert t.BeaconState.serialize(st) == data
    root = pyssz.get_hash_tree_root(st)
    assert hash_tree_root_bytes(t.BeaconState, data) == root
    v = StateView(data, fork, "minimal")
    assert v.validator_count == 1000
    assert v.validators["effective_balance"].tolist() == [x.effective_balance
                                                           for x in st.validators]
    assert bytes(v.pubkeys()[777]) == st.validators[777].pubkey


def test_zero_bytes_is_the_default_value():
    for fork in FORKS:
        t = ssz.types_for(fork, "minimal")
        for name in ("BeaconState", "BeaconBlockBody", "SignedBeaconBlock"):
            sedes = getattr(t, name)
            data = zero_bytes(sedes)
            obj = sedes.deserialize(data)
            assert sedes.serialize(obj) == data
            assert hash_tree_root_bytes(sedes, data) == pyssz.get_hash_tree_root(obj)


def test_basic_sedes_directly():
    from ssz.sedes import Bitlist, Bitvector, ByteList, List, Vector, boolean, uint16, uint64

    cases = [
        (uint64, 5), (boolean, True), (List(uint64, 100), list(range(37))),
        (List(boolean, 300), [True, False] * 70), (Vector(uint16, 33), list(range(33))),
        (Bitlist(256), [True] * 256), (Bitlist(256), [False] * 255 + [True]), (Bitlist(10), []),
        (Bitvector(12), [True] * 12), (ByteList(1000), b"x" * 999),
        (List(ByteList(50), 20), [b"a" * i for i in range(20)]),
        (Vector(List(uint64, 3), 3), [[1], [], [1, 2, 3]]),
    ]
    for sedes, value in cases:
        data = sedes.serialize(value)
        decoded = sedes.deserialize(data)
        assert hash_tree_root_bytes(sedes, data) == pyssz.get_hash_tree_root(decoded, sedes), \
            sedes


# --- corruption matrix ----------------------------------------------------------------------

def _py_ssz_root_or_none(sedes, data: bytes):
    try:
        obj = sedes.deserialize(data)
    except Exception:  # py-ssz raises several kinds
        return None
    return pyssz.get_hash_tree_root(obj)


def _check_differential(sedes, data: bytes) -> None:
    """py-ssz rejects => FormatError; py-ssz accepts => the same root (or a FormatError for
    the few things we check that py-ssz does not: see test below)."""
    want = _py_ssz_root_or_none(sedes, data)
    try:
        got = hash_tree_root_bytes(sedes, data)
    except FormatError as exc:
        assert str(exc).startswith("SSZ ")
        return
    assert want is not None, "accepted bytes that py-ssz rejects"
    assert got == want


def test_corruption_matrix_truncation_and_bitflips(fixture_states, fixture_blocks, network):
    rng = random.Random(11)
    slot, fork, state = fixture_states[-1]
    t = ssz.types_for(fork, network.preset_base)
    cuts = sorted({0, 1, 3, 4, 100, len(state) // 2, len(state) - 1, len(state) - 8,
                   *rng.sample(range(len(state)), 10)})
    for cut in cuts:
        _check_differential(t.BeaconState, state[:cut])
    blocks = [b for b in fixture_blocks if b[1] == "capella"][-3:] + fixture_blocks[:2]
    for slot, fork, blk in blocks:
        tb = ssz.types_for(fork, network.preset_base)
        for cut in sorted({0, 1, 99, 100, 104, len(blk) // 2, len(blk) - 1}):
            _check_differential(tb.SignedBeaconBlock, blk[:cut])
        for _ in range(40):  # flips in the offset-heavy first 400 bytes and anywhere
            pos = rng.randrange(min(400, len(blk))) if rng.random() < 0.7 else rng.randrange(len(blk))
            bad = bytearray(blk)
            bad[pos] ^= 1 << rng.randrange(8)
            _check_differential(tb.SignedBeaconBlock, bytes(bad))


def _set_u32(data: bytes, pos: int, value: int) -> bytes:
    b = bytearray(data)
    b[pos:pos + 4] = value.to_bytes(4, "little")
    return bytes(b)


def _offset_pos(sedes, name: str) -> int:
    node = compile_sedes(sedes)
    i = node.names.index(name)
    assert not node.fields[i].fixed
    return node.field_offsets[i]


def test_corruption_matrix_offsets(fixture_states, network):
    slot, fork, state = fixture_states[-1]
    t = ssz.types_for(fork, network.preset_base)
    S = t.BeaconState
    node = compile_sedes(S)
    p_hr, p_val, p_bal = (_offset_pos(S, n) for n in ("historical_roots", "validators",
                                                       "balances"))
    off_val = int.from_bytes(state[p_val:p_val + 4], "little")
    cases = {
        "first offset wrong": _set_u32(state, p_hr, node.fixed_part + 32),
        "first offset zero": _set_u32(state, p_hr, 0),
        "decreasing offset": _set_u32(state, p_bal, off_val - 1),
        "offset past the end": _set_u32(state, p_bal, len(state) + 1),
        "offset 0xffffffff": _set_u32(state, p_val, 0xFFFFFFFF),
        "validators not whole records": _set_u32(state, p_bal,
                                                 int.from_bytes(state[p_bal:p_bal + 4], "little")
                                                 + 1),
        "shorter than fixed part": state[:node.fixed_part - 1],
        "empty": b"",
    }
    for what, bad in cases.items():
        with pytest.raises(FormatError, match=r"^SSZ BeaconState"):
            hash_tree_root_bytes(S, bad)
        assert _py_ssz_root_or_none(S, bad) is None, what
    # the view checks the offset table when opened ...
    for what in ("first offset wrong", "decreasing offset", "offset past the end", "empty"):
        with pytest.raises(FormatError):
            StateView(cases[what], fork, network.preset_base)
    # ... and each array's size when asked for it
    v = StateView(cases["validators not whole records"], fork, network.preset_base)
    with pytest.raises(FormatError, match="121 bytes each"):
        v.validators
    assert container_field_ranges(S, state)["slot"] == (node.field_offsets[2],
                                                        node.field_offsets[2] + 8)


def test_corruption_matrix_lists_and_bits():
    from ssz.sedes import Bitlist, Bitvector, ByteList, List, Vector, boolean, uint64

    cases = [
        (List(uint64, 4), (5).to_bytes(8, "little") * 5, "more than its limit"),
        (List(uint64, 4), b"\x00" * 9, "whole number"),
        (ByteList(3), b"abcd", "exceeds its limit"),
        (Bitlist(8), b"", "no delimiter"),
        (Bitlist(8), b"\xff\x00", "no delimiter"),
        (Bitlist(8), b"\xff\x03", "more than its limit"),
        (Bitvector(4), b"\x1f", "bits set past its length"),
        (Vector(boolean, 3), b"\x01\x02\x00", "expected 0x00 or 0x01"),
        (boolean, b"\x02", "expected 0x00 or 0x01"),
        (uint64, b"\x00" * 7, "expected 8"),
        # variable-size elements: offset tables
        (List(ByteList(10), 3), (16).to_bytes(4, "little") * 4, "more than its limit"),
        (List(ByteList(10), 3), (6).to_bytes(4, "little") + b"\x00\x00", "offset table"),
        (List(ByteList(10), 3), (0xFFFFFFFC).to_bytes(4, "little"), "offset table"),
        (List(ByteList(10), 3), (8).to_bytes(4, "little") + (4).to_bytes(4, "little"),
         "below the previous"),
        (List(ByteList(10), 3), (8).to_bytes(4, "little") + (9).to_bytes(4, "little"),
         "past the end"),
        (List(ByteList(10), 3), b"\x08\x00", "cannot hold"),
        (Vector(ByteList(10), 2), (4).to_bytes(4, "little"), "expected 2"),
        (Vector(ByteList(10), 2), b"", "expected 2 elements"),
    ]
    for sedes, data, msg in cases:
        with pytest.raises(FormatError, match=msg):
            hash_tree_root_bytes(sedes, data)


def test_huge_lengths_do_not_allocate(fixture_states, network):
    """A forged list length (huge offset table, offsets near 4 GiB) fails fast without
    allocating anything near the announced size."""
    from ssz.sedes import ByteList, List

    t = ssz.types_for("capella", "minimal")
    body_txs = List(ByteList(2**30), 2**20)  # transactions-like
    forged = [
        (body_txs, (0xFFFFFFF0).to_bytes(4, "little") + b"\x00" * 60),
        (body_txs, (4 * 10).to_bytes(4, "little") + b"\xff" * 36),
        (t.BeaconState, _set_u32(fixture_states[-1][2],
                                 _offset_pos(t.BeaconState, "validators"), 0xFFFFFFFF)),
    ]
    tracemalloc.start()
    try:
        for sedes, data in forged:
            tracemalloc.reset_peak()
            with pytest.raises(FormatError):
                hash_tree_root_bytes(sedes, data)
            _, peak = tracemalloc.get_traced_memory()
            assert peak < 4 * len(data) + (1 << 20), peak
    finally:
        tracemalloc.stop()


def test_accepts_any_bytes_like(fixture_states, network):
    slot, fork, state = fixture_states[-1]
    t = ssz.types_for(fork, network.preset_base)
    root = hash_tree_root_bytes(t.BeaconState, state)
    assert hash_tree_root_bytes(t.BeaconState, bytearray(state)) == root
    assert hash_tree_root_bytes(t.BeaconState, memoryview(state)) == root
    padded = b"\xee" * 5 + state + b"\xee" * 3
    v = StateView(memoryview(padded)[5:-3], fork, network.preset_base)
    assert v.hash_tree_root() == root
    assert v.slot == slot


def test_scripts_bench_state_synthetic_builder():
    """The benchmark's numpy-built mainnet state is a valid BeaconState (small N)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "bench_state.py"
    spec = importlib.util.spec_from_file_location("bench_state", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    data = mod.synthetic_state(300)
    spec_mod = _spec(mod.FORK, mod.PRESET)
    obj = spec_mod.BeaconState.decode_bytes(data)
    v = StateView(data, mod.FORK, mod.PRESET)
    assert v.hash_tree_root() == bytes(obj.hash_tree_root())
    assert v.validator_count == 300
    assert os.path.basename(path) == "bench_state.py"


@pytest.mark.parametrize("n,c", [(1, 1), (50, 5), (7, 8), (300, 3)])
def test_merkleize_each_native_equals_numpy_layers(n, c, monkeypatch):
    leaves = np.random.default_rng(n * 10 + c).integers(0, 256, (n, c, 32), dtype=np.uint8)
    depth = max(c - 1, 0).bit_length() + (1 if c == 8 else 0)  # also a depth beyond the need
    got = fast.merkleize_each(leaves, depth)
    monkeypatch.setattr(hashing, "_native_hash_pairs", None)
    want = fast.merkleize_each(leaves, depth)
    assert np.array_equal(got, want)
    assert bytes(want[0]) == _py_merkleize(leaves[0].tobytes(), 2 ** depth)


# --- native walker (_sha256.ssz_root) against the Python walker ---------------------------------

def _native_vs_python(sedes, data: bytes) -> str:
    """The C walker accepts exactly what the Python walker accepts, with the same root."""
    node = compile_sedes(sedes)
    got = fast._native_ssz_root(*fast.native_plan(node), data)
    try:
        want = fast.hash_tree_root_bytes_py(sedes, data)
    except FormatError:
        assert got is None, "native walker accepted bytes the Python walker rejects"
        return "rejected"
    assert got == want
    return "accepted"


@pytest.mark.skipif(fast._native_ssz_root is None, reason="native extension not built")
def test_native_walker_matches_python_walker(fixture_states, fixture_blocks, network):
    from ssz.sedes import Bitlist, Bitvector, ByteList, List, Vector, boolean, uint16, uint64

    outcomes = {"accepted": 0, "rejected": 0}
    for sedes in (uint64, boolean, List(uint64, 100), List(boolean, 300), Vector(uint16, 33),
                  Bitlist(256), Bitlist(10), Bitvector(12), ByteList(1000),
                  List(ByteList(50), 20), Vector(List(uint64, 3), 3), Vector(boolean, 5)):
        rng = random.Random(5)
        for n in range(0, 70):
            data = bytes(rng.choice((0, 1, 2, 0x80, 0xFF, rng.randrange(256)))
                         for _ in range(n))
            outcomes[_native_vs_python(sedes, data)] += 1
    rng = random.Random(12)
    for slot, fork, blk in fixture_blocks[:3] + fixture_blocks[-6:]:
        tb = ssz.types_for(fork, network.preset_base)
        outcomes[_native_vs_python(tb.SignedBeaconBlock, blk)] += 1
        for cut in (0, 4, 99, 100, len(blk) // 2, len(blk) - 1):
            outcomes[_native_vs_python(tb.SignedBeaconBlock, blk[:cut])] += 1
        for _ in range(60):
            pos = rng.randrange(min(500, len(blk))) if rng.random() < 0.7 else rng.randrange(len(blk))
            bad = bytearray(blk)
            bad[pos] ^= 1 << rng.randrange(8)
            outcomes[_native_vs_python(tb.SignedBeaconBlock, bytes(bad))] += 1
    slot, fork, state = fixture_states[-1]
    ts = ssz.types_for(fork, network.preset_base)
    assert _native_vs_python(ts.BeaconState, state) == "accepted"
    for _ in range(30):
        bad = bytearray(state)
        pos = rng.randrange(min(4000, len(state)))
        bad[pos] ^= 1 << rng.randrange(8)
        outcomes[_native_vs_python(ts.BeaconState, bytes(bad))] += 1
    assert outcomes["accepted"] > 100 and outcomes["rejected"] > 100, outcomes


@pytest.mark.skipif(fast._native_ssz_root is None, reason="native extension not built")
def test_native_walker_errors_come_from_the_python_walker(fixture_blocks, network):
    slot, fork, blk = fixture_blocks[-1]
    tb = ssz.types_for(fork, network.preset_base)
    bad = _set_u32(blk, 0, 99)  # SignedBeaconBlock: message offset != fixed part size
    assert fast._native_ssz_root(*fast.native_plan(compile_sedes(tb.SignedBeaconBlock)),
                                 bad) is None
    with pytest.raises(FormatError, match=r"^SSZ SignedBeaconBlock.message: offset 0: first "
                                          r"offset 0x00000063, expected the fixed part size"):
        hash_tree_root_bytes(tb.SignedBeaconBlock, bad)


@pytest.mark.skipif(fast._native_ssz_root is None, reason="native extension not built")
def test_sha_ni_and_openssl_block_functions_agree(tmp_path):
    """The extension picks SHA-NI when the CPU has it (after a self-test at import), else
    OpenSSL's block function; ERA_TOOLS_NO_SHANI forces OpenSSL.  Both give hashlib's digests
    on odd and even batch sizes (the SHA-NI path hashes two inputs at a time)."""
    import subprocess
    import sys

    from era_tools import _sha256

    assert _sha256.BACKEND in ("sha-ni", "openssl")
    code = ("import hashlib, os, sys; from era_tools import _sha256 as s; print(s.BACKEND); "
            "b = bytes(range(256)) * 251; "
            "assert all(s.hash_pairs(b[:64 * n]) == b''.join(hashlib.sha256(b[64 * i:64 * i + 64])"
            ".digest() for i in range(n)) for n in (1, 2, 3, 7, 8, 1003)); "
            "print(s.merkleize(b[:32 * 1000], 12).hex())")
    outs = {}
    for env in ({}, {"ERA_TOOLS_NO_SHANI": "1"}):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, **env}, cwd=Path(__file__).resolve().parents[1],
                           check=True)
        backend, root = r.stdout.split()
        outs[backend] = root
    assert "openssl" in outs
    assert len(set(outs.values())) == 1
    assert next(iter(outs.values())) == _py_merkleize(bytes(range(256)) * 125, 4096).hex()


# --- batched native walker and interleaved hash paths -----------------------------------------
# ssz_root walks N values of one type at once and hashes all their trees level by level in
# lockstep through the chosen hash path; _sha256._tune(batched, lanes) selects the per-value
# walker it replaced and _sha256._path(name) every hash path, so all are checked here.

native_walker = pytest.mark.skipif(fast._native_ssz_root is None,
                                   reason="native extension not built")


def _hash_paths():
    """Every hash path usable here (self-tested at import): OpenSSL's block function, SHA-NI
    x1/x2/x4/x8, AVX2 x8, AVX-512 x16 (their full groups, partial groups, narrower tails)."""
    from era_tools import _sha256

    return _sha256.PATHS


def _cpu_avx512() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512f" in flags and " avx512bw" in flags


_SWITCHES = ("ERA_TOOLS_NO_AVX512", "ERA_TOOLS_NO_SHANI", "ERA_TOOLS_NO_AVX2",
             "ERA_TOOLS_SHA256_PATH")


def _env_variants():
    """Environments for subprocess checks: as is, and each fast path turned off."""
    return ({}, {"ERA_TOOLS_NO_AVX512": "1"}, {"ERA_TOOLS_NO_SHANI": "1"},
            {"ERA_TOOLS_NO_SHANI": "1", "ERA_TOOLS_NO_AVX512": "1"},
            {"ERA_TOOLS_NO_SHANI": "1", "ERA_TOOLS_NO_AVX512": "1", "ERA_TOOLS_NO_AVX2": "1"})


@pytest.fixture
def tune():
    """_sha256._tune, the walker and hash path restored after the test."""
    from era_tools import _sha256

    prev, path = _sha256._tune(), _sha256._path()
    yield _sha256._tune
    _sha256._tune(prev[0], -1)
    _sha256._path(path)


@native_walker
def test_hash_chains_match_hashlib(tune):
    from era_tools import _sha256

    for path in _hash_paths():
        _sha256._path(path)
        for lanes in {1, tune()[1]}:
            seed = random.Random(lanes).randbytes(64 * lanes)
            got = _sha256._chain(seed, 7)
            assert len(got) == 64 * lanes
            for l in range(lanes):
                buf = seed[64 * l:64 * l + 64]
                for _ in range(7):
                    buf = hashlib.sha256(buf).digest() + buf[32:]
                assert got[64 * l:64 * l + 64] == buf, (path, lanes)
    with pytest.raises(ValueError):
        _sha256._chain(b"\x00" * 64 * 3, 1)


@native_walker
def test_every_lane_width_gives_hashlib_digests(tune):
    from era_tools import _sha256

    buf = random.Random(9).randbytes(64 * 45)
    chunks = buf[:32 * 77]
    widths = set()
    for path in _hash_paths():
        _sha256._path(path)
        widths.add(tune()[1])
    for lanes in sorted(widths):
        tune(-1, lanes)
        for n in (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 45):
            assert hashing._native_hash_pairs(buf[:64 * n]) == _hashlib_pairs(buf[:64 * n])
        assert hashing.merkleize(chunks, 100) == _py_merkleize(chunks, 100)
    with pytest.raises(ValueError):
        tune(-1, 3)
    with pytest.raises(ValueError):
        _sha256._path("no-such-path")


@native_walker
def test_every_path_random_counts_match_hashlib(tune):
    """hash_pairs over random inputs of every count 0..100 and 1000 (full groups, partial
    groups, narrower and single tails) on every hash path, and merkleize (in-place layers)
    of odd chunk counts, against hashlib."""
    from era_tools import _sha256

    rng = random.Random(512)
    buf = rng.randbytes(64 * 1000)
    want = _hashlib_pairs(buf)
    chunks = rng.randbytes(32 * 1000)
    for path in _hash_paths():
        _sha256._path(path)
        for n in list(range(101)) + [1000]:
            start = rng.randrange(0, 1000 - n + 1)
            got = hashing._native_hash_pairs(buf[64 * start:64 * (start + n)])
            assert got == want[32 * start:32 * (start + n)], (path, n)
        for n in (1, 17, 33, 255, 1000):
            assert hashing.merkleize(chunks[:32 * n], 1024) == _py_merkleize(chunks[:32 * n],
                                                                              1024), (path, n)


def _cpu_flag(flag: str) -> bool:
    try:
        return f" {flag}" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def _import_in_subprocess(env: dict) -> tuple[list[str], str]:
    """Import _sha256 in a fresh process with env: its (BACKEND, AVX512, batched, lanes, PATH,
    PATHS) line, the count of wrong hash_pairs results over random counts 0..100 and 1000, the
    root of 999 chunks, and its stderr."""
    import subprocess
    import sys

    code = ("import hashlib, random; from era_tools import _sha256 as s; "
            "print(s.BACKEND, s.AVX512, *s._tune(), s.PATH, ','.join(s.PATHS)); "
            "b = random.Random(5).randbytes(64 * 1000); "
            "bad = [n for n in list(range(101)) + [1000] if s.hash_pairs(b[:64 * n]) != "
            "b''.join(hashlib.sha256(b[64 * i:64 * i + 64]).digest() for i in range(n))]; "
            "print(len(bad)); print(s.merkleize(b[:32 * 999], 10).hex())")
    base = {k: v for k, v in os.environ.items() if k not in _SWITCHES}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**base, **env}, cwd=Path(__file__).resolve().parents[1], check=True)
    return r.stdout.splitlines(), r.stderr


@native_walker
def test_path_switches_and_every_env_give_hashlib_digests():
    """ERA_TOOLS_NO_AVX512 / _NO_SHANI / _NO_AVX2 take their paths out (AVX512 == 0, no
    sha-ni-* path, no avx2-x8); where the CPU has a feature its paths are usable (after their
    import-time self-tests against OpenSSL); the path picked by the import timing is one of the
    usable ones, with the batched walker when it hashes more than one input at a time.  Every
    combination gives hashlib's digests for random counts and the same merkle root."""
    from era_tools import _sha256

    roots = set()
    for env in _env_variants():
        (head, bad, root), _ = _import_in_subprocess(env)
        backend, avx512, batched, lanes, path, usable = head.split()
        usable = usable.split(",")
        assert bad == "0", (env, head)
        roots.add(root)
        assert path in usable and "openssl" in usable
        assert batched == ("1" if int(lanes) > 1 else "0"), (env, head)
        if "ERA_TOOLS_NO_AVX512" in env:
            assert avx512 == "0" and "avx512-x16" not in usable, env
        elif _cpu_avx512():
            assert avx512 == "1" and "avx512-x16" in usable, env
        if "ERA_TOOLS_NO_SHANI" in env:
            assert backend == "openssl" and not any(p.startswith("sha-ni") for p in usable)
        elif _cpu_flag("sha_ni"):
            assert backend == "sha-ni"
            assert {"sha-ni-x1", "sha-ni-x2", "sha-ni-x4", "sha-ni-x8"} <= set(usable), env
        if "ERA_TOOLS_NO_AVX2" in env:
            assert "avx2-x8" not in usable
        elif _cpu_flag("avx2"):
            assert "avx2-x8" in usable
    assert roots == {_py_merkleize(random.Random(5).randbytes(64 * 1000)[:32 * 999], 1024).hex()}
    if _cpu_avx512() and "ERA_TOOLS_NO_AVX512" not in os.environ:
        assert _sha256.AVX512 == 1


@native_walker
def test_forced_path_env():
    """ERA_TOOLS_SHA256_PATH=<name> pins every usable path (hashlib's digests on each); a name
    that is not usable warns once on stderr and falls back to the timing pick."""
    from era_tools import _sha256

    for name in _sha256.PATHS:
        (head, bad, _), _ = _import_in_subprocess({"ERA_TOOLS_SHA256_PATH": name})
        assert head.split()[4] == name and bad == "0", (name, head)
    (head, bad, _), err = _import_in_subprocess({"ERA_TOOLS_SHA256_PATH": "sha-ni-x3"})
    assert head.split()[4] in _sha256.PATHS and bad == "0"
    assert "RuntimeWarning: ERA_TOOLS_SHA256_PATH=sha-ni-x3 is not a usable hash path" in err


def _walk_both(sedes, data):
    """ssz_root of data by the batched and the per-value walker (must agree: root or None)."""
    from era_tools import _sha256

    plan = fast.native_plan(compile_sedes(sedes))
    prev = _sha256._tune()
    try:
        _sha256._tune(1, -1)
        batched = fast._native_ssz_root(*plan, data)
        _sha256._tune(0, -1)
        single = fast._native_ssz_root(*plan, data)
    finally:
        _sha256._tune(*prev)
    assert batched == single
    return batched


def _mainnet_blocks():
    """(fork, SignedBeaconBlock SSZ) shaped like recent mainnet blocks, built the way
    scripts/make_synthetic_era.py builds its era: 40-150 transactions of 300-1300 bytes,
    16 withdrawals, 64 attestations; deneb and electra."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    try:
        synth = importlib.import_module("make_synthetic_era")
    finally:
        sys.path.pop(0)
    out = []
    for fork, seed, n_tx in (("deneb", 1, 150), ("deneb", 2, 41), ("electra", 3, 120)):
        spec = synth.spec_module(fork)
        body = synth.make_body(spec, fork, np.random.default_rng(seed), n_tx, 64)
        msg = (synth.u64(9_000_000 + seed) + synth.u64(seed * 977) + bytes([seed]) * 32
               + bytes([seed + 1]) * 32 + (84).to_bytes(4, "little"))
        out.append((fork, (100).to_bytes(4, "little") + bytes([seed]) * 96 + msg
                    + body.encode_bytes()))
    return out


@native_walker
def test_batched_walker_on_mainnet_sized_blocks():
    """Mainnet-sized deneb and electra blocks (up to ~150 transactions): batched ==
    per-value walker == Python walker, and the batched walker hashes nearly everything 16 or
    two at a time."""
    from era_tools import _sha256

    blocks = _mainnet_blocks()
    for fork, data in blocks:
        sedes = ssz.types_for(fork, "mainnet").SignedBeaconBlock
        want = fast.hash_tree_root_bytes_py(sedes, data)
        assert _walk_both(sedes, data) == want
        assert hash_tree_root_bytes(sedes, data) == want
    width = _sha256._tune()[1]
    if width > 2:
        _sha256._stats(True)
        hash_tree_root_bytes(sedes, data)
        x1, x2, wide, spare = _sha256._stats(False)
        assert wide > 0 and spare < width * wide
        assert x1 + 2 * x2 < 0.1 * (x1 + 2 * x2 + width * wide), (x1, x2, wide)
    elif _sha256.BACKEND == "sha-ni" and width == 2:
        _sha256._stats(True)
        hash_tree_root_bytes(sedes, data)
        x1, x2, wide, _ = _sha256._stats(False)
        assert x2 > 0 and wide == 0 and x1 < 0.02 * (x1 + 2 * x2), (x1, x2)


@native_walker
def test_batched_walker_edge_shapes(tune):
    """Shapes the lockstep code treats specially: empty values in a batch, batches longer
    than one slice (1024 values), lists of lists, containers with variable fields, odd
    counts, every hash path, against the Python walker and py-ssz."""
    from era_tools import _sha256
    from ssz.sedes import Bitlist, ByteList, ByteVector, Container, List, Vector, uint8, uint64

    rng = random.Random(21)
    inner = Container((uint64, ByteList(300), Bitlist(70), ByteVector(48)))
    cases = [
        (List(ByteList(2**30), 2**20),
         [rng.randbytes(rng.choice((0, 0, 1, 31, 32, 33, 200, 1000))) for _ in range(2500)]),
        (List(ByteList(64), 4000), [b""] * 1500),
        (List(List(uint8, 100), 3000), [rng.randbytes(rng.randrange(0, 101)) for _ in range(1100)]),
        (List(inner, 2000), [(rng.getrandbits(64), rng.randbytes(rng.randrange(0, 300)),
                              (rng.random() < 0.5,) * rng.randrange(0, 71), rng.randbytes(48))
                             for _ in range(1030)]),
        (Vector(List(ByteList(40), 9), 5),
         [[rng.randbytes(rng.randrange(0, 41)) for _ in range(rng.randrange(0, 10))]
          for _ in range(5)]),
        (List(Vector(uint64, 3), 5000), [(1, 2, 3)] * 1025),
    ]
    for sedes, value in cases:
        data = sedes.serialize(value)
        want = pyssz.get_hash_tree_root(sedes.deserialize(data))
        assert fast.hash_tree_root_bytes_py(sedes, data) == want
        for path in _hash_paths():
            _sha256._path(path)
            assert _walk_both(sedes, data) == want, (sedes, path)


@native_walker
def test_batched_walker_rejects_what_the_per_value_walker_rejects(fixture_blocks, network):
    """Corrupted blocks (offset bytes, anywhere, truncations): the batched and per-value
    walkers return the same root or both None, and None is exactly the Python walker's
    FormatError."""
    rng = random.Random(31)
    outcomes = {"accepted": 0, "rejected": 0}
    blobs = []
    for slot, fork, blk in fixture_blocks[-4:] + fixture_blocks[:1]:
        tb = ssz.types_for(fork, network.preset_base)
        blobs += [(tb.SignedBeaconBlock, blk[:cut]) for cut in (0, 3, 100, len(blk) - 1)]
        for _ in range(60):
            pos = rng.randrange(min(600, len(blk))) if rng.random() < 0.7 else rng.randrange(len(blk))
            bad = bytearray(blk)
            bad[pos] ^= 1 << rng.randrange(8)
            blobs.append((tb.SignedBeaconBlock, bytes(bad)))
    from ssz.sedes import ByteList, List
    txs = List(ByteList(100), 50)
    good = txs.serialize([b"ab", b"", b"c" * 100])
    blobs += [(txs, good), (txs, _set_u32(good, 4, 13)), (txs, _set_u32(good, 8, 11)),
              (txs, _set_u32(good, 0, 8)),
              (txs, txs.serialize([b"x" * 100, b"y"]) + b"z")]
    for sedes, data in blobs:
        got = _walk_both(sedes, data)
        try:
            want = fast.hash_tree_root_bytes_py(sedes, data)
        except FormatError:
            assert got is None
            outcomes["rejected"] += 1
            continue
        assert got == want
        outcomes["accepted"] += 1
    assert outcomes["accepted"] > 20 and outcomes["rejected"] > 30, outcomes


@native_walker
@pytest.mark.parametrize("no_avx512", [False, True])
def test_batched_walker_without_sha_ni(fixture_blocks, network, no_avx512):
    """ERA_TOOLS_NO_SHANI=1 (and ERA_TOOLS_NO_AVX2=1): OpenSSL's block function, with the
    AVX-512 path where the CPU has it (then the batched walker by default), else the per-value
    walker by default; the batched walker (its tails one hash at a time) gives the same roots."""
    import subprocess
    import sys

    picks = [fixture_blocks[i] for i in (0, len(fixture_blocks) // 2, -1)]
    want = []
    for slot, fork, blk in picks:
        tb = ssz.types_for(fork, network.preset_base)
        want.append(pyssz.get_hash_tree_root(tb.SignedBeaconBlock.deserialize(blk)).hex())
    code = ("import sys; from pathlib import Path; from era_tools import _sha256, ssz; "
            "from era_tools.ssz.fast import hash_tree_root_bytes as h; "
            "print(_sha256.BACKEND, *_sha256._tune()); "
            "args = sys.argv[1:]; "
            "[(_sha256._tune(b, -1), print(h(ssz.types_for(f, 'minimal').SignedBeaconBlock, "
            "Path(p).read_bytes()).hex())) "
            "for b in (1, 0) for f, p in zip(args[::2], args[1::2])]")
    args = []
    for slot, fork, blk in picks:
        args += [fork, str(FIXTURE / "blocks" / f"{slot}.ssz")]
    env = {**{k: v for k, v in os.environ.items() if k not in _SWITCHES},
           "ERA_TOOLS_NO_SHANI": "1", "ERA_TOOLS_NO_AVX2": "1"}
    if no_avx512:
        env["ERA_TOOLS_NO_AVX512"] = "1"
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       env=env, cwd=Path(__file__).resolve().parents[1], check=True)
    lines = r.stdout.split()
    if no_avx512 or not _cpu_avx512():
        assert lines[:3] == ["openssl", "0", "1"]  # per-value walker, one hash at a time
    else:
        assert lines[:3] == ["openssl", "1", "16"]  # batched walker, 16 lanes with AVX-512
    assert lines[3:] == want + want  # batched, then per-value


@native_walker
def test_both_walkers_give_the_manifest_block_roots(manifest):
    """Every fixture block's root (the client's, from the manifest) from the message bytes,
    by the batched and by the per-value native walker."""
    checked = 0
    for rec in manifest["blocks"]:
        if not rec["file"]:
            continue
        data = (FIXTURE / rec["file"]).read_bytes()
        msg = data[int.from_bytes(data[:4], "little"):]  # SignedBeaconBlock.message
        sedes = ssz.types_for(rec["fork"], manifest["preset"]).BeaconBlock
        assert _walk_both(sedes, msg) == bytes.fromhex(rec["root"][2:]), rec["slot"]
        checked += 1
    assert checked == 890
