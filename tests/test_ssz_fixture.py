"""era_tools.ssz against real chain data: the Lodestar minimal-preset fixture.

Every block and state of `shared/fixtures/lodestar-minimal-1` decodes with the manifest's fork,
gives the manifest's root and re-encodes to the same bytes.  Also: error wrapping, the
Beacon-API JSON encoding, class reuse across forks and pickling.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import struct
from collections import defaultdict
from pathlib import Path

import pytest

from era_tools.config import FORKS, PRESETS
from era_tools.errors import ConfigError, FormatError
from era_tools.ssz import (
    block_root,
    decode_block,
    decode_state,
    encode,
    hash_tree_root,
    types_for,
)
from era_tools.ssz.json import from_json, to_json

FIXTURE = Path(__file__).resolve().parents[2] / "shared/fixtures/lodestar-minimal-1"
PRESET = "minimal"

needs_fixture = pytest.mark.skipif(
    not (FIXTURE / "manifest.json").is_file(),
    reason=f"real-chain fixture not found at {FIXTURE} (shared/fixtures beside the checkout)",
)


def _manifest() -> dict:
    with open(FIXTURE / "manifest.json") as f:
        return json.load(f)


def _h(hex_str: str) -> bytes:
    return bytes.fromhex(hex_str.removeprefix("0x"))


def _blocks_by_fork() -> dict[str, list[dict]]:
    if not (FIXTURE / "manifest.json").is_file():
        return {}
    out: dict[str, list[dict]] = defaultdict(list)
    for rec in _manifest()["blocks"]:
        if rec["file"]:
            out[rec["fork"]].append(rec)
    return dict(out)


BLOCKS_BY_FORK = _blocks_by_fork()


def _load_block(rec: dict):
    data = (FIXTURE / rec["file"]).read_bytes()
    return data, decode_block(data, rec["fork"], PRESET, where=rec["file"])


# --- blocks ------------------------------------------------------------------------------------

@needs_fixture
def test_manifest_counts():
    m = _manifest()
    assert sum(len(v) for v in BLOCKS_BY_FORK.values()) == 890
    assert len(m["states"]) == 17
    assert set(BLOCKS_BY_FORK) == {"phase0", "altair", "bellatrix", "capella"}


@needs_fixture
@pytest.mark.parametrize("fork", ["phase0", "altair", "bellatrix", "capella"])
def test_blocks_decode_root_and_reencode(fork):
    records = BLOCKS_BY_FORK.get(fork)
    assert records, f"no {fork} blocks in the fixture"
    signed_cls = types_for(fork, PRESET).SignedBeaconBlock
    for rec in records:
        data, blk = _load_block(rec)
        assert type(blk) is signed_cls
        msg = blk.message
        where = f"slot {rec['slot']} ({rec['file']})"
        assert msg.slot == rec["slot"], where
        assert block_root(blk) == _h(rec["root"]), where
        assert hash_tree_root(msg) == _h(rec["root"]), where
        assert msg.parent_root == _h(rec["parent_root"]), where
        assert msg.state_root == _h(rec["state_root"]), where
        assert msg.proposer_index == rec["proposer_index"], where
        assert len(blk.signature) == 96
        assert encode(blk) == data, where


@needs_fixture
def test_blocks_carry_fork_features():
    """The capella part of the chain has payloads with transactions, withdrawals and
    BLS-to-execution changes; the types must expose them under the spec names."""
    seen = defaultdict(int)
    for rec in BLOCKS_BY_FORK["capella"]:
        _, blk = _load_block(rec)
        body = blk.message.body
        seen["transactions"] += len(body.execution_payload.transactions)
        seen["withdrawals"] += len(body.execution_payload.withdrawals)
        seen["bls_changes"] += len(body.bls_to_execution_changes)
        seen["exits"] += len(body.voluntary_exits)
    assert all(seen[k] > 0 for k in ("transactions", "withdrawals", "bls_changes", "exits")), seen


# --- states ------------------------------------------------------------------------------------

def _state_records() -> list[dict]:
    return _manifest()["states"] if (FIXTURE / "manifest.json").is_file() else []


@needs_fixture
@pytest.mark.parametrize("rec", _state_records(), ids=lambda r: f"slot{r['slot']}-{r['fork']}")
def test_states_root_and_reencode(rec):
    data = (FIXTURE / rec["file"]).read_bytes()
    state = decode_state(data, rec["fork"], PRESET, where=rec["file"])
    assert type(state) is types_for(rec["fork"], PRESET).BeaconState
    assert state.slot == rec["slot"]
    assert hash_tree_root(state) == _h(rec["state_root"])
    assert encode(state) == data

    # The fixed prefix that era readers slice without decoding (era-format.md §4).
    sphr = PRESETS[PRESET]["SLOTS_PER_HISTORICAL_ROOT"]
    assert struct.unpack_from("<Q", data, 40)[0] == state.slot
    assert data[176:176 + 32 * sphr] == b"".join(state.block_roots)
    assert data[176 + 32 * sphr:176 + 64 * sphr] == b"".join(state.state_roots)


@needs_fixture
def test_state_block_roots_match_blocks():
    """state.block_roots[s % SPHR] is the root of the block at s (or of the latest before)."""
    m = _manifest()
    sphr = PRESETS[PRESET]["SLOTS_PER_HISTORICAL_ROOT"]
    roots, last = {}, None
    for rec in sorted(m["blocks"], key=lambda r: r["slot"]):
        last = _h(rec["root"]) if rec["root"] else last  # empty slot repeats the last root
        roots[rec["slot"]] = last
    rec = m["states"][-1]
    state = decode_state((FIXTURE / rec["file"]).read_bytes(), rec["fork"], PRESET)
    for slot in range(state.slot - sphr, state.slot):
        assert state.block_roots[slot % sphr] == roots[slot], slot


@needs_fixture
def test_historical_summary_names_the_era():
    """era-format.md section 4: hash_tree_root(HistoricalSummary of the era state's own
    block_roots/state_roots) equals the state's historical_summaries entry for that era."""
    sphr = PRESETS[PRESET]["SLOTS_PER_HISTORICAL_ROOT"]
    for rec in _state_records()[-3:]:
        state = decode_state((FIXTURE / rec["file"]).read_bytes(), rec["fork"], PRESET)
        t = types_for(rec["fork"], PRESET)
        fields = dict(t.BeaconState._meta.fields)
        summary = t.HistoricalSummary(
            block_summary_root=hash_tree_root(state.block_roots, fields["block_roots"]),
            state_summary_root=hash_tree_root(state.state_roots, fields["state_roots"]))
        era = rec["slot"] // sphr
        entry = state.historical_summaries[era - 1 - len(state.historical_roots)]
        assert hash_tree_root(summary) == hash_tree_root(entry)
        assert summary == entry


