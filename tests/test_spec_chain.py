"""Acceptance tests for the newer forks (issue 3): era files of a deneb -> electra -> fulu chain
built with the executable consensus spec (scripts/make_spec_chain.py, committed in
tests/data/spec_chain/) read back, decode with our SSZ types, agree with the spec's own types,
and verify at every level."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from era_tools import ssz
from era_tools.config import load_config
from era_tools.era import EraReader, EraWriter, contents_equal, era_files_in

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "spec_chain"
SCRIPT = ROOT / "scripts" / "make_spec_chain.py"
HAVE_VERIFY = importlib.util.find_spec("era_tools.verify") is not None
needs_verify = pytest.mark.skipif(not HAVE_VERIFY, reason="era_tools.verify has not landed")


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((DATA / "manifest.json").read_text())


@pytest.fixture(scope="module")
def net():
    return load_config(DATA / "spec.json")


@pytest.fixture(scope="module")
def by_slot(manifest) -> dict:
    return {s["slot"]: s for s in manifest["slots"]}


@pytest.fixture(scope="module")
def era_paths(manifest) -> list[Path]:
    return [DATA / n for n in manifest["era_files"]]


def _blocks(path):
    with EraReader(path) as r:
        return list(r.iter_blocks())


# --------------------------------------------------------------------------------------------
# The committed data and its config


def test_files_config_and_chain_shape(manifest, net, by_slot, era_paths):
    assert sorted(p.name for p in DATA.glob("*.era")) == [p.name for p in era_paths]
    assert [p.name.split("-")[1] for p in era_paths] == ["00000", "00001", "00002", "00003"]
    assert net.config_name == "specchain" and net.preset_base == "minimal"
    assert net.slots_per_historical_root == manifest["slots_per_historical_root"] == 64
    assert "0x" + net.genesis_validators_root.hex() == manifest["genesis_validators_root"]
    assert net.genesis_time == manifest["genesis_time"]
    # The config gives every slot the fork the spec ran it in.
    assert [net.fork_name_at_slot(s) for s in by_slot] == [by_slot[s]["fork"] for s in by_slot]
    assert net.fork_name_at_slot(0) == "deneb"
    assert net.fork_by_name("electra").epoch == manifest["fork_epochs"]["electra"] == 8
    assert net.fork_by_name("fulu").epoch == manifest["fork_epochs"]["fulu"] == 18
    # What the chain covers: blocks of all three forks, empty slots (a run of them, an era's
    # first slot, a fork's first slot), a fork starting exactly at an era boundary with a
    # block there, attestations, blob commitments and finality.
    assert set(manifest["slots"][-1]) >= {"slot", "fork", "block_root", "state_root"}
    assert list(by_slot) == list(range(0, manifest["final_slot"] + 1))
    block_forks = {s["fork"] for s in manifest["slots"] if s["block_root"]}
    assert block_forks == {"deneb", "electra", "fulu"}
    empty = set(manifest["empty_slots"])
    assert empty == {s for s, e in by_slot.items() if e["block_root"] is None}
    assert {128, 144, 192} <= empty and by_slot[64]["block_root"] is not None
    assert any({s, s + 1, s + 2} <= empty for s in empty)
    assert by_slot[64]["fork"] == "electra" and by_slot[63]["fork"] == "deneb"
    assert [e["fork"] for e in manifest["era_states"]] == ["deneb", "electra", "electra", "fulu"]
    assert sum(s["attestations"] for s in manifest["slots"]) > 100
    assert {s["fork"] for s in manifest["slots"] if s["blobs"]} == {"deneb", "electra", "fulu"}
    assert manifest["finalized_epoch"] > 0
    assert sum(p.stat().st_size for p in DATA.iterdir()) < 2_000_000


# --------------------------------------------------------------------------------------------
# (a) read back with era_tools: our SSZ types, roots against the manifest


def test_blocks_decode_with_our_types(manifest, net, by_slot, era_paths):
    seen = set()
    for path in era_paths:
        with EraReader(path) as r:
            want = [s for s in r.slots() if by_slot[s]["block_root"]]
            assert r.block_slots() == want, path.name
            for slot, data in r.iter_blocks():
                fork = net.fork_name_at_slot(slot)
                assert fork == by_slot[slot]["fork"]
                blk = ssz.decode_block(data, fork, net.preset_base)
                assert blk.message.slot == slot
                assert "0x" + ssz.block_root(blk).hex() == by_slot[slot]["block_root"], slot
                assert "0x" + bytes(blk.message.state_root).hex() == by_slot[slot]["state_root"]
                assert ssz.encode(blk) == data
                seen.add(slot)
    assert seen == {s for s, e in by_slot.items() if e["block_root"]}
    assert 0 in seen  # the genesis block lives in era 1


def test_states_decode_with_our_types(manifest, net, by_slot, era_paths):
    for path, era in zip(era_paths, manifest["era_states"]):
        with EraReader(path) as r:
            assert r.era == era["era"] and r.state_slot == era["slot"]
            data = r.state_ssz()
            head = r.state_head(64)
            assert path.name == r.expected_name("specchain", head)
        fork = net.fork_name_at_slot(r.state_slot)
        assert fork == era["fork"]
        state = ssz.decode_state(data, fork, net.preset_base)
        root = "0x" + ssz.hash_tree_root(state).hex()
        assert root == era["state_root"] == by_slot[era["slot"]]["state_root"]
        assert "0x" + bytes(state.genesis_validators_root).hex() == \
            manifest["genesis_validators_root"]
        assert len(state.validators) == manifest["validators"]
        assert bytes(state.fork.current_version) == net.fork_by_name(fork).version
        if era["era"] == 0:
            continue
        # The era state's roots vectors against the manifest, slot by slot.
        latest = None
        for s in range(r.state_slot - 64, r.state_slot):
            latest = by_slot[s]["block_root"] or latest
            if latest is None:  # the first slot of an era is empty: look further back
                latest = next(by_slot[p]["block_root"] for p in range(s, -1, -1)
                              if by_slot[p]["block_root"])
            assert "0x" + head.state_root_at(s).hex() == by_slot[s]["state_root"], s
            assert "0x" + head.block_root_at(s).hex() == latest, s
    assert manifest["final_state_root"] == manifest["era_states"][-1]["state_root"]


# --------------------------------------------------------------------------------------------
# (b) the same bytes through the executable spec's own types


def test_same_bytes_with_the_spec(manifest, net, by_slot, era_paths):
    pytest.importorskip("ckzg")  # electra and fulu spec modules need it
    pytest.importorskip("eth_consensus_specs")
    specs = {f: importlib.import_module(f"eth_consensus_specs.{f}.minimal")
             for f in ("deneb", "electra", "fulu")}
    n = 0
    for path in era_paths:
        with EraReader(path) as r:
            for slot, data in r.iter_blocks():
                spec = specs[net.fork_name_at_slot(slot)]
                blk = spec.SignedBeaconBlock.decode_bytes(data)
                assert "0x" + blk.message.hash_tree_root().hex() == by_slot[slot]["block_root"]
                assert blk.encode_bytes() == data
                n += 1
            spec = specs[net.fork_name_at_slot(r.state_slot)]
            state = spec.BeaconState.decode_bytes(r.state_ssz())
            assert "0x" + state.hash_tree_root().hex() == by_slot[r.state_slot]["state_root"]
            assert int(state.slot) == r.state_slot
    assert n == sum(1 for s in manifest["slots"] if s["block_root"])


# --------------------------------------------------------------------------------------------
# (c) the verifier, at every level, library and CLI


@needs_verify
@pytest.mark.parametrize("level", ["structure", "roots", "signatures", "chain"])
def test_verify_every_level(level, manifest, net, era_paths):
    from era_tools.verify import verify_archive

    root = bytes.fromhex(manifest["final_state_root"][2:]) if level == "chain" else None
    report = verify_archive([str(DATA)], net, level, trusted_root=root, jobs=1)
    failures = [f.to_dict() for fr in report.files for f in fr.failures]
    assert report.ok, (failures, [f.to_dict() for f in report.failures])
    assert [Path(f.path).name for f in report.files] == [p.name for p in era_paths]
    assert report.blocks == sum(1 for s in manifest["slots"] if s["block_root"])
    for fr in report.files:
        assert fr.checks and all(c["status"] != "failed" for c in fr.checks.values())


@needs_verify
def test_cli_verify_chain_anchored(manifest):
    from era_tools.cli import main

    res = CliRunner().invoke(main, ["verify", "--level", "chain", "--trusted-root",
                                    manifest["final_state_root"], str(DATA) + "/"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    for name in manifest["era_files"]:
        assert f"{DATA}/{name}: OK" in lines
    nblocks = sum(1 for s in manifest["slots"] if s["block_root"])
    assert (f"OK: 4 files, {nblocks} blocks checked at level chain on specchain: 4 ok, 0 failed"
            in lines)


@needs_verify
def test_cli_verify_wrong_trusted_root_fails(manifest):
    from era_tools.cli import main

    wrong = manifest["era_states"][-2]["state_root"]  # a real root, of the wrong state
    res = CliRunner().invoke(main, ["verify", "--level", "chain", "--trusted-root", wrong,
                                    str(DATA)])
    assert res.exit_code == 1, res.output
    lines = res.output.splitlines()
    era3 = manifest["era_files"][3]
    assert (f"{DATA}/{era3}: FAIL chain: state slot 192: state root "
            f"{manifest['final_state_root']} != trusted root {wrong}") in lines, res.output
    nblocks = sum(1 for s in manifest["slots"] if s["block_root"])
    assert (f"FAILED: 4 files, {nblocks} blocks checked at level chain on specchain: "
            "3 ok, 1 failed") in lines


@needs_verify
def test_cli_verify_catches_a_foreign_signature(tmp_path, manifest, by_slot):
    """The first electra block (slot 64) re-signed with slot 65's signature, a valid curve
    point over the wrong message: roots still pass, signatures must not."""
    from era_tools.cli import main

    dst = tmp_path / "chain"
    shutil.copytree(DATA, dst)
    era2 = dst / manifest["era_files"][2]
    blocks = dict(_blocks(era2))
    with EraReader(era2) as r:
        state = r.state_ssz()
    # SignedBeaconBlock = offset of message (4 bytes) | signature (96 bytes) | message
    sig65 = blocks[65][4:100]
    assert sig65 != blocks[64][4:100]
    blocks[64] = blocks[64][:4] + sig65 + blocks[64][100:]
    era2.unlink()
    with EraWriter(dst, "specchain", 2, 64) as w:
        for slot in sorted(blocks):
            w.add_block(slot, ssz=blocks[slot])
        w.set_state(ssz=state)
    assert Path(w.path).name == era2.name

    ok = CliRunner().invoke(main, ["verify", "--level", "roots", "-j", "1", str(dst)])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(main, ["verify", "--level", "signatures", "-j", "1", str(dst)])
    assert bad.exit_code == 1, bad.output
    # The exact failure line, its signing root computed by the spec itself.
    pytest.importorskip("ckzg")
    electra = importlib.import_module("eth_consensus_specs.electra.minimal")
    blk = electra.SignedBeaconBlock.decode_bytes(blocks[64]).message
    st = electra.BeaconState.decode_bytes(state)
    domain = electra.compute_domain(electra.DOMAIN_BEACON_PROPOSER,
                                    electra.config.ELECTRA_FORK_VERSION,
                                    st.genesis_validators_root)
    signing_root = electra.compute_signing_root(blk, domain)
    pubkey = bytes(st.validators[blk.proposer_index].pubkey)
    lines = bad.output.splitlines()
    assert (f"{era2}: FAIL signatures: slot 64: proposer signature does not verify (proposer "
            f"{int(blk.proposer_index)}, pubkey 0x{pubkey.hex()}, signing root "
            f"0x{bytes(signing_root).hex()})") in lines, bad.output
    assert f"FAILED: 4 files, {len(manifest['slots']) - len(manifest['empty_slots'])} blocks " \
        "checked at level signatures on specchain: 3 ok, 1 failed" in lines
    for i in (0, 1, 3):
        assert f"{dst / manifest['era_files'][i]}: OK" in lines


# --------------------------------------------------------------------------------------------
# Regeneration (slow: runs the spec for ~2-3 minutes)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("ERA_TOOLS_SLOW") != "1",
                    reason="regenerating the chain with the spec takes minutes; "
                           "set ERA_TOOLS_SLOW=1")
def test_regenerate_equals_committed(tmp_path, manifest):
    out = tmp_path / "regen"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out),
                           "--seed", str(manifest["seed"])],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    new = [Path(p).name for p in era_files_in([out])]
    assert new == manifest["era_files"]
    for name in new:
        assert contents_equal(str(out / name), str(DATA / name)), name
    for name in ("spec.json", "genesis.json"):
        assert json.loads((out / name).read_text()) == json.loads((DATA / name).read_text())
    regen = json.loads((out / "manifest.json").read_text())
    regen.pop("generator")  # names the spec version; everything else must match
    assert regen == {k: v for k, v in manifest.items() if k != "generator"}
