"""`era backfill` acceptance tests, all over real HTTP on 127.0.0.1: honest peers, hostile
peers, only liars, meeting front-filled era history, `era serve` range peers, SIGKILL."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from era_tools.cli import main
from era_tools.frontfill import frontfill
from era_tools.sync.pull import node_network, pull
from era_tools.store import ChainStore, schema
from era_tools.sync.backfill import backfill
from era_tools.sync.checkpoint import checkpoint_sync
from era_tools.sync.peers import BeaconApiClient
from peers import (EmptyNode, FixtureNode, GarbageNode, OtherChainNode, RangeNode,
                   StallNode)

ROOT = Path(__file__).resolve().parents[1]


def index_of(store, lo=0, hi=1024):
    return [(schema.slot_of_key(k), bytes(v)) for k, v in store.iter_index(lo, hi)]


def blocks_of(store, lo=0, hi=1024):
    return {r: store.get_block_ssz(r) for _, r in index_of(store, lo, hi) if r}


@pytest.fixture(scope="module")
def honest(fixture_dir):
    with FixtureNode(fixture_dir) as a, FixtureNode(fixture_dir) as b:
        yield a, b


@pytest.fixture(scope="module")
def net(honest):
    return node_network(BeaconApiClient(honest[0].url))


@pytest.fixture(scope="module")
def reference(honest, net, tmp_path_factory):
    """A store built by pulling the whole fixture: (index, blocks)."""
    path = tmp_path_factory.mktemp("ref") / "db"
    with ChainStore.open(path, net) as store:
        pull(store, BeaconApiClient(honest[0].url), 0, 1024)
        return index_of(store), blocks_of(store)


@pytest.fixture(scope="module")
def checkpointed(honest, net, tmp_path_factory):
    """A store checkpoint-synced at slot 1024 (copied per test)."""
    path = tmp_path_factory.mktemp("cp") / "db"
    with ChainStore.open(path, net) as store:
        checkpoint_sync(store, BeaconApiClient(honest[0].url))
    return path


def fresh(checkpointed, tmp_path) -> Path:
    dst = tmp_path / "db"
    shutil.copytree(checkpointed, dst)
    return dst


def assert_equals_reference(store, reference):
    idx, blocks = reference
    assert index_of(store) == idx
    assert blocks_of(store) == blocks
    assert store.anchor.covered == [(0, 1024)]
    assert store.anchor.oldest_block_slot == 0


@pytest.mark.parametrize("procs", [0, 2], ids=["in-thread", "process-pool"])
def test_honest_peers_equal_pulled_store(honest, checkpointed, reference, tmp_path, procs):
    lines = []
    db = fresh(checkpointed, tmp_path)
    orphan = db / "blocks" / "000000000001-000000000002.e2s"  # as left by a killed run
    orphan.parent.mkdir()
    orphan.write_bytes(b"not committed")
    (db / "blocks" / "x.e2s.tmp").write_bytes(b"half written")
    with ChainStore.open(db) as store:
        res = backfill(store, [p.url for p in honest], workers=4, timeout=10,
                       status=lines.append, status_every=0.0, bls_processes=procs)
        assert res.queue.stopped == "genesis"
        assert res.queue.slots == 1024 and res.queue.blocks == 889
        assert_equals_reference(store, reference)
        # the 889 blocks went to the store's own block files and LevelDB holds references
        # (only the checkpoint block is inline); the killed run's leftovers are gone
        counts = store.referenced_file_counts()
        assert counts["blocks"] >= 1 and counts["era"] == 0
        assert store.table_stats()["blocks"]["entries"] == 1
        assert store.table_stats()["block_refs"]["entries"] == 889
        assert sorted(p.name for p in (db / "blocks").iterdir()) == sorted(
            os.path.basename(f["path"]) for f in store.referenced_files().values()
            if "/blocks/" in f["path"])
    assert all(p["score"] > 300 and not p["dropped"] for p in res.queue.peers)
    assert set(res.peer_kinds.values()) == {"rest"}
    # Nimbus-style status line: time left, percent, speed, worker map, current slot
    assert lines and all(" slots/s (" in ln and "%)" in ln for ln in lines)


@pytest.mark.parametrize("procs", [0, 2], ids=["in-thread", "process-pool"])
def test_hostile_peers_are_dropped_and_result_is_correct(fixture_dir, honest, net, checkpointed,
                                                         reference, tmp_path, procs):
    StallNode.stall = 3.0
    with OtherChainNode(fixture_dir, network=net) as other, EmptyNode(fixture_dir) as empty, \
            StallNode(fixture_dir) as stall, GarbageNode(fixture_dir) as garbage:
        hostile = {other.url: "other chain", empty.url: "empty", stall.url: "stall",
                   garbage.url: "garbage"}
        with ChainStore.open(fresh(checkpointed, tmp_path)) as store:
            res = backfill(store, [honest[0].url, *hostile], workers=4, timeout=1.0,
                           bls_processes=procs)
            assert_equals_reference(store, reference)
    scores = {p["url"]: p for p in res.queue.peers}
    for url, what in hostile.items():
        p = scores[url]
        assert p["dropped"] or p["score"] < 0, (what, p)
    assert not scores[honest[0].url]["dropped"]


def test_json_only_rest_peer_is_usable_and_ranks_below_ssz_peers(fixture_dir, honest,
                                                                  checkpointed, reference,
                                                                  tmp_path):
    """A standard node that answers blocks in JSON only (no Eth-Consensus-Version header,
    `version` in the JSON, as Lodestar 1.5.1 does) is a usable peer: its blocks are converted
    to SSZ, the store equals the pulled one, and its score stays below an SSZ peer's."""
    with FixtureNode(fixture_dir) as js:
        js.faults.json_only = True
        with ChainStore.open(fresh(checkpointed, tmp_path / "alone")) as store:
            res = backfill(store, [js.url], workers=2, timeout=10)
            assert res.queue.stopped == "genesis"
            assert_equals_reference(store, reference)
        (p,) = res.queue.peers
        assert p["kind"] == "rest-json" and not p["dropped"] and p["faults"] == 0
        with ChainStore.open(fresh(checkpointed, tmp_path / "both")) as store:
            res = backfill(store, [js.url, honest[0].url], workers=4, timeout=10)
            assert_equals_reference(store, reference)
    scores = {p["url"]: p for p in res.queue.peers}
    assert scores[js.url]["kind"] == "rest-json" and scores[honest[0].url]["kind"] == "rest"
    assert 0 < scores[js.url]["score"] < scores[honest[0].url]["score"]


