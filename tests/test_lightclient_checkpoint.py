"""`era checkpoint-sync --trusted-block-root ROOT` where ROOT is an older finalized root: the
light client bridges from ROOT to the node's finalized checkpoint, and the downloaded state and
block must match the verified header, or nothing is written.  Real HTTP servers on 127.0.0.1
(tests/lightclient_server.py) serving the spec-built chain; a real LevelDB store."""

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
EXPECTED = D.manifest()["expected"]


def _era(*args, timeout=180):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", "from era_tools.cli import main; main()",
                           *args], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=ROOT)


def _net():
    return load_config(D.DATA / "spec.json")


def test_checkpoint_sync_from_an_older_root_through_the_light_client(tmp_path):
    db = tmp_path / "db"
    with Server("honest") as node:
        r = _era("checkpoint-sync", "--db", str(db), "--beacon-api", node.url,
                 "--trusted-block-root", OLD_ROOT, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["state_slot"] == CP["state_slot"]
    assert out["block_slot"] == CP["block_slot"] == EXPECTED["finalized"]["slot"]
    assert out["block_root"] == EXPECTED["finalized"]["root"]
    assert out["state_root"] == CP["state_root"]
    assert out["light_client"]["finalized"] == EXPECTED["finalized"]
    assert out["light_client"]["trusted_block_root"] == OLD_ROOT
    with ChainStore.open(db, _net(), create=False) as store:
        assert store.has_state(CP["state_slot"])
        assert store.block_root_at(CP["block_slot"]) == bytes.fromhex(
            EXPECTED["finalized"]["root"][2:])
    # a rerun finds it stored
    with Server("honest") as node:
        r = _era("checkpoint-sync", "--db", str(db), "--beacon-api", node.url,
                 "--trusted-block-root", OLD_ROOT)
    assert r.returncode == 0, r.stderr
    assert "already stored" in r.stdout


def test_a_state_that_does_not_hash_to_the_verified_header_writes_nothing(tmp_path):
    db = tmp_path / "db"
    with Server("bad_state") as node:
        r = _era("checkpoint-sync", "--db", str(db), "--beacon-api", node.url,
                 "--trusted-block-root", OLD_ROOT)
    assert r.returncode == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "is not the trusted block root" in last
    assert EXPECTED["finalized"]["root"] in last
    if db.exists():
        with ChainStore.open(db, _net(), create=False) as store:
            assert not store.has_state(CP["state_slot"])
            assert store.block_root_at(CP["block_slot"]) is None


def test_a_lying_light_client_node_writes_no_store(tmp_path):
    db = tmp_path / "db"
    with Server("bad_signature") as node:
        r = _era("checkpoint-sync", "--db", str(db), "--beacon-api", node.url,
                 "--trusted-block-root", OLD_ROOT)
    assert r.returncode == 1, r.stderr
    assert "signature does not verify" in r.stderr.strip().splitlines()[-1]
    assert not db.exists()  # the light client runs before the store is opened


def test_checkpoint_block_that_is_not_the_verified_one_writes_nothing(tmp_path):
    db = tmp_path / "db"
    with Server("bad_block") as node:
        r = _era("checkpoint-sync", "--db", str(db), "--beacon-api", node.url,
                 "--trusted-block-root", OLD_ROOT)
    assert r.returncode == 1, r.stderr
    assert "block root" in r.stderr.strip().splitlines()[-1]
    if db.exists():
        with ChainStore.open(db, _net(), create=False) as store:
            assert store.block_root_at(CP["block_slot"]) is None


def test_pull_up_to_the_light_client_verified_checkpoint(tmp_path):
    db = tmp_path / "db"
    with Server("honest") as node:
        r = _era("pull", "--beacon-api", node.url, "--db", str(db), "--from-slot",
                 str(CP["block_slot"]), "--trusted-block-root", OLD_ROOT, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["to_slot"] == CP["state_slot"] and out["blocks"] == 1
    with ChainStore.open(db, _net(), create=False) as store:
        assert store.block_root_at(CP["block_slot"]) == bytes.fromhex(
            EXPECTED["finalized"]["root"][2:])
    with Server("bad_block") as node:
        r = _era("pull", "--beacon-api", node.url, "--db", str(tmp_path / "db2"),
                 "--from-slot", str(CP["block_slot"]), "--trusted-block-root", OLD_ROOT)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and EXPECTED["finalized"]["root"] in last


def test_killed_checkpoint_sync_leaves_no_store_or_a_consistent_one(tmp_path):
    """SIGKILL while the checkpoint state downloads (after the light client ran): the store is
    absent or consistent (no state, no anchor), and a rerun finishes the job."""
    import signal
    import time

    db = tmp_path / "db"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with Server("honest", state_delay=30) as node:
        p = subprocess.Popen([sys.executable, "-c", "from era_tools.cli import main; main()",
                              "checkpoint-sync", "--db", str(db), "--beacon-api", node.url,
                              "--trusted-block-root", OLD_ROOT], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            for line in p.stderr:  # wait for the light client's verdict
                if line.startswith("light client: finalized block"):
                    break
            deadline = time.monotonic() + 60
            while not any("/eth/v2/debug/beacon/states/" in r for r in node.requests):
                assert time.monotonic() < deadline and p.poll() is None
                time.sleep(0.05)
            p.send_signal(signal.SIGKILL)
        finally:
            p.wait(timeout=30)
    assert p.returncode == -signal.SIGKILL
    if db.exists():
        with ChainStore.open(db, _net(), create=False) as store:
            assert not store.has_state(CP["state_slot"])
            assert store.block_root_at(CP["block_slot"]) is None
    with Server("honest") as node:
        r = _era("checkpoint-sync", "--db", str(db), "--beacon-api", node.url,
                 "--trusted-block-root", OLD_ROOT, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["block_root"] == EXPECTED["finalized"]["root"]


# --------------------------------------------------------------------------------------------
# backfill --trusted-block-root: the store's newest block must be the verified finalized block
# or one of its ancestors (parent roots walked down from the verified block)

EARLY = CP["early_state"]


def _store_at_early_checkpoint(db, node):
    r = _era("checkpoint-sync", "--db", str(db), "--beacon-api", node.url, "--state-id",
             str(EARLY["slot"]), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["state_root"] == EARLY["state_root"]


def test_backfill_checks_the_store_against_the_light_client(tmp_path):
    db = tmp_path / "db"
    with Server("honest") as node:
        _store_at_early_checkpoint(db, node)
        r = _era("backfill", "--db", str(db), "--peer", node.url, "--trusted-block-root",
                 OLD_ROOT, "--to-slot", str(EARLY["slot"]), "--json")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["light_client"]["finalized"] == EXPECTED["finalized"]
        walked = [q for q in node.requests if q.startswith("/eth/v2/beacon/blocks/0x")]
        assert len(walked) == CP["block_slot"] - EARLY["slot"]  # 200 down to 193
    with Server("bad_parent") as node:  # a block on the way does not hash to its root
        r = _era("backfill", "--db", str(db), "--peer", node.url, "--trusted-block-root",
                 OLD_ROOT, "--to-slot", str(EARLY["slot"]))
    assert r.returncode == 2, r.stderr
    assert "hashes to" in r.stderr.strip().splitlines()[-1]
    with Server("stale") as node:  # verifies only up to slot 104: the store is newer
        r = _era("backfill", "--db", str(db), "--peer", node.url, "--trusted-block-root",
                 OLD_ROOT, "--to-slot", str(EARLY["slot"]))
    assert r.returncode == 1, r.stderr
    assert "newer than the newest light-client verified" in r.stderr.strip().splitlines()[-1]


def test_a_store_block_off_the_verified_chain_is_refused():
    from era_tools.lightclient.driver import LightClientServer as S
    from era_tools.lightclient.driver import (LightClientError, network_from_servers,
                                              sync_light_client, verify_descends_from)

    with Server("honest") as node:
        servers = [S(node.url)]
        net, sj = network_from_servers(servers)
        res = sync_light_client(servers, bytes.fromhex(OLD_ROOT[2:]), net, sj)
        blocks = {b["slot"]: bytes.fromhex(b["root"][2:]) for b in CP["blocks"]}
        assert verify_descends_from(servers[0].api, res.finalized_header, EARLY["slot"] + 2,
                                    blocks[EARLY["slot"] + 2], net) == 6
        with pytest.raises(LightClientError, match="another chain"):
            verify_descends_from(servers[0].api, res.finalized_header, EARLY["slot"],
                                 b"\x01" * 32, net)


def test_verified_checkpoint_state_for_anchoring_an_archive():
    from era_tools.errors import VerificationError
    from era_tools.lightclient.driver import verified_checkpoint_state

    with Server("bad_signature") as liar, Server("honest") as node:
        header, slot, state = verified_checkpoint_state([liar.url, node.url],
                                                        bytes.fromhex(OLD_ROOT[2:]))
    assert slot == CP["state_slot"] and int(header.beacon.slot) == CP["block_slot"]
    assert state == (D.DATA / CP["state_file"]).read_bytes()
    with Server("bad_state") as node:
        with pytest.raises(VerificationError, match="does not belong to the verified"):
            verified_checkpoint_state([node.url], bytes.fromhex(OLD_ROOT[2:]))
