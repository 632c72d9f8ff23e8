"""`era sync --trusted-block-root ROOT` with ROOT an older finalized root: the light client
(over the --beacon-api nodes as light-client servers) verifies the checkpoint the checkpoint
stage downloads, and the finalized checkpoint each follow step pulls up to.  Real HTTP servers
on 127.0.0.1 (tests/lightclient_server.py: the spec-built altair->fulu chain, finalized at
slot 200; tests/beacon_api_server.py: the fixture chain, no light-client routes) and real
LevelDB stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from era_tools.config import load_config
from era_tools.store import ChainStore
from tests import lightclient_data as D
from tests.lightclient_server import LightClientServer as Server

ROOT = D.ROOT
OLD_ROOT = D.items("bootstrap")[0]["block_root"]   # slot 8: 24 epochs before the checkpoint
CP = D.manifest()["checkpoint"]
EARLY = CP["early_state"]
EXPECTED = D.manifest()["expected"]
FIN_ROOT = bytes.fromhex(EXPECTED["finalized"]["root"][2:])


def _era(*args, timeout=180):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", "from era_tools.cli import main; main()",
                           *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


def _net():
    return load_config(D.DATA / "spec.json")


class _Stop(Exception):
    pass


def _stop_at_history(stage):
    if stage == "history":  # the checkpoint stage is done; this chain has no older blocks
        raise _Stop


def test_checkpoint_stage_starts_from_the_light_client_verified_checkpoint(tmp_path):
    from era_tools.sync.pipeline import SyncOptions, SyncPipeline, connect, make_servers

    with Server("honest") as node:
        servers = make_servers([node.url], timeout=10)
        net = connect(servers)
        with ChainStore.open(tmp_path / "db", net) as store:
            pipe = SyncPipeline(store, servers, SyncOptions(
                trusted_block_root=bytes.fromhex(OLD_ROOT[2:]), once=True),
                on_stage=_stop_at_history)
            with pytest.raises(_Stop):
                pipe.run()
            assert store.has_state(CP["state_slot"])
            assert store.block_root_at(CP["block_slot"]) == FIN_ROOT
            assert store.anchor.newest_slot == CP["block_slot"]
        assert pipe.light["finalized"] == EXPECTED["finalized"]
        assert pipe.light["trusted_block_root"] == OLD_ROOT
        # the verified checkpoint's state by slot, never the node's word (`finalized`)
        assert f"/eth/v2/debug/beacon/states/{CP['state_slot']}" in node.requests
        assert "/eth/v2/debug/beacon/states/finalized" not in node.requests
        assert any(r.endswith(f"/bootstrap/{OLD_ROOT}") for r in node.requests)


@pytest.mark.parametrize("mode,why", [
    ("bad_signature", "signature does not verify"),       # the light-client data lies
    ("bad_state", EXPECTED["finalized"]["root"]),         # the state is not the verified one
], ids=["lying-light-client", "state-off-the-verified-header"])
def test_a_lying_node_writes_nothing_exit_1(tmp_path, mode, why):
    db = tmp_path / "db"
    with Server(mode) as node:
        r = _era("sync", "--db", db, "--beacon-api", node.url, "--trusted-block-root",
                 OLD_ROOT, "--once", "--retry-cap", "0.2")
    assert r.returncode == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and why in last
    with ChainStore.open(db, _net(), create=False) as store:
        assert store.anchor.newest_slot is None and not store.has_state(CP["state_slot"])


def _store_in_follow_stage(db, node):
    """A store checkpoint-synced at the early state (slot 192), its sync stage `follow`."""
    r = _era("checkpoint-sync", "--db", db, "--beacon-api", node.url, "--state-id",
             EARLY["slot"], "--json")
    assert r.returncode == 0, r.stderr
    with ChainStore.open(db, _net(), create=False) as store:
        store.put_sync_record({"stage": "follow"})
        assert store.anchor.newest_slot == EARLY["slot"]


def test_follow_stage_stores_only_up_to_the_light_client_verified_checkpoint(tmp_path):
    db = tmp_path / "db"
    with Server("stale") as node:
        # the node says slot 200 is finalized, but its light-client data proves only slot
        # 104 (periods 0..1): nothing above the store's slot 192 is taken on its word
        _store_in_follow_stage(db, node)
        r = _era("sync", "--db", db, "--beacon-api", node.url, "--trusted-block-root",
                 OLD_ROOT, "--once", "--json", "--retry-cap", "0.2")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["newest_slot"] == EARLY["slot"] and out["blocks"] == 0
        assert out["light_client"]["finalized"]["slot"] < EARLY["slot"]
        assert not [q for q in node.requests if q.startswith("/eth/v2/beacon/blocks/2")]
    with Server("honest") as node:  # proves slot 200: the follow stage pulls up to it
        r = _era("sync", "--db", db, "--beacon-api", node.url, "--trusted-block-root",
                 OLD_ROOT, "--once", "--json", "--retry-cap", "0.2")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["newest_slot"] == CP["block_slot"]
        assert out["light_client"]["finalized"] == EXPECTED["finalized"]
        # re-verified from the newest verified root once the first step proved it
        assert any(q.endswith(f"/bootstrap/{EXPECTED['finalized']['root']}")
                   for q in node.requests)
    with ChainStore.open(db, _net(), create=False) as store:
        assert store.block_root_at(CP["block_slot"]) == FIN_ROOT
        blocks = {b["slot"]: bytes.fromhex(b["root"][2:]) for b in CP["blocks"]}
        assert all(store.block_root_at(s) == r for s, r in blocks.items())


def test_follow_stage_with_a_lying_node_writes_nothing_exit_1(tmp_path):
    db = tmp_path / "db"
    with Server("honest") as node:
        _store_in_follow_stage(db, node)
    with Server("bad_branch") as node:
        r = _era("sync", "--db", db, "--beacon-api", node.url, "--trusted-block-root",
                 OLD_ROOT, "--once", "--retry-cap", "0.2")
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: ")
    with ChainStore.open(db, _net(), create=False) as store:
        assert store.anchor.newest_slot == EARLY["slot"]
        assert store.block_root_at(CP["block_slot"]) is None


def test_a_node_without_light_client_data_keeps_the_old_meaning(fixture_dir, tmp_path):
    """The fixture chain's node has no light-client routes: the root must be the checkpoint
    block itself (a note says so), and the follow stage takes the node's finality."""
    sys.path.insert(0, str(ROOT / "tests"))
    from beacon_api_server import BeaconApiServer
    from era_tools.errors import hex0x
    from era_tools.sync.peers import BeaconApiClient

    with BeaconApiServer(fixture_dir) as srv:
        _, fin_root = BeaconApiClient(srv.url).finalized_checkpoint()
        r = _era("sync", "--db", tmp_path / "db", "--beacon-api", srv.url,
                 "--trusted-block-root", hex0x(fin_root), "--once", "--json")
        assert r.returncode == 0, r.stderr
        assert "serves a light-client bootstrap" in r.stderr
        out = json.loads(r.stdout)
        assert out["newest_slot"] == 1024 and out["covered"] == [[0, 1024]]
        assert out["light_client"] is None
        r = _era("sync", "--db", tmp_path / "db2", "--beacon-api", srv.url,
                 "--trusted-block-root", "0x" + "11" * 32, "--once", "--retry-cap", "0.2")
        assert r.returncode != 0
        assert "is not the trusted block root" in r.stderr