def test_peer_whose_spec_has_another_fork_schedule_is_dropped(fixture_dir, honest,
                                                              checkpointed, reference,
                                                              tmp_path):
    with FixtureNode(fixture_dir) as other:
        other.chain.spec = dict(other.chain.spec, CAPELLA_FORK_EPOCH="4")
        with ChainStore.open(fresh(checkpointed, tmp_path)) as store:
            res = backfill(store, [other.url, honest[0].url], workers=2, timeout=10)
            assert_equals_reference(store, reference)
    p = {p["url"]: p for p in res.queue.peers}[other.url]
    assert p["dropped"] and p["good_batches"] == 0
    assert "CAPELLA_FORK_EPOCH=4" in p["last_fault"] and "has 3" in p["last_fault"]


def test_only_liars_exit_nonzero_and_store_nothing(fixture_dir, net, checkpointed, tmp_path):
    db = fresh(checkpointed, tmp_path)
    with OtherChainNode(fixture_dir, network=net) as other, EmptyNode(fixture_dir) as empty, \
            GarbageNode(fixture_dir) as garbage:
        r = CliRunner().invoke(main, ["backfill", "--db", str(db), "--peer", other.url,
                                      "--peer", empty.url, "--peer", garbage.url,
                                      "--timeout", "1", "--bls-procs", "0"])
    assert r.exit_code == 2, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("error: no usable peers left below slot 1024, nothing unverified "
                           "was stored: ")
    with ChainStore.open(db) as store:
        assert store.anchor.covered == [(1024, 1024)]
        assert index_of(store) == [(1024, store.anchor.oldest_block_root)]


