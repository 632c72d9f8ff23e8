"""`era verify` through click's runner: exit codes and exact lines."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from era_tools.cli import main

ERA3 = "minimal-00003-00fea774.era"


@pytest.fixture
def runner():
    return CliRunner()


def copy(sample_dir, dst, eras):
    for p in sample_dir.glob("*.era"):
        if int(p.name.split("-")[1]) in eras:
            shutil.copy(p, dst / p.name)
    shutil.copy(sample_dir / "spec.json", dst / "spec.json")
    shutil.copy(sample_dir / "genesis.json", dst / "genesis.json")
    return dst


def test_chain_anchored_at_fixture_root(runner, sample_dir, manifest):
    root = next(s for s in manifest["states"] if s["slot"] == 1024)["state_root"]
    res = runner.invoke(main, ["verify", str(sample_dir), "--level", "chain",
                               "--trusted-root", root, "--jobs", "2"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == f"{sample_dir / 'minimal-00000-83431ec7.era'}: OK"
    assert sum(line.endswith(": OK") for line in lines) == 17
    assert lines[-2] == ("OK: 17 files, 889 blocks checked at level chain on minimal: "
                         "17 ok, 0 failed")
    # the anchor is named, and said to match (it was not said at all)
    assert lines[-1] == f"anchor: state root {root} of era 16 (slot 1024) matched"


def test_renamed_file_exits_1_with_the_failure_line(runner, sample_dir, tmp_path):
    copy(sample_dir, tmp_path, (3,))
    bad = tmp_path / "minimal-00003-deadbeef.era"
    (tmp_path / ERA3).rename(bad)
    res = runner.invoke(main, ["verify", str(bad), "--level", "roots", "--jobs", "1"])
    assert res.exit_code == 1
    assert res.stdout.splitlines()[0] == (
        f"{bad}: FAIL roots: file name short root 0xdeadbeef != 0x00fea774 computed from the "
        "state")
    assert res.stdout.splitlines()[-1].startswith("FAILED: 1 files")
    assert "network: minimal" in res.stderr  # inferred from spec.json beside the file


def test_flipped_signature_bit_names_the_slot(runner, sample_dir, tmp_path, network):
    from era_tools.era import EraReader, EraWriter

    with EraReader(sample_dir / ERA3) as r:
        blocks, state = dict(r.iter_blocks()), r.state_ssz()
    slot = sorted(blocks)[4]
    raw = bytearray(blocks[slot])
    raw[60] ^= 0x01
    blocks[slot] = bytes(raw)
    with EraWriter(tmp_path, "minimal", 3, 64, fsync=False) as w:
        for s in sorted(blocks):
            w.add_block(s, ssz=blocks[s])
        w.set_state(ssz=state)
    path = tmp_path / ERA3
    res = runner.invoke(main, ["verify", str(path), "--config", str(sample_dir / "spec.json"),
                               "--jobs", "1"])
    assert res.exit_code == 1
    line = res.stdout.splitlines()[0]
    assert line.startswith(f"{path}: FAIL signatures: slot {slot}: proposer signature does not "
                           "verify (proposer ")
    res = runner.invoke(main, ["verify", str(path), "--level", "roots",
                               "--config", str(sample_dir / "spec.json")])
    assert res.exit_code == 0


def test_other_network_exits_1(runner, sample_dir):
    path = sample_dir / ERA3
    res = runner.invoke(main, ["verify", str(path), "--network", "mainnet", "--jobs", "1"])
    assert res.exit_code == 1
    assert res.stdout.splitlines()[0] == (
        f"{path}: FAIL structure: block index covers 64 slots per era, network mainnet has 8192")


def test_json_report(runner, sample_dir, tmp_path):
    copy(sample_dir, tmp_path, (1, 2, 4))
    res = runner.invoke(main, ["verify", str(tmp_path), "--level", "chain", "--json",
                               "--jobs", "1"])
    assert res.exit_code == 1
    rep = json.loads(res.stdout)
    assert rep["level"] == "chain" and rep["ok"] is False
    assert [f["era"] for f in rep["files"]] == [1, 2, 4]
    assert all(f["ok"] for f in rep["files"])
    assert rep["archive_failures"] == [{"level": "chain", "check": "era_sequence",
                                        "message": "era 3 is missing (gap between era 2 and 4)"}]
    assert rep["files"][1]["checks"]["links"] == {"level": "chain", "status": "ok"}
    assert rep["summary"] == {"files": 3, "ok": 3, "failed": 0, "blocks": 169,
                              "unanchored": [[1, 2], [4, 4]]}  # no anchor given
    assert [f["anchored"] for f in rep["files"]] == [False, False, False]


@pytest.mark.parametrize("args, message", [
    (["--trusted-root", "0x1234", "--level", "chain"],
     "Invalid value for --trusted-root: '0x1234' is not a 32-byte hex root"),
    (["--trusted-root", "0x" + "11" * 32],
     "error: --trusted-root/--trusted-state anchor the chain level: add --level chain"),
])
def test_usage_errors_exit_2(runner, sample_dir, args, message):
    res = runner.invoke(main, ["verify", str(sample_dir / ERA3)] + args)
    assert res.exit_code == 2
    assert message in res.stderr


def test_no_era_files_exit_2(runner, tmp_path):
    res = runner.invoke(main, ["verify", str(tmp_path)])
    assert res.exit_code == 2
    assert "Error: no .era or .era1 files found in the given paths" in res.stderr


def test_bad_trusted_state_exit_2(runner, sample_dir, tmp_path):
    junk = tmp_path / "state.ssz"
    junk.write_bytes(b"\x01" * 10)
    res = runner.invoke(main, ["verify", str(sample_dir / ERA3), "--level", "chain",
                               "--trusted-state", str(junk)])
    assert res.exit_code == 2
    assert res.stderr.splitlines()[-1] == (
        f"error: {junk}: 10 bytes is too short for a BeaconState")


def test_truncated_file_exits_1(runner, sample_dir, tmp_path):
    copy(sample_dir, tmp_path, ())
    p = tmp_path / ERA3
    p.write_bytes((sample_dir / ERA3).read_bytes()[:5000])
    res = runner.invoke(main, ["verify", str(p)])
    assert res.exit_code == 1
    assert res.stdout.splitlines()[0].startswith(f"{p}: FAIL structure: {p}: offset ")


def test_help(runner):
    res = runner.invoke(main, ["verify", "--help"])
    assert res.exit_code == 0 and "--trusted-state" in res.output


def test_a_subdirectory_named_like_an_era_file_is_not_an_era_file(runner, tmp_path):
    (tmp_path / "minimal-00003-00fea774.era").mkdir()
    res = runner.invoke(main, ["verify", "--network", "minimal", str(tmp_path)])
    assert res.exit_code == 2  # was exit 0, "OK: 0 files" (the directory was expanded twice)
    assert "no .era or .era1 files found in the given paths" in res.stderr


def test_jobs_is_bounded_like_the_other_commands(runner, sample_dir):
    res = runner.invoke(main, ["verify", "--jobs", "100000", str(sample_dir)])
    assert res.exit_code == 2  # was accepted: one file forks a pool of that many processes
    assert "Invalid value for '--jobs' / '-j': 100000 is not in the range 1<=x<=256." \
        in res.stderr


def test_eras_past_the_trusted_state_are_reported_unanchored(runner, sample_dir, tmp_path,
                                                             fixture_dir):
    # the state at slot 640 holds the roots of eras 1..10: eras 11 and 12 are beyond it
    copy(sample_dir, tmp_path, range(8, 13))
    state = str(fixture_dir / "states" / "640.ssz")
    args = ["verify", str(tmp_path), "--level", "chain", "--trusted-state", state, "-j", "1"]
    res = runner.invoke(main, args + ["--json"])
    assert res.exit_code == 0, res.output  # consistent files, only not all anchored
    rep = json.loads(res.stdout)
    assert [(f["era"], f["anchored"]) for f in rep["files"]] == [
        (8, True), (9, True), (10, True), (11, False), (12, False)]
    assert rep["summary"]["unanchored"] == [[11, 12]]
    assert rep["anchor"]["kind"] == "trusted_state" and rep["anchor"]["covers_eras"] == [1, 10]
    res = runner.invoke(main, args)  # was "OK: ... 5 ok, 0 failed" and no word of it
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert ("note: eras 11..12 not anchored: the trusted state (slot 640) covers eras 1..10; "
            "only their links to each other were checked") in lines
    assert ("OK: 5 files, 278 blocks checked at level chain on minimal: 5 ok, 0 failed, "
            "2 unanchored") in lines


def test_trusted_root_may_be_a_block_root(runner, sample_dir, tmp_path, manifest):
    # The newest era's state (slot 1024) is what --trusted-root used to need; a node readily
    # gives a block root instead.  The last block of era 16 is at slot 1023; slot 960 (era
    # 15's state slot) is empty, so the walk down to an era boundary stops at slot 896.
    copy(sample_dir, tmp_path, range(13, 17))
    block = next(b for b in manifest["blocks"] if b["slot"] == 1023)["root"]
    res = runner.invoke(main, ["verify", str(tmp_path), "--level", "chain", "--trusted-root",
                               block, "-j", "1"])
    assert res.exit_code == 0, res.output  # was 1: "state root ... != trusted root"
    lines = res.stdout.splitlines()
    assert lines[-1] == (f"anchor: block root {block} at slot 1023 matched; through the block "
                         "at slot 896 it anchors the era 14 state")
    assert ("note: eras 15..16 not anchored: the trusted block root anchors the blocks up to "
            "slot 1023 and the era states up to era 14, not the state of these eras") in lines
    res = runner.invoke(main, ["verify", str(tmp_path), "--level", "chain", "--trusted-root",
                               block, "-j", "1", "--json"])
    rep = json.loads(res.stdout)
    assert rep["anchor"] == {"kind": "block_root", "root": block, "slot": 1023, "era": 16,
                             "path": str(next(tmp_path.glob("minimal-00016-*.era"))),
                             "matched": True, "state_era": 14, "state_slot": 896}
    assert rep["summary"]["unanchored"] == [[15, 16]]


def test_trusted_root_of_a_later_trusted_state(runner, sample_dir, tmp_path, fixture_dir,
                                               manifest):
    # eras 9..10, anchored by a state after them (slot 1024) whose root the user trusts
    copy(sample_dir, tmp_path, (9, 10))
    root = next(s for s in manifest["states"] if s["slot"] == 1024)["state_root"]
    res = runner.invoke(main, ["verify", str(tmp_path), "--level", "chain", "--trusted-root",
                               root, "--trusted-state", str(fixture_dir / "states" / "1024.ssz"),
                               "-j", "1"])
    assert res.exit_code == 0, res.output  # was 1: era 10's state root != the trusted root
    assert res.stdout.splitlines()[-1] == (
        f"anchor: trusted state at slot 1024 (state root {root}, matched --trusted-root): its "
        "historical roots matched")
