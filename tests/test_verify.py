"""era verify, library level: every level passes on sample_eras/, and tampered copies (built with
EraWriter from the sample files) fail at the right level, naming the right slot."""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
from pathlib import Path

import pytest

from era_tools import bls, ssz
from era_tools.era import EraReader, EraWriter
from era_tools.verify import (LEVELS, field_range, load_trusted_state, state_root,
                              validator_pubkeys, verify_archive, verify_file)

ERA3 = "minimal-00003-00fea774.era"
ERA4 = "minimal-00004-2cfc1198.era"


@pytest.fixture(scope="session")
def trusted_root(manifest) -> bytes:
    st = next(s for s in manifest["states"] if s["slot"] == 1024)
    return bytes.fromhex(st["state_root"][2:])


def read_era(path):
    with EraReader(path) as r:
        return r.era, dict(r.iter_blocks()), r.state_ssz()


def write_era(out_dir, era, blocks: dict, state: bytes, name: str | None = None) -> Path:
    """Write an era with EraWriter; with `name`, rename the result (to keep a stale name)."""
    tmp = Path(out_dir) / "_w"
    with EraWriter(tmp, "minimal", era, 64, fsync=False) as w:
        for slot in sorted(blocks):
            w.add_block(slot, ssz=blocks[slot])
        w.set_state(ssz=state)
        path = w.finish()
    final = Path(out_dir) / (name or os.path.basename(path))
    os.replace(path, final)
    shutil.rmtree(tmp)
    return final


def failures(report, level=None):
    return [f for f in report.failures if level is None or f.level == level]


def assert_fails_at(path, network, level, check, slot=None):
    """Fails at `level` (with `check`, naming `slot`) and passes every level below it."""
    i = LEVELS.index(level)
    for lower in LEVELS[:i]:
        r = verify_file(path, network, lower)
        assert r.ok, (lower, r.line())
    r = verify_file(path, network, level)
    assert not r.ok
    first = r.first_failure()
    assert first.level == level, r.line()
    assert first.check == check, r.line()
    if slot is not None:
        assert first.slot == slot, r.line()
        assert f"slot {slot}" in first.message
    return r


# --------------------------------------------------------------------------------------------
# Good files


@pytest.mark.parametrize("level", LEVELS)
def test_every_level_passes_on_sample_eras(sample_dir, network, trusted_root, level):
    rep = verify_archive([sample_dir], network, level, jobs=1,
                         trusted_root=trusted_root if level == "chain" else None)
    assert rep.ok, [f.line() for f in rep.files if not f.ok] + [x.message for x in rep.failures]
    assert len(rep.files) == 17
    assert rep.blocks == 889
    assert all(f.checks for f in rep.files)
    if level == "chain":
        newest = rep.files[-1]
        assert newest.era == 16 and newest.checks["anchor"]["status"] == "ok"
        assert sum("links" in f.checks for f in rep.files) == 16


def copy_eras(sample_dir, dst, eras) -> Path:
    for p in sample_dir.glob("*.era"):
        if int(p.name.split("-")[1]) in eras:
            shutil.copy(p, dst / p.name)
    return dst


def test_chain_with_trusted_state(sample_dir, network, fixture_dir, trusted_root, tmp_path):
    data = (fixture_dir / "states" / "1024.ssz").read_bytes()
    t = load_trusted_state(data, network)
    assert t.root == trusted_root and t.covered_eras == 16
    copy_eras(sample_dir, tmp_path, range(12, 17))
    rep = verify_archive([tmp_path], network, "chain", jobs=1, trusted_state=t)
    assert rep.ok, [f.line() for f in rep.files if not f.ok]
    checked = [f for f in rep.files if f.checks.get("historical_roots", {}).get("status") == "ok"]
    assert len(checked) == 5
    assert rep.files[-1].checks["anchor"]["detail"] == "trusted state"


def test_state_root_and_field_range_match_decoded_state(sample_dir, network):
    path = sample_dir / "minimal-00016-c13b6bfc.era"
    with EraReader(path) as r:
        data = r.state_ssz()
        obj = r.state(network)
    fork = network.fork_name_at_slot(1024)
    assert state_root(data, fork, "minimal") == ssz.hash_tree_root(obj)
    cls = ssz.types_for(fork, "minimal").BeaconState
    a, b = field_range(cls, data, "validators")
    assert (b - a) == 121 * len(obj.validators)
    pks = validator_pubkeys(data, fork, "minimal")
    assert [bytes(p) for p in pks] == [bytes(v.pubkey) for v in obj.validators]
    a, b = field_range(cls, data, "slot")
    assert int.from_bytes(data[a:b], "little") == 1024


