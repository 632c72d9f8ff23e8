"""`era info` and `era extract` on the sample eras, checked against the fixture manifest."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from era_tools import ssz
from era_tools.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_info_json_matches_the_fixture(sample_files, manifest):
    res = run("info", "--json", *sample_files)
    assert res.exit_code == 0, res.output
    infos = json.loads(res.stdout)
    states = {s["slot"]: s for s in manifest["states"]}
    blocks = manifest["blocks"]
    assert [d["era"] for d in infos] == list(range(17))
    for d in infos:
        assert d["name_ok"] and d["name_era_ok"]
        assert d["state_root"] == states[d["state_slot"]]["state_root"]
        assert d["state_slot"] == 64 * d["era"]
        assert d["unknown_records"] == []
        if d["era"] == 0:
            assert d["blocks"] == 0 and d["start_slot"] is None
            continue
        lo, hi = d["start_slot"], d["end_slot"]
        assert (lo, hi) == (64 * (d["era"] - 1), 64 * d["era"] - 1)
        in_era = [b for b in blocks if lo <= b["slot"] <= hi]
        assert d["blocks"] == sum(1 for b in in_era if b["file"])
        assert d["empty_slots"] == sum(1 for b in in_era if not b["file"])
        assert d["forks"] == sorted({b["fork"] for b in in_era} | {states[d["state_slot"]]["fork"]},
                                    key=["phase0", "altair", "bellatrix", "capella"].index)
        assert d["records"]["CompressedSignedBeaconBlock"]["count"] == d["blocks"]
    assert infos[1]["forks"] == ["phase0", "altair", "bellatrix", "capella"]


def test_info_text_and_network_note(sample_files):
    res = run("info", sample_files[1])
    assert res.exit_code == 0
    assert "name check: OK" in res.stdout
    assert "slots        0..63   blocks 56, empty 8" in res.stdout
    assert res.stderr.startswith("network: minimal (config ")


def test_info_reports_unknown_records_and_name_mismatch(tmp_path, sample_files):
    from era_tools import e2store

    from era_tools.era import EraReader, EraWriter

    out = tmp_path / "w"
    with EraReader(sample_files[2]) as r:
        w = EraWriter(out, "minimal", r.era, 64)
        for slot, framed in r.iter_blocks_framed():
            w.add_block(slot, framed=framed)
        w.set_state(framed=r.state_framed())
        w._write(e2store.encode_record(b"\x42\x42", b"hello"))  # state | other* | indices
        path = w.finish()
    (out / "spec.json").write_bytes((sample_files[0].parent / "spec.json").read_bytes())
    (out / "genesis.json").write_bytes((sample_files[0].parent / "genesis.json").read_bytes())
    res = run("info", "--json", path)
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["unknown_records"] == [{"type": "0x4242", "offset": d["unknown_records"][0]["offset"],
                                     "length": 5}]
    renamed = out / "minimal-00002-00000000.era"
    (out / path.split("/")[-1]).rename(renamed)
    res = run("info", renamed)
    assert res.exit_code == 1
    assert f"MISMATCH (state says {sample_files[2].name})" in res.stdout


def test_extract_block_json_is_beacon_api_encoding(sample_files, manifest, network):
    res = run("extract", sample_files[2], "--slot", 70)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    rec = next(b for b in manifest["blocks"] if b["slot"] == 70)
    assert doc["version"] == rec["fork"]
    msg = doc["data"]["message"]
    assert msg["slot"] == "70" and msg["proposer_index"] == str(rec["proposer_index"])
    assert msg["parent_root"] == rec["parent_root"]
    blk = ssz.json.from_json(doc["data"], ssz.types_for(rec["fork"], "minimal").SignedBeaconBlock)
    assert "0x" + ssz.block_root(blk).hex() == rec["root"]


def test_extract_ssz_is_the_exact_bytes(tmp_path, sample_files, fixture_dir):
    out = tmp_path / "b.ssz"
    res = run("extract", sample_files[2], "--slot", 70, "--format", "ssz", "-o", out)
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == (fixture_dir / "blocks/70.ssz").read_bytes()
    out = tmp_path / "s.ssz"
    res = run("extract", sample_files[2], "--state", "--format", "ssz", "-o", out)
    assert res.exit_code == 0
    assert out.read_bytes() == (fixture_dir / "states/128.ssz").read_bytes()


def test_extract_state_json(sample_files, manifest):
    res = run("extract", sample_files[16], "--state")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert doc["version"] == "capella" and doc["data"]["slot"] == "1024"
    assert doc["data"]["genesis_validators_root"] == manifest["genesis_validators_root"]


@pytest.mark.parametrize("args, code, line", [
    (["--slot", "14"], 1, "slot 14 is empty (no block)"),
    (["--slot", "500"], 2, "slot 500 is not in this era (blocks 0..63)"),
    ([], 2, "give exactly one of --slot S or --state"),
])
def test_extract_errors(sample_files, args, code, line):
    res = run("extract", sample_files[1], *args)
    assert res.exit_code == code
    assert line in res.stderr
    assert "Traceback" not in res.output


def test_extract_under_the_wrong_network_names_file_and_slot(sample_files):
    # --network minimal has the built-in minimal fork schedule: slot 130 is phase0 there.
    # The state's fork version says so before anything is decoded (was an SSZ error).
    f = sample_files[3]
    for args in (["--slot", 130], ["--state"]):
        res = run("extract", "--network", "minimal", f, *args)
        assert res.exit_code == 2
        assert res.stderr == (f"error: {f}: the state's fork version 0x03000001 is not "
                              "scheduled by network 'minimal' at epoch 24; wrong --network?\n")