def _frontfilled(sample_dir, net, checkpointed, tmp_path):
    db = fresh(checkpointed, tmp_path)
    files = [sample_dir / f for f in sorted(os.listdir(sample_dir))
             if f.endswith(".era") and int(f.split("-")[1]) <= 8]
    with ChainStore.open(db) as store:
        frontfill(store, files)
        assert store.anchor.covered == [(0, 511), (1024, 1024)]
    return db


def test_meets_era_history_and_links(sample_dir, honest, net, checkpointed, reference,
                                     tmp_path):
    db = _frontfilled(sample_dir, net, checkpointed, tmp_path)
    with ChainStore.open(db) as store:
        res = backfill(store, [p.url for p in honest], workers=3, timeout=10)
        assert res.plan.floor == 512
        assert res.queue.stopped == "era history"
        assert res.queue.oldest_slot == 512 and res.queue.slots == 512
        assert store.anchor.covered == [(0, 1024)]
        assert index_of(store) == reference[0]


def test_corrupted_era_root_at_boundary_refused(sample_dir, honest, net, checkpointed,
                                                tmp_path):
    db = _frontfilled(sample_dir, net, checkpointed, tmp_path)
    with ChainStore.open(db) as store:
        last = max(s for s, r in index_of(store, 0, 511) if r)
        store.kv.write({schema.index_key(last): b"\x99" * 32})  # corrupt the era root
        before = index_of(store, 512, 1023)
    r = CliRunner().invoke(main, ["backfill", "--db", str(db), "--peer", honest[0].url,
                                  "--peer", honest[1].url, "--bls-procs", "0"])
    assert r.exit_code == 1, r.output
    msg = r.output.strip().splitlines()[-1]
    assert msg.startswith("error: slot 511: the backfilled chain's parent 0x")
    assert msg.endswith(f"is not the front-filled era root 0x{'99' * 32} at that slot: the era "
                        "history or the checkpoint is of another chain; nothing of the last "
                        "run was written")
    with ChainStore.open(db) as store:
        assert len(store.anchor.covered) == 2  # never linked
        assert store.index_entry(512) is None or before


def test_era_serve_range_peers(sample_dir, honest, net, checkpointed, reference, tmp_path):
    pytest.importorskip("aiohttp")
    from era_tools.serve.app import make_app
    from era_tools.serve.testing import ServerThread

    with ServerThread(make_app(sample_dir, net)) as s1, \
            ServerThread(make_app(sample_dir, net)) as s2:
        with ChainStore.open(fresh(checkpointed, tmp_path)) as store:
            res = backfill(store, [s1.url, s2.url], workers=4, timeout=10, bls_processes=2)
            assert_equals_reference(store, reference)
    assert set(res.peer_kinds.values()) == {"range"}


@pytest.mark.parametrize("lie", ["badsig", "omit", "crc"])
def test_range_requests_span_several_batches_and_blame_per_batch(fixture_dir, net, checkpointed,
                                                                 reference, tmp_path, lie):
    """Range peers get 4 epoch batches per request; a liar's bad block fails only its own
    batch (the other batches of that reply are accepted and credited), the result is exact."""
    with RangeNode(fixture_dir, network=net) as good, RangeNode(fixture_dir, network=net) as bad:
        bad.lie = lie
        with ChainStore.open(fresh(checkpointed, tmp_path)) as store:
            res = backfill(store, [good.url, bad.url], workers=4, timeout=10,
                           bls_processes=0, range_batches=4)
            assert_equals_reference(store, reference)
    assert set(res.peer_kinds.values()) == {"range"}
    spe = net.slots_per_epoch
    assert max(good.range_counts) in (4 * spe, 4 * spe + 1)  # 4 batches (+ the anchor slot)
    assert all(c <= 1024 for c in good.range_counts + bad.range_counts)
    scores = {p["url"]: p for p in res.queue.peers}
    assert not scores[good.url]["dropped"]
    assert scores[bad.url]["faults"] >= 1
    if lie == "crc":  # the header is read without the CRC; the full decompression catches it
        assert "checksum" in scores[bad.url]["last_fault"]
    if lie == "badsig":
        assert scores[bad.url]["dropped"]
        assert "proposer signature does not verify" in scores[bad.url]["last_fault"]
        assert scores[bad.url]["good_batches"] >= 1  # its honest batches of the same reply