# --------------------------------------------------------------------------------------------
# Tampering


def test_block_replaced_by_another_slots_block(sample_dir, network, tmp_path):
    era, blocks, state = read_era(sample_dir / ERA3)
    slots = sorted(blocks)
    victim, donor = slots[10], slots[11]
    blocks[victim] = blocks[donor]
    path = write_era(tmp_path, era, blocks, state, ERA3)
    r = assert_fails_at(path, network, "structure", "block_slots", victim)
    assert r.first_failure().expected == str(victim)
    assert r.first_failure().actual == str(donor)


def _mutated(blocks, slot, network, resign_key=None):
    fork = network.fork_name_at_slot(slot)
    blk = ssz.decode_block(blocks[slot], fork, "minimal")
    body = blk.message.body.copy(graffiti=b"\x42" * 32)
    msg = blk.message.copy(body=body)
    sig = bytes(blk.signature)
    if resign_key is not None:
        sig = bls.sign(resign_key, os.urandom(32))
    return ssz.encode(blk.copy(message=msg, signature=sig))


@pytest.mark.parametrize("resign", [False, True], ids=["unsigned", "resigned-random-key"])
def test_block_from_a_different_chain(sample_dir, network, tmp_path, resign):
    era, blocks, state = read_era(sample_dir / ERA3)
    slot = sorted(blocks)[20]
    key = random.SystemRandom().randrange(1, bls.CURVE_ORDER) if resign else None
    blocks[slot] = _mutated(blocks, slot, network, key)
    path = write_era(tmp_path, era, blocks, state, ERA3)
    assert_fails_at(path, network, "roots", "block_roots", slot)
    r = verify_file(path, network, "signatures")
    assert {f.slot for f in failures(r, "signatures")} == {slot}


def test_flipped_signature_bit(sample_dir, network, tmp_path):
    era, blocks, state = read_era(sample_dir / ERA3)
    slot = sorted(blocks)[5]
    raw = bytearray(blocks[slot])
    raw[4 + 50] ^= 0x04  # inside the 96-byte signature that follows the 4-byte offset
    blocks[slot] = bytes(raw)
    path = write_era(tmp_path, era, blocks, state, ERA3)
    r = assert_fails_at(path, network, "signatures", "proposer_signatures", slot)
    assert len(failures(r)) == 1


def test_block_roots_entry_changed_in_state(sample_dir, network, tmp_path):
    era, blocks, state = read_era(sample_dir / ERA3)
    slot = sorted(blocks)[7]
    i = 176 + 32 * (slot % 64)
    state = state[:i] + bytes(32 - 1) + b"\x01" + state[i + 32:]
    path = write_era(tmp_path, era, blocks, state, ERA3)  # keeps the now stale name
    r = assert_fails_at(path, network, "roots", "block_roots", slot)
    checks = {f.check for f in failures(r)}
    assert "file_name" in checks
    name_fail = next(f for f in r.failures if f.check == "file_name")
    assert name_fail.actual == "0x00fea774"


def test_missing_block_whose_root_is_still_in_the_state(sample_dir, network, tmp_path):
    era, blocks, state = read_era(sample_dir / ERA3)
    slot = sorted(blocks)[15]
    del blocks[slot]
    path = write_era(tmp_path, era, blocks, state, ERA3)
    r = assert_fails_at(path, network, "roots", "empty_slots", slot)
    assert "a block is missing" in r.first_failure().message


def test_missing_first_block_needs_previous_era(sample_dir, network, tmp_path):
    era, blocks, state = read_era(sample_dir / ERA4)
    first = 3 * 64
    assert first in blocks
    del blocks[first]
    path = write_era(tmp_path, era, blocks, state, ERA4)
    alone = verify_archive([path], network, "roots", jobs=1)
    assert alone.ok  # the first slot cannot be checked without era 3
    shutil.copy(sample_dir / ERA3, tmp_path / ERA3)
    both = verify_archive([tmp_path / ERA3, path], network, "roots", jobs=1)
    bad = [f for f in both.files if not f.ok]
    assert [f.era for f in bad] == [4]
    assert bad[0].first_failure().check == "empty_slots"
    assert bad[0].first_failure().slot == first


