"""`era serve` as a Beacon API source for `era pull` and `era checkpoint-sync`, and `era serve
--db` answering from a store.

The sample eras end with block 1023 and the state at 1024; block 1024 begins era 17 and is not
in them.  The server's finalized checkpoint is the newest state's (epoch 128, the root of block
1024 from that state's latest_block_header), so a pull gets every era, the newest included,
and leaves slot 1024 uncovered (its block is not served, and not proven empty); the default
checkpoint-sync starts from the state at 1024 and block 1023.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil

from click.testing import CliRunner

from beacon_api_server import BeaconApiServer
from store_dump import dump
from era_tools.cli import main
from era_tools.serve.app import make_app
from era_tools.serve.testing import ServerThread
from era_tools.store import ChainStore
from test_serve import SSZ, get, get_json, parse_chunks


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])




def assert_exports_the_sample_eras(db, out, sample_dir, eras=range(17)):
    res = run("export", "--db", db, "--out", out)
    assert res.exit_code == 0, res.output
    names = sorted(f for f in os.listdir(sample_dir)
                   if f.endswith(".era") and int(f.split("-")[1]) in eras)
    assert sorted(f for f in os.listdir(out) if f.endswith(".era")) == names  # era 16 too
    assert all(filecmp.cmp(out / n, sample_dir / n, shallow=False) for n in names)


def test_era_serve_finality_covers_its_newest_state(sample_dir, network, manifest):
    with ServerThread(make_app(sample_dir, network)) as srv:
        cp = get_json(srv, "/eth/v1/beacon/states/finalized/finality_checkpoints")["data"]
        assert cp["finalized"] == {"epoch": "128", "root": manifest["finalized"]["root"]}
        assert get_json(srv, "/eth/v1/beacon/states/head/finality_checkpoints") == \
            get_json(srv, "/eth/v1/beacon/states/finalized/finality_checkpoints")
        # the finalized block itself begins era 17: not held, and said so
        status, _, body = get(srv, "/eth/v1/beacon/headers/finalized")
        assert status == 404 and b"begins the next era" in body
        assert get_json(srv, "/eth/v1/beacon/headers/head")["data"]["header"]["message"][
            "slot"] == "1023"


def test_pull_against_era_serve_gets_every_era_including_the_newest(tmp_path, sample_dir,
                                                                   fixture_dir, network,
                                                                   manifest):
    with ServerThread(make_app(sample_dir, network)) as srv:
        res = run("pull", "--beacon-api", srv.url.rstrip("/"), "--db", tmp_path / "a", "--json")
        assert res.exit_code == 0, res.output
        summary = json.loads(res.output)
        assert (summary["from_slot"], summary["to_slot"]) == (0, 1024)
        assert summary["states"] == 17 and summary["unheld_slot"] == 1024
        # a rerun finds nothing new (slot 1024 stays unproven) and writes nothing
        before = dump(tmp_path / "a")
        res = run("pull", "--beacon-api", srv.url.rstrip("/"), "--db", tmp_path / "a", "--json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["blocks"] == 0 and dump(tmp_path / "a") == before
    with ChainStore.open(tmp_path / "a", readonly=True, create=False) as store:
        assert store.anchor.covered == [(0, 1023)] and store.has_state(1024)
    assert_exports_the_sample_eras(tmp_path / "a", tmp_path / "out", sample_dir)
    # the same slots pulled from the real-client chain: the same index, blocks and states
    with BeaconApiServer(fixture_dir) as node:
        res = run("pull", "--beacon-api", node.url, "--db", tmp_path / "b", "--to-slot", 1023,
                  "--json")
        assert res.exit_code == 0, res.output
    with ChainStore.open(tmp_path / "a", readonly=True, create=False) as a, \
            ChainStore.open(tmp_path / "b", readonly=True, create=False) as b:
        assert list(a.iter_index(0, 1024)) == list(b.iter_index(0, 1024))
        assert all(a.get_block_ssz(bytes(r)) == b.get_block_ssz(bytes(r))
                   for _, r in a.iter_index(0, 1023) if r)
        assert a.state_slots() == b.state_slots() + [1024]
        assert all(a.get_state(s) == b.get_state(s) for s in b.state_slots())


def test_default_checkpoint_sync_against_era_serve_then_backfill(tmp_path, sample_dir,
                                                                 network, manifest):
    with ServerThread(make_app(sample_dir, network)) as srv:
        url = srv.url.rstrip("/")
        res = run("checkpoint-sync", "--db", tmp_path / "db", "--beacon-api", url, "--json")
        assert res.exit_code == 0, res.output
        out = json.loads(res.output)
        assert (out["state_slot"], out["block_slot"]) == (1024, 1023)
        assert out["block_root"] == next(b["root"] for b in manifest["blocks"]
                                         if b["slot"] == 1023)
        res = run("backfill", "--db", tmp_path / "db", "--peer", url, "--json")
        assert res.exit_code == 0, res.output
    with ChainStore.open(tmp_path / "db", readonly=True, create=False) as store:
        assert store.anchor.covered == [(0, 1023)]
        assert store.state_slots() == [1024]  # backfill fetches blocks, not states
    assert_exports_the_sample_eras(tmp_path / "db", tmp_path / "out", sample_dir, eras=[16])


def test_era_serve_db_answers_from_the_store(tmp_path, sample_dir, network, manifest,
                                             fixture_dir):
    with ServerThread(make_app(sample_dir, network)) as srv:
        res = run("pull", "--beacon-api", srv.url.rstrip("/"), "--db", tmp_path / "a")
        assert res.exit_code == 0, res.output

    # era serve --db: eras 0..8 from files, the rest of the pulled history from the store
    eras = tmp_path / "eras"
    eras.mkdir()
    for f in sorted(sample_dir.iterdir()):
        if not f.name.endswith(".era") or int(f.name.split("-")[1]) <= 8:
            shutil.copy(f, eras / f.name)
    blocks = {b["slot"]: b for b in manifest["blocks"] if b["file"]}
    store = ChainStore.open(tmp_path / "a", readonly=True, create=False)
    try:
        with ServerThread(make_app(eras, network, store)) as srv:
            for slot in (100, 700, 1016):
                status, h, body = get(srv, f"/eth/v2/beacon/blocks/{slot}", SSZ)
                assert status == 200 and body == (fixture_dir / blocks[slot]["file"]).read_bytes()
            status, _, body = get(srv, f"/eth/v2/beacon/blocks/{blocks[700]['root']}", SSZ)
            assert status == 200 and body == (fixture_dir / blocks[700]["file"]).read_bytes()
            status, _, body = get(srv, "/eth/v2/debug/beacon/states/960", SSZ)
            assert status == 200 and body == (fixture_dir / "states/960.ssz").read_bytes()
            status, h, body = get(srv, "/era_tools/v1/blocks_by_range?start_slot=500&count=600")
            assert status == 200 and h["era-tools-last-slot"] == "1023"
            chunks = parse_chunks(body)
            want = [s for s in range(500, 1024) if s in blocks]
            assert [p for _, _, p in chunks] == [
                (fixture_dir / blocks[s]["file"]).read_bytes() for s in want]
            assert get(srv, "/eth/v2/beacon/blocks/1030", SSZ)[0] == 404
    finally:
        store.close()
    assert os.path.isdir(tmp_path / "a")