@pytest.mark.parametrize("kind", ["range", "rest"])
def test_to_slot_stops_at_the_first_linked_block_at_or_below(fixture_dir, net, checkpointed,
                                                             reference, tmp_path, kind):
    """--to-slot: the run is written down to a linked block at or below it, the queue stops
    there, and nothing below the batch holding --to-slot is asked for (batches below it are
    made only once everything above is imported without reaching a block at or below it)."""
    idx = dict(reference[0])
    to_slot = 603
    def node():
        return RangeNode(fixture_dir, network=net) if kind == "range" else FixtureNode(fixture_dir)

    with node() as a, node() as b:
        urls = [a.url, b.url]
        with ChainStore.open(fresh(checkpointed, tmp_path)) as store:
            res = backfill(store, urls, to_slot=to_slot, workers=3, timeout=10,
                           bls_processes=0)
            lo = store.anchor.covered[-1][0]
            assert res.queue.stopped == f"--to-slot {to_slot}"
            assert lo <= to_slot
            assert idx[lo]  # stopped at a block, not at an empty claim
            assert index_of(store, lo, 1024) == [e for e in reference[0] if e[0] >= lo]
            assert store.anchor.oldest_block_slot == lo
    assert set(res.peer_kinds.values()) == {kind}
    if kind == "range":
        spe = net.slots_per_epoch
        probes = {1023}  # the kind probe asks for the slot below the anchor
        starts = [s for s in a.range_starts + b.range_starts if s not in probes]
        assert min(starts) == to_slot // spe * spe