def test_two_eras_swapped(sample_dir, network, tmp_path):
    shutil.copy(sample_dir / ERA3, tmp_path / ERA4)
    shutil.copy(sample_dir / ERA4, tmp_path / ERA3)
    rep = verify_archive([tmp_path], network, "roots", jobs=1)
    assert not rep.ok
    for f in rep.files:
        first = f.first_failure()
        assert (first.level, first.check) == ("roots", "file_name")
    assert verify_archive([tmp_path], network, "structure", jobs=1).ok


def test_renamed_file(sample_dir, network, tmp_path):
    path = tmp_path / "minimal-00003-deadbeef.era"
    shutil.copy(sample_dir / ERA3, path)
    r = assert_fails_at(path, network, "roots", "file_name")
    assert r.first_failure().message == ("file name short root 0xdeadbeef != 0x00fea774 "
                                         "computed from the state")


def test_file_from_another_network(sample_dir, network):
    from era_tools.config import get_network

    r = verify_file(sample_dir / ERA3, get_network("mainnet"), "structure")
    assert r.first_failure().level == "structure"
    other = dataclasses.replace(network, genesis_validators_root=b"\x11" * 32)
    r = assert_fails_at(sample_dir / ERA3, other, "roots", "network")
    assert r.first_failure().expected == "0x" + "11" * 32


def test_other_network_signatures_fail_even_without_known_gvr(sample_dir, network):
    # A network whose genesis_validators_root is unknown cannot catch the file at the roots
    # level by the gvr, but another fork version changes every signing domain.
    forks = tuple(dataclasses.replace(f, version=bytes([f.version[0], 9, 9, 9]))
                  for f in network.forks)
    other = dataclasses.replace(network, forks=forks, genesis_validators_root=None)
    r = verify_file(sample_dir / ERA3, other, "signatures")
    assert r.first_failure().check == "network"  # the state's fork version is not this one


# --------------------------------------------------------------------------------------------
# Chain


def test_forged_state_roots_pass_roots_but_fail_chain(sample_dir, network, tmp_path,
                                                      trusted_root, fixture_dir):
    copy_eras(sample_dir, tmp_path, range(4, 8))
    victim = next(tmp_path.glob("minimal-00005-*.era"))
    era, blocks, state = read_era(victim)
    i = 176 + 32 * 64 + 32 * 3  # state_roots[3]
    state = state[:i] + b"\x07" * 32 + state[i + 32:]
    victim.unlink()
    forged = write_era(tmp_path, era, blocks, state)  # named consistently from its state
    assert verify_file(forged, network, "signatures").ok
    rep = verify_archive([tmp_path], network, "chain", jobs=1)
    bad = {f.era: f for f in rep.files if not f.ok}
    assert set(bad) == {6}
    assert bad[6].first_failure().check == "links"
    t = load_trusted_state((fixture_dir / "states" / "1024.ssz").read_bytes(), network)
    rep = verify_archive([tmp_path], network, "chain", jobs=1, trusted_state=t)
    bad = {f.era: f for f in rep.files if not f.ok}
    assert set(bad) == {5, 6}
    assert bad[5].first_failure().check == "historical_roots"


def test_wrong_trusted_root(sample_dir, network, tmp_path):
    copy_eras(sample_dir, tmp_path, (15, 16))
    rep = verify_archive([tmp_path], network, "chain", jobs=1, trusted_root=b"\x01" * 32)
    bad = [f for f in rep.files if not f.ok]
    assert [f.era for f in bad] == [16]
    assert bad[0].first_failure().check == "anchor"


def test_gap_and_duplicate_era(sample_dir, network, tmp_path):
    copy_eras(sample_dir, tmp_path, (0, 1, 3, 4))
    rep = verify_archive([tmp_path], network, "chain", jobs=1)
    assert [f.message for f in rep.failures] == ["era 2 is missing (gap between era 1 and 3)"]
    assert rep.notes and "not anchored" in rep.notes[0]
    dup = tmp_path / "other"
    dup.mkdir()
    era, blocks, state = read_era(sample_dir / ERA4)
    blocks.pop(sorted(blocks)[3])
    write_era(dup, era, blocks, state, "minimal-00004-00000000.era")
    rep = verify_archive([tmp_path, dup], network, "chain", jobs=1)
    dups = [f for f in rep.files if any(x.check == "era_sequence" for x in f.failures)]
    assert sorted(f.era for f in dups) == [4, 4]