# --- errors ------------------------------------------------------------------------------------

@needs_fixture
def test_malformed_blocks_raise_format_error():
    rec = BLOCKS_BY_FORK["capella"][10]
    data = (FIXTURE / rec["file"]).read_bytes()
    first_offset = struct.unpack_from("<I", data)[0]
    bad_inputs = {
        "empty": b"",
        "truncated": data[:-1],
        "short": data[:50],
        "trailing": data + b"\x00",
        "bad-offset": struct.pack("<I", first_offset + 4) + data[4:],
        "huge-offset": struct.pack("<I", 2**31) + data[4:],
    }
    for name, bad in bad_inputs.items():
        with pytest.raises(FormatError, match=r"cannot decode capella SignedBeaconBlock") as ei:
            decode_block(bad, "capella", PRESET, where=f"case {name}")
        assert str(ei.value).startswith(f"case {name}: ")
        assert ei.value.__cause__ is not None or "non-canonical" in str(ei.value)


@needs_fixture
def test_wrong_fork_is_an_error():
    # A capella block is not a valid phase0 block (the body has extra fields).
    rec = BLOCKS_BY_FORK["capella"][0]
    data = (FIXTURE / rec["file"]).read_bytes()
    with pytest.raises(FormatError, match="cannot decode phase0 SignedBeaconBlock"):
        decode_block(data, "phase0", PRESET)


def test_bad_state_bytes_raise_format_error():
    with pytest.raises(FormatError, match="cannot decode deneb BeaconState"):
        decode_state(b"\x00" * 100, "deneb", PRESET)


def test_unknown_fork_or_preset():
    with pytest.raises(ConfigError):
        types_for("gloas", PRESET)
    with pytest.raises(ConfigError):
        types_for("capella", "no-such-preset")


# --- types -------------------------------------------------------------------------------------

def test_unchanged_types_are_reused_across_forks():
    t = {f: types_for(f, PRESET) for f in FORKS}
    assert types_for("capella", PRESET) is t["capella"]
    for f in FORKS[1:]:
        assert t[f].Validator is t["phase0"].Validator
        assert t[f].BeaconBlockHeader is t["phase0"].BeaconBlockHeader
        assert t[f].Fork is t["phase0"].Fork
        assert t[f].BeaconState is not t[FORKS[FORKS.index(f) - 1]].BeaconState
    assert t["fulu"].SignedBeaconBlock is t["electra"].SignedBeaconBlock
    assert t["electra"].Attestation is not t["deneb"].Attestation
    assert t["deneb"].Attestation is t["phase0"].Attestation
    assert t["deneb"].HistoricalSummary is t["capella"].HistoricalSummary
    assert types_for("phase0", "mainnet").BeaconState is not t["phase0"].BeaconState
    for f in FORKS:
        assert t[f].FORK == f
        for name in ("SignedBeaconBlock", "BeaconBlock", "BeaconBlockBody", "BeaconBlockHeader",
                     "BeaconState", "Validator", "Fork", "ForkData", "SigningData"):
            assert hasattr(t[f], name), (f, name)
    assert not hasattr(t["bellatrix"], "HistoricalSummary")
    assert hasattr(t["capella"], "HistoricalSummary")
    assert hasattr(t["bellatrix"], "ExecutionPayload")
    assert not hasattr(t["altair"], "ExecutionPayload")


