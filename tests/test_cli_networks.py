"""Store commands take --network/--config too: they must match the network the store holds."""

from __future__ import annotations

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