def test_parallel_jobs_give_the_same_report(sample_dir, network, tmp_path):
    copy_eras(sample_dir, tmp_path, (2, 3, 4))
    bad = tmp_path / "minimal-00003-deadbeef.era"
    os.replace(tmp_path / ERA3, bad)
    seen = []
    rep = verify_archive([tmp_path], network, "signatures", jobs=2, progress=seen.append)
    lines = [f.line() for f in rep.files]
    assert lines == [f.line() for f in verify_archive([tmp_path], network, "signatures",
                                                        jobs=1).files]
    assert sum(seen) == rep.blocks
    assert sum(not f.ok for f in rep.files) == 1


def test_truncated_and_garbage_files_fail_structure(sample_dir, network, tmp_path):
    data = (sample_dir / ERA3).read_bytes()
    p = tmp_path / ERA3
    p.write_bytes(data[:len(data) // 2])
    r = verify_file(p, network, "structure")
    assert r.first_failure().level == "structure"
    p.write_bytes(b"\x00" * 100)
    r = verify_file(p, network, "signatures")
    assert r.first_failure().level == "structure"


@pytest.mark.parametrize("level", ["structure", "signatures"])
def test_one_file_with_a_pool_hashes_blocks_in_workers(sample_dir, network, tmp_path,
                                                       monkeypatch, level):
    """One file, jobs=2: block decoding/hashing goes to the pool in chunks (each worker reads
    its slots from the file itself); the report is the one computed in-process, failures and
    all, and progress still counts every block."""
    import era_tools.verify as verify_mod

    era, blocks, state = read_era(sample_dir / ERA3)
    slots = sorted(blocks)
    raw = bytearray(blocks[slots[5]])
    raw[4 + 50] ^= 0x04  # bad signature
    blocks[slots[5]] = bytes(raw)
    blocks[slots[30]] = _mutated(blocks, slots[30], network)  # wrong root
    blocks[slots[40]] = blocks[slots[40]][:150]  # does not decode
    path = write_era(tmp_path, era, blocks, state, ERA3)
    want = verify_file(path, network, level)  # in-process, no pool
    monkeypatch.setattr(verify_mod, "FACTS_CHUNK", 8)  # the 64-slot era gets 8 worker tasks
    submitted = []
    seen = []
    with verify_mod.cf.ProcessPoolExecutor(2, mp_context=verify_mod._mp_context()) as pool:
        real_submit = pool.submit

        def submit(fn, *args):
            submitted.append(fn.__name__)
            return real_submit(fn, *args)

        pool.submit = submit
        got = verify_file(path, network, level, progress=seen.append, bls_pool=pool)
    assert submitted.count("_facts_task") == -(-len(slots) // 8)
    assert [f.to_dict() for f in got.failures] == [f.to_dict() for f in want.failures]
    assert got.checks == want.checks
    assert sum(seen) == len(slots)
    failed = {(f.level, f.check, f.slot) for f in got.failures}
    assert ("structure", "blocks_decode", slots[40]) in failed
    if level == "signatures":
        assert ("roots", "block_roots", slots[30]) in failed
        assert ("signatures", "proposer_signatures", slots[5]) in failed


def test_worker_reopens_a_replaced_file(sample_dir, network, tmp_path):
    """A pool worker keeps its era file open between chunks, but not across a replaced file."""
    import era_tools.verify as verify_mod

    path = tmp_path / ERA3
    shutil.copy(sample_dir / ERA3, path)
    with EraReader(path) as r:
        slots = r.block_slots()
    try:
        first = verify_mod._facts_task(str(path), network, slots[:4])
        era, blocks, state = read_era(path)
        blocks[slots[0]] = blocks[slots[1]]
        os.remove(path)
        write_era(tmp_path, era, blocks, state, ERA3)
        again = verify_mod._facts_task(str(path), network, slots[:4])
    finally:  # this process is not a pool worker: close what the task kept open
        if verify_mod._worker_reader is not None:
            verify_mod._worker_reader[1].close()
            verify_mod._worker_reader = None
    assert first[0][4] != again[0][4] and again[0][4] == first[1][4]
    assert again[0][2] == slots[1]  # the donor block's own slot


def test_a_gap_of_several_eras_is_one_failure(sample_dir, network, tmp_path):
    copy_eras(sample_dir, tmp_path, (1, 4))
    rep = verify_archive([tmp_path], network, "chain", jobs=1)
    # was one failure per missing era (and a scan of every era for each)
    assert [f.message for f in rep.failures] == ["eras 2..3 are missing (gap between era 1 "
                                                 "and 4)"]
