"""Crash safety of `era sync`: SIGKILL in every stage (checkpoint, history, follow, and in
the middle of publishing an era file), rerun, and compare with an uninterrupted run.

The chain is live: finality starts at slot 192 and moves one era on every finality poll
(`advance_per_poll`), so the follow stage pulls thirteen eras one at a time.  Kill points are
the hooks of test_crash.py: ERA_TOOLS_KILL_AFTER_BATCHES=N (the Nth committed store write)
and ERA_TOOLS_KILL_AFTER_RECORDS=N (the Nth block record written into an era .tmp file).

Stores are compared by content (every index entry, block, summary and state, the anchor and
the stage), not by raw LevelDB rows: a rerun may group the blocks of a follow step into other
block files than the uninterrupted run (finality moved on meanwhile), which changes file ids
and offsets but not one byte of the chain.  Published directories are compared byte for byte.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from beacon_api_server import BeaconApiServer
from era_tools.store import ChainStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = "import sys; from era_tools.cli import main; sys.exit(main())"
HOOKS = ("ERA_TOOLS_KILL_AFTER_BATCHES", "ERA_TOOLS_KILL_AFTER_RECORDS")


def live_server(fixture_dir):
    srv = BeaconApiServer(fixture_dir)
    srv.finalized_epoch = 24
    srv.advance_per_poll = 8
    srv.reveal_ahead = 16
    return srv


def sync(url, db, pub, env=None):
    e = {k: v for k, v in os.environ.items() if k not in HOOKS}
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", CLI, "sync", "--db", str(db), "--beacon-api",
                           url, "--publish", str(pub), "--once", "--poll-interval", "0.1"],
                          cwd=ROOT, env=e, capture_output=True, text=True, timeout=300)


def content(db) -> dict:
    """The chain a store holds, independent of how its rows are laid out."""
    with ChainStore.open(db, readonly=True, create=False) as s:
        a = s.anchor
        index, blocks, states = {}, {}, {}
        for x, y in a.covered:
            for slot in range(x, y + 1):
                root = s.index_entry(slot)
                index[slot] = root
                if root:
                    blocks[root] = (s.get_summary(root), s.get_block_ssz(root))
        for slot in s.state_slots():
            states[slot] = s.get_state(slot)
        rec = s.sync_record()
        return {"anchor": a.to_json(), "index": index, "blocks": blocks, "states": states,
                "stage": rec and rec["stage"], "missing": rec and rec["missing_states"]}


def files(pub) -> dict:
    return {n: (pub / n).read_bytes() for n in sorted(os.listdir(pub))} if pub.exists() else {}


def stage_of(db):
    if not os.path.exists(os.path.join(db, "CURRENT")):
        return None
    with ChainStore.open(db, readonly=True, create=False) as s:
        rec = s.sync_record()
        return rec and rec["stage"]


@pytest.fixture(scope="module")
def reference(fixture_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("syncref")
    with live_server(fixture_dir) as srv:
        r = sync(srv.url, d / "db", d / "pub")
        assert r.returncode == 0, r.stderr
    return content(d / "db"), files(d / "pub")


# store writes: 1 = the checkpoint stage record, 2 = the checkpoint, 3 = history record,
# 4..~9 backfill and the history's era states, then the follow stage (~3 writes per era;
# 44 in all since the follow stage pulls through the forward SyncQueue)
KILLS = [("BATCHES", n) for n in (1, 2, 3, 5, 8, 11, 16, 25, 35, 42)] + \
        [("RECORDS", n) for n in (150, 700)]


@pytest.mark.parametrize("hook,n", KILLS, ids=[f"{h.lower()}-{n}" for h, n in KILLS])
def test_sync_killed_then_rerun(fixture_dir, tmp_path, reference, hook, n):
    ref_store, ref_files = reference
    db, pub = tmp_path / "db", tmp_path / "pub"
    with live_server(fixture_dir) as srv:
        r = sync(srv.url, db, pub, {f"ERA_TOOLS_KILL_AFTER_{hook}": str(n)})
        assert r.returncode == -signal.SIGKILL, r.stderr
        killed_in = stage_of(db)
        # no partial era file under a final name, ever
        for name in (os.listdir(pub) if pub.exists() else []):
            assert name.endswith((".era", ".json", ".txt", ".tmp")), name
        r = sync(srv.url, db, pub)
        assert r.returncode == 0, r.stderr
    assert not [x for x in os.listdir(pub) if x.endswith(".tmp")]
    got = files(pub)
    assert got.keys() == ref_files.keys()
    differ = {k: next(i for i, (x, y) in enumerate(zip(got[k] + b"\0", ref_files[k])) if x != y)
              for k in got if got[k] != ref_files[k]}
    assert not differ, f"killed in {killed_in}: files differ (first byte): {differ}"
    assert content(db) == ref_store
    print(f"killed in stage {killed_in}")
