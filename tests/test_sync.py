"""`era sync` over real HTTP servers on 127.0.0.1 speaking the Beacon API over the fixture
chain: a static chain (--once publishes every era, byte-identical to `era export` of a pulled
store), a live chain whose finality moves while the sync follows it (Lodestar's quirks, with
and without an event stream), a rewound finality, a stalled server and one on another
network."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from beacon_api_server import BeaconApiServer
from store_dump import dump
from era_tools.cli import main
from era_tools.download import parse_index_json
from era_tools.era import contents_equal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = "import sys; from era_tools.cli import main; sys.exit(main())"
ERAS = 17  # eras 0..16 of the fixture chain (finalized slot 1024)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def start(args, env=None):
    e = dict(os.environ, **(env or {}))
    return subprocess.Popen([sys.executable, "-c", CLI, *map(str, args)], cwd=ROOT, env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def published_ok(pub, sample_files):
    """Every era of the chain published byte-identical, checksums.txt in sha256sum format
    and index.json (the shape `era download` reads) naming exactly those files."""
    eras = sorted(n for n in os.listdir(pub) if n.endswith(".era"))
    assert eras == [f.name for f in sample_files]
    assert not [n for n in os.listdir(pub) if n.endswith(".tmp")]
    lines = (pub / "checksums.txt").read_text().splitlines()
    assert len(lines) == len(eras)
    for line, name in zip(lines, eras):
        digest, n = line.split("  ")
        assert n == name
        assert digest == hashlib.sha256((pub / name).read_bytes()).hexdigest()
    listing = parse_index_json((pub / "index.json").read_bytes(), "http://x/")
    assert [f.name for f in listing.files] == eras
    assert all(f.sha256 and f.size == os.path.getsize(pub / f.name) for f in listing.files)


@pytest.fixture
def server(fixture_dir):
    with BeaconApiServer(fixture_dir) as srv:
        yield srv


def test_once_publishes_every_era_like_export_of_a_pulled_store(server, tmp_path,
                                                                sample_files):
    db, pub = tmp_path / "db", tmp_path / "pub"
    res = run("sync", "--db", db, "--beacon-api", server.url, "--publish", pub, "--once",
              "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["stage"] == "follow" and out["newest_slot"] == 1024 and out["lag_slots"] == 0
    assert out["eras_published"] == ERAS and out["missing_states"] == []
    assert out["covered"] == [[0, 1024]]
    published_ok(pub, sample_files)
    # the oracle: `era pull` + `era export` of the same chain
    pulled, exported = tmp_path / "pulled", tmp_path / "exported"
    assert run("pull", "--beacon-api", server.url, "--db", pulled).exit_code == 0
    assert run("export", "--db", pulled, "--out", exported).exit_code == 0
    for f in sample_files:
        assert (pub / f.name).read_bytes() == (exported / f.name).read_bytes()
    # `era status` shows the stage, lag and servers
    info = json.loads(run("status", "--db", db, "--json").stdout)
    assert info["sync"]["stage"] == "follow" and info["sync"]["lag_slots"] == 0
    assert [s["url"] for s in info["sync"]["servers"]] == [server.url]
    text = run("status", "--db", db).stdout
    assert "sync:     stage follow, newest slot 1024, finalized 1024 (lag 0 slots)" in text
    # a rerun has nothing to do and changes no era file
    before = {n: (pub / n).read_bytes() for n in os.listdir(pub)}
    res = run("sync", "--db", db, "--beacon-api", server.url, "--publish", pub, "--once",
              "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["slots"] == 0
    assert {n: (pub / n).read_bytes() for n in os.listdir(pub)} == before


def test_era_files_as_a_backfill_peer_of_the_history_stage(server, tmp_path, sample_dir,
                                                           sample_files):
    """`--peer DIR`: era files join the history stage's backfill as a checked peer (roots,
    links, signatures), beside the node; the result is the same archive."""
    db, pub = tmp_path / "db", tmp_path / "pub"
    res = run("sync", "--db", db, "--beacon-api", server.url, "--peer", sample_dir,
              "--publish", pub, "--once", "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["covered"] == [[0, 1024]] and out["eras_published"] == ERAS
    published_ok(pub, sample_files)
    for f in sample_files:
        assert contents_equal(str(pub / f.name), str(f)), f.name
    res = run("sync", "--db", tmp_path / "db2", "--beacon-api", server.url, "--peer",
              tmp_path / "nowhere", "--once")
    assert res.exit_code == 2 and "is not an http:// or https:// URL with a host, an s3:// " \
        "URL, or a directory of era files" in res.stderr
    assert not (tmp_path / "db2").exists()


@pytest.mark.parametrize("events", [True, False], ids=["event-stream", "polling"])
def test_follows_a_live_chain_with_lodestar_quirks(server, tmp_path, sample_files, events):
    """Finality starts at slot 192 and moves one era at a time while the sync runs; blocks
    come as JSON only with no Eth-Consensus-Version header, and states/finalized is 404 for
    a while after each move.  Each era is published as it completes; Ctrl-C exits 130."""
    server.finalized_epoch = 24
    server.reveal_ahead = 16
    server.events = events
    server.faults.json_only = True
    server.faults.no_version_header = True
    server.faults.finalized_404 = 1
    server._404s_left = 1
    db, pub = tmp_path / "db", tmp_path / "pub"
    p = start(["sync", "--db", db, "--beacon-api", server.url, "--publish", pub,
               "--poll-interval", 0.3 if not events else 30, "--status-every", 1])
    try:
        deadline = time.monotonic() + 120
        seen = 0
        while time.monotonic() < deadline:
            have = len([n for n in os.listdir(pub) if n.endswith(".era")]) \
                if pub.exists() else 0
            if have == ERAS and "minimal-00016" in (pub / "checksums.txt").read_text():
                break
            # finality moves one era once the era before it is published
            if have >= server.finalized_epoch // 8 + 1 and server.finalized_epoch < 128:
                seen = have
                server.advance(8)
            time.sleep(0.05)
        assert seen, "nothing was published before the first move"
        published_ok(pub, sample_files)
        while time.monotonic() < deadline:  # the finalized block at 1024 is pulled last
            if json.loads(run("status", "--db", db, "--json").stdout)["covered"] == \
                    [[0, 1024]]:
                break
            time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130, err
    assert "interrupted in stage follow" in err
    info = json.loads(run("status", "--db", db, "--json").stdout)
    assert info["covered"] == [[0, 1024]]
    assert info["sync"]["stage"] == "follow"
    assert info["sync"]["servers"][0]["events"] is (True if events else False)


def synced(server, tmp_path):
    db, pub = tmp_path / "db", tmp_path / "pub"
    res = run("sync", "--db", db, "--beacon-api", server.url, "--publish", pub, "--once")
    assert res.exit_code == 0, res.stderr
    return db, pub


def test_a_rewound_finality_is_fatal_and_writes_nothing(server, tmp_path):
    db, pub = synced(server, tmp_path)
    before, files = dump(db), sorted(os.listdir(pub))
    other = "0x" + "99" * 32
    server.faults.rewound = (100, other)
    res = run("sync", "--db", db, "--beacon-api", server.url, "--publish", pub, "--once")
    assert res.exit_code == 1
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and other in line
    assert "0x16ecd5e5" in line or "the store holds 0x" in line
    assert "Traceback" not in res.stderr
    assert dump(db) == before and sorted(os.listdir(pub)) == files


def test_a_node_behind_the_store_is_waited_for_not_an_error(server, tmp_path):
    db, pub = synced(server, tmp_path)
    before = dump(db)
    server.finalized_epoch = 64  # behind the store, on the same chain
    res = run("sync", "--db", db, "--beacon-api", server.url, "--once", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["slots"] == 0
    assert [kv for kv in dump(db) if kv[0] != b"msync"] == \
        [kv for kv in before if kv[0] != b"msync"]


def test_stalled_and_foreign_servers(fixture_dir, tmp_path, sample_files):
    """A server that never answers is retried after a growing, capped delay, not banned; one
    on another network is dropped; the good one does the work."""
    with BeaconApiServer(fixture_dir) as good, BeaconApiServer(fixture_dir) as stalled, \
            BeaconApiServer(fixture_dir) as foreign:
        stalled.faults.stall = True
        foreign.faults.other_network = True
        db, pub = tmp_path / "db", tmp_path / "pub"
        # the network most servers report wins, the first listed on a tie
        res = run("sync", "--db", db, "--beacon-api", stalled.url, "--beacon-api",
                  good.url, "--beacon-api", foreign.url, "--publish", pub, "--once",
                  "--timeout", 0.5, "--retry-cap", 2, "--json")
        assert res.exit_code == 0, res.stderr
        published_ok(pub, sample_files)
        servers = {s["url"]: s for s in json.loads(res.stdout)["servers"]}
        assert servers[foreign.url]["state"] == "dropped"
        assert "another network" in servers[foreign.url]["last_error"]
        assert servers[stalled.url]["state"] != "dropped"
        assert servers[stalled.url]["failures"] >= 1
        assert "timed out" in servers[stalled.url]["last_error"]
        assert servers[good.url]["state"] == "ok"


def test_a_store_and_servers_of_another_network_is_bad_input(server, tmp_path):
    db, pub = synced(server, tmp_path)
    before = dump(db)
    server.faults.other_network = True
    res = run("sync", "--db", db, "--beacon-api", server.url, "--once")
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and "another network" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert dump(db) == before


def test_metrics_port_serves_prometheus_counters(server, tmp_path):
    import urllib.request

    server.finalized_epoch = 64
    db = tmp_path / "db"
    p = start(["sync", "--db", db, "--beacon-api", server.url, "--poll-interval", 0.2,
               "--metrics-port", 0])
    try:
        url = None
        for line in p.stderr:
            if line.startswith("metrics on "):
                url = line.split()[2]
            if "stage follow" in line and url:
                break
        assert url, "no metrics line"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = urllib.request.urlopen(url, timeout=10).read().decode()
            if "era_sync_newest_slot 512.0" in text:
                break
            time.sleep(0.2)
        assert 'era_sync_stage{stage="follow"} 1.0' in text
        assert "era_sync_finalized_slot 512.0" in text
        assert "era_sync_newest_slot 512.0" in text
        assert f'era_sync_server_failures{{url="{server.url}"}} 0.0' in text
        assert "# TYPE era_sync_blocks_total counter" in text
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130


def test_a_server_serving_a_broken_chain_is_dropped_the_other_finishes(fixture_dir,
                                                                      tmp_path,
                                                                      sample_files):
    with BeaconApiServer(fixture_dir) as good, BeaconApiServer(fixture_dir) as liar:
        good.finalized_epoch = liar.finalized_epoch = 64
        db, pub = tmp_path / "db", tmp_path / "pub"
        res = run("sync", "--db", db, "--beacon-api", good.url, "--publish", pub, "--once")
        assert res.exit_code == 0, res.stderr
        good.finalized_epoch = liar.finalized_epoch = 128
        liar.faults.bad_link_slot = 700  # a block whose parent_root does not link
        res = run("sync", "--db", db, "--beacon-api", liar.url, "--beacon-api", good.url,
                  "--publish", pub, "--once", "--json")
        assert res.exit_code == 0, res.stderr
        servers = {s["url"]: s for s in json.loads(res.stdout)["servers"]}
        assert servers[liar.url]["state"] == "dropped"
        assert "does not link" in servers[liar.url]["last_error"]
        published_ok(pub, sample_files)


def test_a_failing_server_waits_longer_each_time_up_to_the_cap():
    from era_tools.sync.pipeline import Server

    s = Server("http://x", None)
    delays = [s.failed("timed out", 0.0, 1.0, 60.0) for _ in range(9)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert not s.dropped and s.state(0.0).startswith("retry in")
    assert s.usable(61.0)
    s.ok()
    assert s.failures == 0 and s.state(0.0) == "ok"


def test_an_era_archive_as_the_node_once_terminates(sample_host, tmp_path, sample_files):
    """`era serve` answers the Beacon API from era files: it holds the state at its finalized
    slot but not the block there (that block begins the next era).  --once still ends, with
    every era published and the unheld slot left uncovered."""
    db, pub = tmp_path / "db", tmp_path / "pub"
    res = run("sync", "--db", db, "--beacon-api", sample_host.url, "--publish", pub, "--once",
              "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["covered"] == [[0, 1023]] and out["missing_states"] == []
    published_ok(pub, sample_files)
    for f in sample_files:
        assert (pub / f.name).read_bytes() == f.read_bytes()


def test_history_from_an_era_host_url_then_follow(server, sample_host, tmp_path,
                                                  sample_files):
    """--era-dir URL: the host's era files are mirrored into the store directory and
    front-filled; the checkpoint at the node's finalized slot links to them, nothing is
    backfilled, and every era is published."""
    server.finalized_epoch = 128
    db, pub = tmp_path / "db", tmp_path / "pub"
    res = run("sync", "--db", db, "--beacon-api", server.url, "--era-dir", sample_host.url,
              "--publish", pub, "--once", "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["covered"] == [[0, 1024]]
    assert {f.name for f in sample_files} <= set(os.listdir(db / "eras"))
    published_ok(pub, sample_files)


def test_once_publishes_into_a_bucket_like_a_local_publish_dir(server, s3, tmp_path,
                                                               sample_files):
    """--publish s3://bucket/prefix: the bucket's objects equal a local --publish DIR run's
    files byte for byte (eras, spec.json, genesis.json, then checksums.txt and index.json);
    a rerun uploads nothing."""
    url = f"{s3.url}/minimal"
    local = tmp_path / "pub"
    res = run("sync", "--db", tmp_path / "db-local", "--beacon-api", server.url, "--publish",
              local, "--once", "--json")
    assert res.exit_code == 0, res.stderr
    published_ok(local, sample_files)

    def sync_to_bucket(*flags):
        p = start(["sync", "--db", tmp_path / "db", "--beacon-api", server.url, "--publish",
                   url, "--once", *flags])
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        return out, err

    out, err = sync_to_bucket("--json")
    out = json.loads(out)
    assert out["eras_published"] == ERAS and out["newest_slot"] == 1024
    keys = s3.keys("minimal/")
    assert sorted(keys) == sorted(f"minimal/{n}" for n in os.listdir(local))
    for n in os.listdir(local):
        assert s3.get(f"minimal/{n}") == (local / n).read_bytes(), n
    out, err = sync_to_bucket()
    assert "synced to slot 1024" in out and "0 slots" in out
    assert "sync: stage follow" in err and "uploaded" not in err
    assert s3.keys("minimal/") == keys
    # files of the local copy a run did not upload (killed after writing them, or another
    # prefix) are uploaded by the next run's first step
    url = f"{s3.url}/again"
    out, err = sync_to_bucket()
    assert f"uploaded {len(keys)} objects to {url}" in err
    for n in os.listdir(local):
        assert s3.get(f"again/{n}") == (local / n).read_bytes(), n
