"""`era serve` as a Beacon API source for `era pull`, and `era serve --db` answering from a store.

The sample eras end with block 1023 and the state at 1024; block 1024 is not in them, so the
server's finality is the newest epoch whose start slot it holds (1016).  Pulling from it must
give byte for byte the store a pull from the real-client chain gives over the same slots.
"""

from __future__ import annotations

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
from test_serve import SSZ, get, parse_chunks


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])




def test_pull_against_era_serve_reproduces_the_pull_store(tmp_path, sample_dir, fixture_dir,
                                                          network, manifest):
    with ServerThread(make_app(sample_dir, network)) as srv:
        res = run("pull", "--beacon-api", srv.url.rstrip("/"), "--db", tmp_path / "a", "--json")
        assert res.exit_code == 0, res.output
        summary = json.loads(res.output)
        assert (summary["from_slot"], summary["to_slot"]) == (0, 1016)
    with BeaconApiServer(fixture_dir) as node:
        res = run("pull", "--beacon-api", node.url, "--db", tmp_path / "b", "--to-slot", 1016,
                  "--json")
        assert res.exit_code == 0, res.output
    assert dump(tmp_path / "a") == dump(tmp_path / "b")

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
            assert status == 200 and h["era-tools-last-slot"] == "1016"
            chunks = parse_chunks(body)
            want = [s for s in range(500, 1017) if s in blocks]
            assert [p for _, _, p in chunks] == [
                (fixture_dir / blocks[s]["file"]).read_bytes() for s in want]
            assert get(srv, "/eth/v2/beacon/blocks/1020", SSZ)[0] == 404
    finally:
        store.close()
    assert os.path.isdir(tmp_path / "a")