def test_once_verified_the_follow_stage_never_falls_back_to_the_nodes_word(tmp_path):
    """After a verification, a node that stops serving bootstraps proves nothing: the follow
    stage stores nothing and asks again later, though the node says slot 200 is finalized
    (the fallback to the node's word is decided once, before any verification)."""
    import threading
    import time

    from era_tools.sync.pipeline import SyncOptions, SyncPipeline, connect, make_servers

    db = tmp_path / "db"
    lines: list[str] = []
    with Server("stale") as node:
        _store_in_follow_stage(db, node)
        servers = make_servers([node.url], timeout=10)
        with ChainStore.open(db, connect(servers, _net()), create=False) as store:
            pipe = SyncPipeline(store, servers, SyncOptions(
                trusted_block_root=bytes.fromhex(OLD_ROOT[2:]), poll_interval=0.1),
                status=lines.append)

            def wait_for(text):
                deadline = time.monotonic() + 60
                while not any(text in x for x in lines):
                    assert t.is_alive() and time.monotonic() < deadline, lines
                    time.sleep(0.05)

            def follow():
                try:
                    pipe.run()
                except KeyboardInterrupt:  # pipe.stop()
                    pass

            t = threading.Thread(target=follow, daemon=True)
            t.start()
            try:
                wait_for("verified")          # slot 104 proven: nothing above 192 taken
                node.bootstraps = {}
                wait_for("no beacon API serves a bootstrap")
            finally:
                pipe.stop()
                t.join(60)
            assert not t.is_alive()
            assert store.anchor.newest_slot == EARLY["slot"]
            assert store.block_root_at(CP["block_slot"]) is None
