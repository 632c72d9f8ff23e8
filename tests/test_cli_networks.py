"""Store commands take --network/--config too: they must match the network the store holds."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from era_tools.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_store_commands_check_the_expected_network(tmp_path, sample_files, sample_dir):
    db = tmp_path / "db"
    res = run("frontfill", "--db", db, *sample_files[:4])
    assert res.exit_code == 0, res.output
    ok = run("status", "--db", db, "--config", sample_dir / "spec.json", "--json")
    assert ok.exit_code == 0, ok.output
    for cmd in (["status", "--db", db], ["export", "--db", db, "--out", tmp_path / "out"],
                ["backfill", "--db", db, "--peer", "http://127.0.0.1:9"]):
        res = run(*cmd, "--network", "mainnet")
        assert res.exit_code == 2, (cmd, res.output)
        assert res.stderr.startswith(f"error: {db}: the store holds network minimal"), res.stderr
    assert not (tmp_path / "out").exists()


def test_network_inferred_from_names_is_checked_against_the_state(tmp_path, sample_files):
    # A minimal-chain era file renamed as if it were mainnet's, with no config beside it.
    fake = tmp_path / "mainnet-00002-c3ec0173.era"
    fake.write_bytes(sample_files[2].read_bytes())
    res = run("info", fake)
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines()[-1] == (
        "error: file names say mainnet, but the era state's genesis_validators_root is "
        "0x83431ec7fcf92cfc44947fc0418e831c25e1d0806590231c439830db7ad54fda, not mainnet's; "
        "pass --network or --config")


def test_network_inferred_from_the_state_root(tmp_path, sample_files):
    from era_tools.cli.common import pick_network
    from era_tools.config import get_network
    from era_tools.era import EraReader, EraWriter

    # The genesis era with its state's genesis_validators_root set to sepolia's.
    with EraReader(sample_files[0]) as r:
        state = bytearray(r.state_ssz())
    state[8:40] = get_network("sepolia").genesis_validators_root
    with EraWriter(tmp_path, "devnet", 0, 64) as w:
        w.set_state(ssz=bytes(state))
    assert pick_network(None, None, [tmp_path], quiet=True).name == "sepolia"
    # an unknown root and an unknown name: a clear error
    unknown = tmp_path / "other"
    unknown.mkdir()
    (unknown / "devnet-00000-83431ec7.era").write_bytes(sample_files[0].read_bytes())
    res = run("info", unknown)
    assert res.exit_code == 2
    assert "cannot infer the network from the file names or the era state's " \
           "genesis_validators_root: pass --network NAME or --config FILE" in res.stderr


def test_an_unreadable_file_is_named_when_the_network_cannot_be_inferred(tmp_path):
    (tmp_path / "notes.era").write_bytes(b"hello\n")
    res = run("info", tmp_path / "notes.era")
    assert res.exit_code == 2
    # the file's own error is the cause (a "network cannot be inferred" hint named the wrong one)
    assert res.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'notes.era'}: offset 0: file of 6 bytes is too short")


def test_a_truncated_file_fails_verify_with_one_exit_code_whatever_the_network(tmp_path,
                                                                                sample_files):
    # era verify: a malformed file is a verification failure (1) with or without --network
    # (it was 2 without: the network could not be inferred); other commands: bad input (2)
    p = tmp_path / sample_files[3].name
    p.write_bytes(sample_files[3].read_bytes()[:5000])
    for flags in ([], ["--network", "minimal"]):
        res = run("verify", p, *flags)
        assert res.exit_code == 1, (flags, res.output)
        lines = res.stdout.splitlines()
        assert lines[0].startswith(f"{p}: FAIL structure: {p}: offset "), lines
        assert lines[-1].startswith("FAILED: 1 files, 0 blocks checked")
    res = run("info", p)
    assert res.exit_code == 2
    assert "cannot be inferred" not in res.stderr


def test_a_file_of_another_fork_schedule_is_named_with_the_likely_cause(sample_files):
    # `minimal` is the spec's config, no fork after phase0: the samples' chain (capella by
    # era 2) is not it.  Was an SSZ offset error (without the file name, for info).
    era2 = sample_files[2]
    why = (f"{era2}: the state's fork version 0x03000001 is not scheduled by network "
           "'minimal' at epoch 16; wrong --network?")
    for cmd in (["info", era2], ["extract", era2, "--slot", "70"]):
        res = run(*cmd, "--network", "minimal")
        assert res.exit_code == 2, (cmd, res.output)
        assert res.stderr.strip().splitlines()[-1] == f"error: {why}"
    res = run("verify", era2, "--network", "minimal", "-j", "1")
    assert res.exit_code == 1
    assert res.stdout.splitlines() == [
        f"{era2}: FAIL structure: {why[len(f'{era2}: '):]}",
        "FAILED: 1 files, 0 blocks checked at level signatures on minimal: 0 ok, 1 failed"]


def _spec_dir(tmp_path, sample_dir, **changes):
    spec = json.loads((sample_dir / "spec.json").read_text())
    spec.get("data", spec).update(changes)
    d = tmp_path / "cfg"
    d.mkdir()
    (d / "spec.json").write_text(json.dumps(spec))
    return d


def test_a_config_value_that_is_not_an_integer_names_the_file(tmp_path, sample_dir,
                                                              sample_files):
    d = _spec_dir(tmp_path, sample_dir, SLOTS_PER_EPOCH="abc")
    res = run("info", "--config", d / "spec.json", sample_files[3])
    assert res.exit_code == 2
    assert res.stderr.strip() == (f"error: {d / 'spec.json'}: config: SLOTS_PER_EPOCH is not an "
                                  "integer: 'abc'")


def test_a_malformed_genesis_json_names_the_file(tmp_path, sample_dir, sample_files):
    d = _spec_dir(tmp_path, sample_dir)
    for genesis, why in (('["x"]', "not a mapping"),
                         ('{"data": {"genesis_validators_root": "0x1234"}}',
                          "genesis_validators_root '0x1234' is not 32 bytes of hex"),
                         ('{"data": {"genesis_time": "soon"}}',
                          "genesis_time 'soon' is not an integer")):
        (d / "genesis.json").write_text(genesis)
        res = run("info", "--config", d / "spec.json", sample_files[3])
        assert res.exit_code == 2, res.output
        assert res.stderr.strip() == f"error: {d / 'genesis.json'}: genesis: {why}"


def test_garbage_yaml_is_one_line_with_its_position(tmp_path, sample_files):
    bad = tmp_path / "config.yaml"
    bad.write_text("PRESET_BASE: [minimal\n")
    res = run("info", "--config", bad, sample_files[3])
    assert res.exit_code == 2
    assert res.stderr == (f"error: {bad}: not a valid config file: line 2, column 1: "
                          "expected ',' or ']', but got '<stream end>'\n")


def test_a_broken_config_beside_the_files_is_named(tmp_path, sample_files):
    shutil.copy(sample_files[3], tmp_path)
    (tmp_path / "config.yaml").write_text("PRESET_BASE: [\n")
    res = run("verify", tmp_path)
    assert res.exit_code == 2
    assert res.stderr.startswith(f"error: {tmp_path / 'config.yaml'}: not a valid config file: "
                                 "line 2, column 1: ")