def zero_hash(depth: int) -> bytes:
    h = b"\x00" * 32
    for _ in range(depth):
        h = hashlib.sha256(h + h).digest()
    return h


def test_default_minimal_roots_are_stable():
    """A default object round-trips through bytes; small containers have known roots."""
    for fork in FORKS:
        t = types_for(fork, PRESET)
        header = t.BeaconBlockHeader(slot=0, proposer_index=0, parent_root=b"\x00" * 32,
                                     state_root=b"\x00" * 32, body_root=b"\x00" * 32)
        # hash_tree_root of the all-zero 5-field container = the depth-3 zero hash.
        assert hash_tree_root(header) == zero_hash(3)
        assert t.BeaconBlockHeader.deserialize(encode(header)) == header


@needs_fixture
def test_pickle_roundtrip():
    rec = BLOCKS_BY_FORK["capella"][3]
    data, blk = _load_block(rec)
    again = pickle.loads(pickle.dumps(blk))
    assert type(again) is type(blk)
    assert encode(again) == data and block_root(again) == block_root(blk)


# --- Beacon-API JSON ---------------------------------------------------------------------------

@needs_fixture
def test_json_encoding_of_a_capella_block():
    rec = next(r for r in BLOCKS_BY_FORK["capella"]
               if (FIXTURE / r["file"]).stat().st_size > 2000)
    data, blk = _load_block(rec)
    j = to_json(blk)
    assert set(j) == {"message", "signature"}
    msg = j["message"]
    assert list(msg) == ["slot", "proposer_index", "parent_root", "state_root", "body"]
    assert msg["slot"] == str(rec["slot"])
    assert msg["proposer_index"] == str(rec["proposer_index"])
    assert msg["parent_root"] == rec["parent_root"]
    assert j["signature"].startswith("0x") and len(j["signature"]) == 2 + 2 * 96
    body = msg["body"]
    assert list(body) == [
        "randao_reveal", "eth1_data", "graffiti", "proposer_slashings", "attester_slashings",
        "attestations", "deposits", "voluntary_exits", "sync_aggregate", "execution_payload",
        "bls_to_execution_changes"]
    assert body["eth1_data"]["deposit_count"].isdigit()
    # Bitvector[SYNC_COMMITTEE_SIZE=32] -> 4 bytes of hex
    bits = body["sync_aggregate"]["sync_committee_bits"]
    assert bits.startswith("0x") and len(bits) == 2 + 2 * 4
    payload = body["execution_payload"]
    assert payload["base_fee_per_gas"].isdigit()  # uint256 as a decimal string
    assert payload["fee_recipient"].startswith("0x") and len(payload["fee_recipient"]) == 42
    assert payload["logs_bloom"].startswith("0x") and len(payload["logs_bloom"]) == 2 + 512
    assert isinstance(payload["transactions"], list)
    assert all(tx.startswith("0x") for tx in payload["transactions"])
    for w in payload["withdrawals"]:
        assert list(w) == ["index", "validator_index", "address", "amount"]
        assert all(isinstance(v, str) for v in w.values())
    for att in body["attestations"]:
        # Bitlist: SSZ bytes including the length bit -> last byte never zero
        ab = bytes.fromhex(att["aggregation_bits"][2:])
        assert ab and ab[-1] != 0
        assert att["data"]["slot"].isdigit()
    # Survives a trip through text JSON and back to identical SSZ.
    again = from_json(json.loads(json.dumps(j)), type(blk))
    assert encode(again) == data


@needs_fixture
def test_json_encoding_of_a_state():
    rec = _state_records()[-1]
    data = (FIXTURE / rec["file"]).read_bytes()
    state = decode_state(data, rec["fork"], PRESET)
    j = to_json(state)
    assert j["slot"] == str(rec["slot"])
    assert j["validators"][0]["slashed"] in (True, False)
    assert j["validators"][0]["pubkey"].startswith("0x")
    assert all(isinstance(b, str) for b in j["balances"])
    assert all(isinstance(p, str) for p in j["previous_epoch_participation"])
    assert j["justification_bits"].startswith("0x") and len(j["justification_bits"]) == 4
    assert len(j["block_roots"]) == PRESETS[PRESET]["SLOTS_PER_HISTORICAL_ROOT"]
    assert encode(from_json(j, type(state))) == data


def test_from_json_rejects_bad_input():
    t = types_for("phase0", PRESET)
    good = to_json(t.Checkpoint(epoch=5, root=b"\x11" * 32))
    assert good == {"epoch": "5", "root": "0x" + "11" * 32}
    for bad in ({"epoch": "5"}, {"epoch": 5.5, "root": good["root"]},
                {"epoch": "-1", "root": good["root"]}, {"epoch": "5", "root": "0x11"},
                {"epoch": "5", "root": "11" * 32}, {"epoch": str(2**64), "root": good["root"]}):
        with pytest.raises(FormatError):
            from_json(bad, t.Checkpoint)
