"""Networks without flags: `era export` writes the store's spec.json and genesis.json beside
the era files, `era download` mirrors them (from `era serve` and from a plain listing), and
`era frontfill` into a store that knows its network needs no flags."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from era_tools.cli import main
from era_tools.config import load_config
from era_tools.serve.app import make_app
from era_tools.serve.testing import ServerThread
from era_tools.store import ChainStore
from test_download import plain_host  # noqa: F401  (a fixture)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def bare_eras(src, dst, eras):
    """Copies of the era files of `eras` alone: no config beside them."""
    dst.mkdir()
    for f in sorted(src.glob("*.era")):
        if int(f.name.split("-")[1]) in eras:
            shutil.copy(f, dst / f.name)
    return dst


def test_export_writes_the_network_and_download_mirrors_it(tmp_path, sample_dir, network,
                                                          plain_host):  # noqa: F811
    # the fixture chain's network is `minimal` with its own fork schedule: not built in
    db, out = tmp_path / "db", tmp_path / "out"
    res = run("frontfill", "--db", db, "--config", sample_dir / "spec.json", sample_dir)
    assert res.exit_code == 0, res.output
    res = run("export", "--db", db, "--out", out)
    assert res.exit_code == 0, res.output
    assert {"spec.json", "genesis.json"} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    got = load_config(out / "spec.json")
    assert (got.forks, got.preset_base, got.genesis_validators_root, got.genesis_time) == (
        network.forks, network.preset_base, network.genesis_validators_root,
        network.genesis_time)
    # every command on the exported directory finds its network there
    for cmd in (["verify", out], ["info", out / "minimal-00003-00fea774.era"],
                ["frontfill", "--db", tmp_path / "db2", out]):
        res = run(*cmd)
        assert res.exit_code == 0, (cmd, res.output)
        assert "cannot infer" not in res.output
    # mirrored from `era serve` (index.json extras) and from a plain HTML listing
    with ServerThread(make_app(out, got)) as srv:
        mirrors = {"serve": srv.url, "html": plain_host(out)}
        for kind, url in mirrors.items():
            dest = tmp_path / f"mirror-{kind}"
            res = run("download", url, dest)
            assert res.exit_code == 0, (kind, res.output)
            for name in ("spec.json", "genesis.json"):
                assert (dest / name).read_bytes() == (out / name).read_bytes(), (kind, name)
            res = run("verify", dest)
            assert res.exit_code == 0, (kind, res.output)
    # a rerun keeps them; a config of another network there is refused, not overwritten
    before = (out / "spec.json").stat().st_mtime_ns
    assert run("export", "--db", db, "--out", out).exit_code == 0
    assert (out / "spec.json").stat().st_mtime_ns == before
    spec = json.loads((out / "spec.json").read_text())
    (out / "spec.json").write_text(json.dumps(dict(spec, CAPELLA_FORK_EPOCH="4")))
    res = run("export", "--db", db, "--out", out)
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1] == (
        f"error: {out / 'spec.json'}: another network's file is there (CAPELLA_FORK_EPOCH is "
        "4, not 3, the store's network minimal); refusing to overwrite")


def test_exported_genesis_json_has_the_chains_genesis(tmp_path, sample_dir):
    db, out = tmp_path / "db", tmp_path / "out"
    assert run("frontfill", "--db", db, "--config", sample_dir / "spec.json",
               sample_dir / "minimal-00000-83431ec7.era").exit_code == 0
    assert run("export", "--db", db, "--out", out).exit_code == 0
    g = json.loads((out / "genesis.json").read_text())
    assert g == json.loads((sample_dir / "genesis.json").read_text())  # same fields, values


def test_frontfill_into_a_store_that_knows_its_network_needs_no_flags(tmp_path, sample_dir):
    db = tmp_path / "db"
    res = run("frontfill", "--db", db, "--config", sample_dir / "spec.json",
              bare_eras(sample_dir, tmp_path / "first", range(0, 4)))
    assert res.exit_code == 0, res.output
    more = bare_eras(sample_dir, tmp_path / "more", range(4, 9))
    res = CliRunner().invoke(main, ["frontfill", "--db", str(db), str(more)])
    assert res.exit_code == 0, res.output
    assert "network: minimal (the store's)" in res.stderr
    with ChainStore.open(db, readonly=True) as store:
        assert store.anchor.covered == [(0, 511)]
    # files whose config beside them names another fork schedule are refused, as before
    other = bare_eras(sample_dir, tmp_path / "other", range(9, 11))
    spec = json.loads((sample_dir / "spec.json").read_text())
    (other / "spec.json").write_text(json.dumps(dict(spec, CAPELLA_FORK_EPOCH="4")))
    shutil.copy(sample_dir / "genesis.json", other / "genesis.json")
    res = run("frontfill", "--db", db, other)
    assert res.exit_code == 2 and "the store holds network minimal" in res.output
    with ChainStore.open(db, readonly=True) as store:
        assert store.anchor.covered == [(0, 511)]


def test_frontfill_after_pull_uses_the_network_the_pull_recorded(tmp_path, sample_dir,
                                                                 fixture_dir):
    from beacon_api_server import BeaconApiServer

    db = tmp_path / "db"
    with BeaconApiServer(fixture_dir) as node:
        assert run("pull", "--beacon-api", node.url, "--db", db, "--to-slot", 20).exit_code == 0
    res = run("frontfill", "--db", db, bare_eras(sample_dir, tmp_path / "eras", range(0, 4)))
    assert res.exit_code == 0, res.output
    with ChainStore.open(db, readonly=True) as store:
        assert store.anchor.covered == [(0, 191)]