def test_sigkill_at_five_points_then_resume(honest, checkpointed, reference, tmp_path):
    db = fresh(checkpointed, tmp_path)
    rng = random.Random(5)
    cmd = [sys.executable, "-c", "from era_tools.cli import main; main()", "backfill", "--db", str(db),
           "--peer", honest[0].url, "--peer", honest[1].url, "--bls-procs", "0",
           "--max-rate", "300"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    kills = 0
    for _ in range(5):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.8, 2.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        with ChainStore.open(db) as store:  # consistent after every kill
            a = store.anchor
            lo = a.covered[-1][0]
            assert [s for s, _ in index_of(store, lo, 1024)] == list(range(lo, 1025))
            assert index_of(store, lo, 1024) == [e for e in reference[0] if e[0] >= lo]
    assert kills >= 3
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with ChainStore.open(db) as store:
        assert_equals_reference(store, reference)


def test_ctrl_c_stops_cleanly_and_rerun_resumes(honest, checkpointed, reference, tmp_path):
    """SIGINT (what Ctrl-C sends) mid-run: exit 130 with one line saying where the store
    stands, no traceback, a consistent store; the rerun finishes it."""
    db = fresh(checkpointed, tmp_path)
    cmd = [sys.executable, "-c", "from era_tools.cli import main; main()", "backfill", "--db",
           str(db), "--peer", honest[0].url, "--peer", honest[1].url, "--max-rate", "200"]
    # Plain progress lines every 0.2 s tell when the import loop runs: Ctrl-C then lands
    # mid-run however slow the start is on a loaded machine (a fixed sleep did not).
    env = dict(os.environ, PYTHONPATH=str(ROOT), ERA_TOOLS_PROGRESS_EVERY="0.2")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    seen, running = [], threading.Event()

    def read_stderr():
        for line in proc.stderr:
            seen.append(line)
            if "/s" in line:
                running.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    assert running.wait(120), "".join(seen)
    assert proc.poll() is None, "".join(seen)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    reader.join(timeout=10)
    err = "".join(seen)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.startswith("interrupted")]
    assert len(lines) == 1 and lines[0].endswith("; rerun to resume"), err
    stopped_at = int(lines[0].split("down to slot ")[1].split(";")[0])
    with ChainStore.open(db) as store:
        lo = store.anchor.covered[-1][0]
        assert lo == stopped_at <= 1024  # says where it stands (1024: nothing imported yet)
        assert index_of(store, lo, 1024) == [e for e in reference[0] if e[0] >= lo]
    r = subprocess.run(cmd[:-2], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with ChainStore.open(db) as store:
        assert_equals_reference(store, reference)


def test_a_header_peek_that_disagrees_with_the_full_decompression_is_a_fault(
        fixture_dir, net, checkpointed, reference, tmp_path, monkeypatch):
    """The importer reads each block's header from a CRC-less partial decode; the pool task
    decompresses the whole block and hands back the header it saw.  Should the two ever differ
    (a decoder bug a peer could aim at), the reply is refused and the range fetched again."""
    from era_tools import framing

    real, calls = framing.peek_prefix, []

    def doctored(data, nbytes, where="payload", base=0):
        head = real(data, nbytes, where, base)
        calls.append(1)
        if len(calls) == 3:  # one block of one reply: another parent_root
            head = head[:120] + bytes([head[120] ^ 1]) + head[121:]
        return head

    monkeypatch.setattr(framing, "peek_prefix", doctored)
    with RangeNode(fixture_dir, network=net) as a, RangeNode(fixture_dir, network=net) as b:
        with ChainStore.open(fresh(checkpointed, tmp_path)) as store:
            res = backfill(store, [a.url, b.url], workers=2, timeout=10, bls_processes=0)
            assert_equals_reference(store, reference)
    faults = [p["last_fault"] or "" for p in res.queue.peers]
    assert any("differs between a partial and a full decompression" in f for f in faults)


def test_range_requests_taper_to_single_batches_at_the_end(fixture_dir, net, checkpointed,
                                                           reference, tmp_path):
    """Near the end the groups shrink (so no core idles while one worker checks a full-size
    last group): the lowest requests are single epoch batches, the first ones full groups."""
    with RangeNode(fixture_dir, network=net) as a, RangeNode(fixture_dir, network=net) as b:
        with ChainStore.open(fresh(checkpointed, tmp_path)) as store:
            backfill(store, [a.url, b.url], workers=2, timeout=10, bls_processes=0,
                     range_batches=4)
            assert_equals_reference(store, reference)
        spe = net.slots_per_epoch
        reqs = sorted(zip(a.range_starts + b.range_starts, a.range_counts + b.range_counts))
        reqs = [(s, c) for s, c in reqs if s != 1023]  # the kind probe
    assert reqs[0] == (0, spe)  # the lowest request: one epoch batch
    assert max(c for _, c in reqs) in (4 * spe, 4 * spe + 1)
    sizes = [c for _, c in reqs]
    assert sizes[:3] == sorted(sizes[:3])  # growing from the bottom, i.e. shrinking as it ends


def test_to_slot_at_or_above_the_oldest_block_is_nothing_to_do(sample_dir, tmp_path):
    db = tmp_path / "db"
    files = [str(p) for p in sorted(sample_dir.glob("*.era")) if int(p.name.split("-")[1]) >= 10]
    r = CliRunner().invoke(main, ["frontfill", "--db", str(db), *files])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["backfill", "--db", str(db), "--peer", "http://127.0.0.1:9",
                                  "--to-slot", "5000", "--bls-procs", "0"])
    assert r.exit_code == 0, r.output
    assert r.stdout == ("nothing to do: the store's oldest linked block is at slot 576, at or "
                        "below --to-slot 5000\n")  # was "down to slot None"


@pytest.mark.parametrize("flag", ["--timeout", "--status-every"])
def test_zero_timeout_or_status_interval_is_a_usage_error(tmp_path, flag):
    r = CliRunner().invoke(main, ["backfill", "--db", str(tmp_path / "db"), "--peer",
                                  "http://127.0.0.1:9", flag, "0"])
    assert r.exit_code == 2  # --timeout 0 was an internal error (exit 3) from requests
    assert f"Invalid value for '{flag}': 0.0 is not in the range" in r.stderr
