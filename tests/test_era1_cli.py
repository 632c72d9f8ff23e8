"""`era info` and `era verify` on era1 files (written by tests/era1_builder.py), alone, in
directories, across files (--level chain) and beside consensus-layer era files."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from click.testing import CliRunner

import era1_builder as B
from era_tools.cli import main

EPOCH = B.EPOCH_SIZE
SAMPLES = os.path.join(os.path.dirname(__file__), "..", "sample_eras")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def chains():
    """Two consecutive epochs (3 and 4) that link: epoch 4's first parent is epoch 3's last."""
    a = B.make_chain(20, start=3 * EPOCH, seed=1)
    b = B.make_chain(20, start=4 * EPOCH, seed=2, start_td=a[-1].td, parent=a[-1].hash)
    return a, b


def test_info_era1(tmp_path, chains):
    path = B.write_era1(tmp_path, chains[0])
    r = run("info", path)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == os.path.basename(path)
    assert lines[1].split() == ["epoch", "3", "name", "check:", "OK"]
    assert lines[2].split()[:2] == ["blocks", f"{3 * EPOCH}..{3 * EPOCH + 19}"]
    assert f"0x{B.accumulator_root(chains[0]).hex()}" in r.output
    d = json.loads(run("info", path, "--json").output)
    assert (d["kind"], d["epoch"], d["blocks"], d["name_ok"]) == ("era1", 3, 20, True)
    assert d["total_difficulty"] == [str(chains[0][0].td), str(chains[0][-1].td)]


def test_info_era1_renamed_exits_1(tmp_path, chains):
    path = B.write_era1(tmp_path, chains[0], name="mainnet-00003-00000000.era1")
    r = run("info", path)
    assert r.exit_code == 1
    want = B.file_name("mainnet", 3 * EPOCH, B.accumulator_root(chains[0]))
    assert f"name check: MISMATCH (contents say {want})" in r.output


def test_verify_era1_directory_every_level(tmp_path, chains):
    for c in chains:
        B.write_era1(tmp_path, c)
    for level in ("structure", "roots", "signatures", "chain"):
        r = run("verify", tmp_path, "--level", level)
        assert r.exit_code == 0, r.output
        assert r.output.splitlines()[-1] == (
            f"OK: 2 files, 40 blocks checked at level {level} on mainnet: 2 ok, 0 failed")
    d = json.loads(run("verify", tmp_path, "--level", "chain", "--json").output)
    assert [f["kind"] for f in d["files"]] == ["era1", "era1"]
    assert set(d["files"][1]["checks"]) >= {"era1_structure", "header_chain", "total_difficulty",
                                            "accumulator", "file_name", "era1_links"}
    assert "no proposer signatures" in " ".join(d["notes"])


def test_verify_era1_chain_level_finds_an_unlinked_file(tmp_path, chains):
    a, _ = chains
    B.write_era1(tmp_path, a)
    other = B.write_era1(tmp_path, B.make_chain(20, start=4 * EPOCH, seed=3))
    r = run("verify", tmp_path, "--level", "roots")
    assert r.exit_code == 0, r.output  # each file is fine on its own
    r = run("verify", tmp_path, "--level", "chain")
    assert r.exit_code == 1
    line = next(x for x in r.output.splitlines() if x.startswith(other))
    assert line.startswith(f"{other}: FAIL chain: block {4 * EPOCH}: parent_hash 0x")
    assert line.endswith(f"!= hash 0x{a[-1].hash.hex()} of the last header of "
                         f"{os.path.join(tmp_path, B.file_name('mainnet', 3 * EPOCH, B.accumulator_root(a)))}")


def test_verify_era1_gap_and_duplicate(tmp_path, chains):
    a, b = chains
    B.write_era1(tmp_path, a)
    c = B.make_chain(20, start=5 * EPOCH, seed=4, start_td=b[-1].td, parent=b[-1].hash)
    B.write_era1(tmp_path, c)
    r = run("verify", tmp_path, "--level", "chain")
    assert r.exit_code == 1
    assert "archive: FAIL chain: era1 epochs missing between 3 and 5: 4" in r.output
    dup = tmp_path / "dup"
    dup.mkdir()
    B.write_era1(dup, a)
    B.write_era1(dup, B.make_chain(20, start=3 * EPOCH, seed=9))
    r = run("verify", dup, "--level", "chain")
    assert r.exit_code == 1
    assert "FAIL chain: epoch 3: 2 era1 files" in r.output


def test_verify_era1_corrupt_header_names_the_block(tmp_path, chains):
    a = chains[0]
    bad = B.write_era1(tmp_path, a, header_payload={7: b"\xc0garbage"})
    r = run("verify", bad)
    assert r.exit_code == 1
    line = r.output.splitlines()[0]
    assert line.startswith(f"{bad}: FAIL structure: ") and "block" in line


def test_verify_era1_refuses_trusted_anchors(tmp_path, chains):
    path = B.write_era1(tmp_path, chains[0])
    r = run("verify", path, "--level", "chain", "--trusted-root", "0x" + "11" * 32)
    assert r.exit_code == 2
    assert "only .era1 files were given" in r.output


def test_verify_era1_beside_era_files(tmp_path, chains):
    """A directory with the sample consensus eras and one era1 file: both kinds verified, the
    network inferred from the era files, the era1 file kept out of the era links."""
    d = tmp_path / "mixed"
    shutil.copytree(SAMPLES, d)
    B.write_era1(d, chains[0])
    n_era = len([x for x in os.listdir(d) if x.endswith(".era")])
    r = run("verify", d, "--level", "chain")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[-1].startswith(
        f"OK: {n_era + 1} files, ")
    assert " on minimal: " in r.output.splitlines()[-1]
