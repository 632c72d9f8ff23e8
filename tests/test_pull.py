"""`era pull` against a real HTTP server speaking the Beacon API over the fixture chain."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from beacon_api_server import BeaconApiServer
from store_dump import dump
from era_tools.cli import main
from era_tools.era import contents_equal
from era_tools.errors import PeerError
from era_tools.sync.pull import node_network
from era_tools.store import ChainStore
from era_tools.sync.peers import BeaconApiClient


@pytest.fixture
def server(fixture_dir):
    with BeaconApiServer(fixture_dir) as srv:
        yield srv


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])




def test_round_trip_pull_then_export_gives_sample_eras(server, tmp_path, sample_dir,
                                                       sample_files):
    db, out = tmp_path / "db", tmp_path / "out"
    res = run("pull", "--beacon-api", server.url, "--db", db, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert (summary["from_slot"], summary["to_slot"]) == (0, 1024)
    assert summary["blocks"] == 890 and summary["states"] == 17
    res = run("export", "--db", db, "--out", out)
    assert res.exit_code == 0, res.output
    names = sorted(os.listdir(out))
    assert names == sorted([f.name for f in sample_files] + ["genesis.json", "spec.json"])
    for f in sample_files:
        assert contents_equal(str(out / f.name), str(f)), f.name
    # rerun: nothing to do, same store
    before = dump(str(db))
    res = run("pull", "--beacon-api", server.url, "--db", db, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["slots_already_stored"] == 1025
    assert dump(str(db)) == before
    res = run("status", "--db", db, "--json")
    info = json.loads(res.output)
    assert info["covered"] == [[0, 1024]] and info["gaps"] == []
    assert info["anchor"]["newest_root"] == \
        "0x3b3a905a95c4ff2f04bcbb91831d2b46a31505bd30b8bc9034071a250cee99d9"


def test_partial_ranges_resume_and_link(server, tmp_path):
    db = tmp_path / "db"
    assert run("pull", "--beacon-api", server.url, "--db", db, "--from-slot", 130,
               "--to-slot", 200).exit_code == 0
    assert run("pull", "--beacon-api", server.url, "--db", db, "--from-slot", 100,
               "--to-slot", 129, "--batch-slots", 7).exit_code == 0
    with ChainStore.open(db, readonly=True) as s:
        assert s.covered_ranges() == [(100, 200)]
        assert s.has_state(192) and s.has_state(128) and not s.has_state(64)
    res = run("pull", "--beacon-api", server.url, "--db", db, "--to-slot", 2000)
    assert res.exit_code == 2
    assert "past the node's finalized slot 1024" in res.output


def test_block_that_does_not_link_commits_nothing(server, tmp_path):
    server.faults.bad_link_slot = 40
    db = tmp_path / "db"
    res = run("pull", "--beacon-api", server.url, "--db", db, "--from-slot", 32,
               "--to-slot", 63, "--batch-slots", 64)
    assert res.exit_code == 1
    line = res.output.strip().splitlines()[-1]
    assert line.startswith(f"error: {server.url}/eth/v2/beacon/blocks/40: block "
                           "parent_root 0x6666")
    assert "does not link to the previous block 0x" in line
    assert dump(str(db)) == []


def test_a_fork_that_links_but_is_not_finalized_writes_nothing(server, tmp_path):
    """A node that serves another fork from slot 44 on (every root and link checks out) is
    only caught where the chain must end at its finalized checkpoint root.  The span is
    short (a follow step): nothing of it is written, though it is many --batch-slots long;
    then the honest chain is pulled over the same store."""
    db = tmp_path / "db"
    assert run("pull", "--beacon-api", server.url, "--db", db, "--to-slot", 39).exit_code == 0
    before = dump(str(db))
    server.faults.fork_from = 44
    res = run("pull", "--beacon-api", server.url, "--db", db, "--batch-slots", 8)
    assert res.exit_code == 1, res.output
    line = res.output.strip().splitlines()[-1]
    fin = server.finalized_slot
    assert f"slots 40..{fin}: the chain ends at 0x" in line
    assert f"not at the node's finalized checkpoint root {server.chain.root_at(fin)}; " \
        "nothing of these slots was written" in line
    assert dump(str(db)) == before
    with ChainStore.open(db, readonly=True) as s:
        assert s.anchor.newest_slot == 39
    server.faults.fork_from = None
    assert run("pull", "--beacon-api", server.url, "--db", db).exit_code == 0
    with ChainStore.open(db, readonly=True) as s:
        assert s.block_root_at(50).hex() == server.chain.root_at(50)[2:]


def _stored_roots_are_the_fixtures(db, chain, upto):
    """The store covers [0, u] for u <= upto within one 16-slot batch of it (empty slots
    after the newest block wait for a later block), every root the fixture's."""
    with ChainStore.open(db, readonly=True) as s:
        [(lo, u)] = s.covered_ranges()
        assert lo == 0 and upto - 16 < u <= upto, (u, upto)
        for slot in range(u + 1):
            assert "0x" + s.block_root_at(slot).hex() == chain.root_at(slot), slot


def test_a_long_pull_writes_nothing_off_the_finalized_chain(server, tmp_path):
    """More than PROVE_FIRST_SLOTS (1,025 slots from genesis): each block is checked against
    the finalized state's block_roots (and era states that hash into its historical roots)
    before it is written, so a fork that links is stopped at its first block."""
    from era_tools.sync.pull import PROVE_FIRST_SLOTS

    fin = server.finalized_slot
    assert fin + 1 > PROVE_FIRST_SLOTS
    fork = next(s for s in range(600, fin) if server.chain.block_ssz(s))
    # the last block of a 16-slot batch: its absence shows at the next batch's first block
    hide = next(s for s in range(700, fin) if server.chain.block_ssz(s) and not any(
        server.chain.block_ssz(t) for t in range(s + 1, s // 16 * 16 + 16)))
    server.faults.fork_from = fork
    db = tmp_path / "db"
    res = run("pull", "--beacon-api", server.url, "--db", db, "--batch-slots", 16)
    assert res.exit_code == 1, res.output
    line = res.output.strip().splitlines()[-1]
    assert f"slot {fork}: block 0x" in line and "but the finalized chain's block_roots name " \
        f"{server.chain.root_at(fork)} there (a chain that is not finalized)" in line
    below = fork // 16 * 16 - 1  # whole batches below the fork's
    _stored_roots_are_the_fixtures(db, server.chain, below)
    # a node that claims a block's slot empty is caught at that slot, not at the next block
    server.faults.fork_from, server.faults.hide_slot = None, hide
    db2 = tmp_path / "db2"
    res = run("pull", "--beacon-api", server.url, "--db", db2, "--batch-slots", 16)
    assert res.exit_code == 1, res.output
    assert f"slot {hide}: no block (the latest root is 0x" in res.output
    assert f"the finalized chain's block_roots name {server.chain.root_at(hide)}" in res.output
    _stored_roots_are_the_fixtures(db2, server.chain, hide // 16 * 16 - 1)
    server.faults.hide_slot = None
    for d in (db, db2):
        res = run("pull", "--beacon-api", server.url, "--db", d, "--json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["linked_only"] == []
        _stored_roots_are_the_fixtures(d, server.chain, fin)


def test_a_long_pull_fetches_each_era_state_while_the_era_before_is_pulled(server, tmp_path,
                                                                            monkeypatch):
    """A long pull needs each older era's boundary state before that era's blocks: it is
    fetched in a thread while the era before is pulled (not in between, where the pull would
    wait for it), once, and the store is the same."""
    import threading

    from era_tools.sync import pull as P

    events, fetched = [], []
    real_fetch, real_blocks, real_start = P._fetch_state, P._pull_blocks, \
        P._StatePrefetch.start

    def fetch(store, api, net, slot, allow_404):
        fetched.append((slot, threading.current_thread().name))
        return real_fetch(store, api, net, slot, allow_404)

    def blocks(store, peer, net, first, last, *a, **k):
        events.append(("blocks", first, last))
        return real_blocks(store, peer, net, first, last, *a, **k)

    def start(self, slot):
        events.append(("prefetch", slot))
        return real_start(self, slot)

    monkeypatch.setattr(P, "_fetch_state", fetch)
    monkeypatch.setattr(P, "_pull_blocks", blocks)
    monkeypatch.setattr(P._StatePrefetch, "start", start)
    db = tmp_path / "db"
    res = run("pull", "--beacon-api", server.url, "--db", db, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["states"] == 17 and out["linked_only"] == []
    fin, sphr = server.finalized_slot, 64
    _stored_roots_are_the_fixtures(db, server.chain, fin)
    # eras 2..15 (their states at 128..960) are prefetched, each just before the blocks of
    # the era below it are pulled; era 16's slots are named by the finalized state (1024)
    starts = [(k, ev[1]) for k, ev in enumerate(events) if ev[0] == "prefetch"]
    assert [slot for _, slot in starts] == list(range(2 * sphr, fin, sphr))
    for k, slot in starts:
        assert events[k + 1] == ("blocks", slot - 2 * sphr, slot - sphr - 1)
    assert sorted(s for s, t in fetched if t.startswith("state-prefetch")) == \
        list(range(2 * sphr, fin, sphr))
    # each state fetched once; the finalized one twice (checked first, stored last)
    slots = [s for s, _ in fetched]
    assert sorted(slots) == list(range(0, fin, sphr)) + [fin, fin]


def test_a_long_pull_without_the_finalized_state_says_so(server, tmp_path):
    server.finalized_epoch = 127  # slot 1016: the server has no state there (404)
    db = tmp_path / "db"
    res = run("pull", "--beacon-api", server.url, "--db", db, "--to-slot", 1000)
    assert res.exit_code == 0, res.output
    assert "slots 0..1000: checked by their links only" in res.output
    _stored_roots_are_the_fixtures(db, server.chain, 1000)
    # slot 128 is empty: the state there is bound to the finalized block by its header only,
    # so the state at the block's own slot is asked for (this node has none: links only)
    server.finalized_epoch = 16
    db2 = tmp_path / "db2"
    res = run("pull", "--beacon-api", server.url, "--db", db2, "--to-slot", 100, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["linked_only"] == [[0, 100]]


def test_a_long_pull_stores_only_states_that_hash_to_the_finalized_chains_roots(server,
                                                                                tmp_path):
    """An era state whose block_roots and state_roots are right but whose other bytes are
    not is refused before it is stored: below the finalized state's window by the next era
    state's state_roots[0], inside it by the finalized state's state_roots."""
    for slot, stored_upto in ((128, 127), (960, 959)):
        server.faults.bad_state_tail = slot
        db = tmp_path / f"db{slot}"  # (a rerun would be a short span: no state roots)
        res = run("pull", "--beacon-api", server.url, "--db", db)
        assert res.exit_code == 1, res.output
        assert f"/states/{slot}: the state hashes to 0x" in res.output
        assert f"the finalized chain's state_roots name 0x" in res.output
        assert f"at slot {slot} (a state of another chain, or altered)" in res.output
        with ChainStore.open(db, readonly=True) as s:
            assert not s.has_state(slot) and s.has_state(slot - 64)
            assert s.covered_ranges()[0][1] >= stored_upto
    server.faults.bad_state_tail = None
    assert run("pull", "--beacon-api", server.url, "--db", db).exit_code == 0
    with ChainStore.open(db, readonly=True) as s:
        assert s.state_slots() == list(range(0, 1025, 64))


def test_state_whose_block_roots_disagree_is_refused(server, tmp_path):
    # a long pull checks era 1's state against the finalized state before era 1's blocks
    server.faults.bad_state_slot = 64
    db = tmp_path / "db"
    res = run("pull", "--beacon-api", server.url, "--db", db, "--from-slot", 0,
               "--to-slot", 64)
    assert res.exit_code == 1
    assert "/states/64: era 1's block_roots and state_roots hash to 0x" in res.output
    assert "(a state of another chain)" in res.output
    with ChainStore.open(db, readonly=True) as s:  # the genesis state, no block
        assert s.covered_ranges() == [] and s.state_slots() == [0]
    # a short step to the finalized slot checks the state against the blocks it wrote
    server.faults.bad_state_slot = None
    assert run("pull", "--beacon-api", server.url, "--db", db, "--to-slot", 1015).exit_code == 0
    server.faults.bad_state_slot = 1024
    res = run("pull", "--beacon-api", server.url, "--db", db)
    assert res.exit_code == 1
    assert "state block_roots[5] (slot 965) is 0x7777" in res.output
    with ChainStore.open(db, readonly=True) as s:
        assert not s.has_state(1024)


def test_node_on_another_network(server, tmp_path, sample_dir):
    db = tmp_path / "db"
    assert run("pull", "--beacon-api", server.url, "--db", db, "--to-slot", 10).exit_code == 0
    before = dump(str(db))
    server.faults.other_network = True
    res = run("pull", "--beacon-api", server.url, "--db", db, "--to-slot", 20)
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1] == (
        f"error: {db}: the store holds genesis_validators_root 0x83431ec7fcf92cfc44947fc0418e8"
        f"31c25e1d0806590231c439830db7ad54fda, expected 0x{'ab' * 32} (another network)")
    assert dump(str(db)) == before
    # an expected network given on the command line, fresh store: nothing created
    res = run("pull", "--beacon-api", server.url, "--db", tmp_path / "db2", "--config",
              sample_dir / "spec.json")
    assert res.exit_code == 2
    assert "(another network)" in res.output
    assert dump(str(tmp_path / "db2")) == []


def test_a_named_network_must_match_the_nodes_fork_schedule(server, tmp_path):
    """The built-in `minimal` is the spec's config with no fork scheduled; the fixture node
    runs a minimal chain with forks at epochs 1/2/3: refused, naming the first differing key,
    for pull and checkpoint-sync alike, and no store is created."""
    for cmd in (["pull", "--to-slot", 10], ["checkpoint-sync"]):
        res = run(cmd[0], "--beacon-api", server.url, "--db", tmp_path / "db", "--network",
                  "minimal", *cmd[1:])
        assert res.exit_code == 2, res.output
        assert res.output.strip().splitlines()[-1] == (
            f"error: {server.url}: the node's /eth/v1/config/spec has ALTAIR_FORK_EPOCH=1, "
            "network minimal has 18446744073709551615 (another fork schedule or preset; pass "
            "the node's spec with --config, or give no --network)")
        assert dump(str(tmp_path / "db")) == []
    # a preset value that sizes a scheduled fork's types counts too
    server.chain.spec = dict(server.chain.spec, MAX_WITHDRAWALS_PER_PAYLOAD="16")
    from conftest import SAMPLE_ERAS
    from era_tools.config import load_config, spec_mismatch

    assert spec_mismatch(load_config(SAMPLE_ERAS / "spec.json"), server.chain.spec) == (
        "MAX_WITHDRAWALS_PER_PAYLOAD", "4", "16")
    res = run("pull", "--beacon-api", server.url, "--db", tmp_path / "db", "--config",
              SAMPLE_ERAS / "spec.json", "--to-slot", 10)
    assert res.exit_code == 2 and "MAX_WITHDRAWALS_PER_PAYLOAD=16" in res.output


class CountingServer(BeaconApiServer):
    """Records the path of every request."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.paths = []

    def _route(self, h, n):
        self.paths.append(h.path)
        return super()._route(h, n)


def test_a_rerun_resumes_after_the_newest_stored_slot(tmp_path, fixture_dir):
    db = tmp_path / "db"
    with CountingServer(fixture_dir) as srv:
        assert run("pull", "--beacon-api", srv.url, "--db", db, "--to-slot", 1000).exit_code == 0
        srv.paths.clear()
        res = run("pull", "--beacon-api", srv.url, "--db", db, "--json")
        assert res.exit_code == 0, res.output
        blocks = sorted(int(p.rsplit("/", 1)[1]) for p in srv.paths
                        if p.startswith("/eth/v2/beacon/blocks/"))
        states = [p for p in srv.paths if p.startswith("/eth/v2/debug/beacon/states/")]
    assert blocks == list(range(1001, 1025))  # not from the era boundary 960
    assert states == ["/eth/v2/debug/beacon/states/1024"]
    assert json.loads(res.output)["slots_already_stored"] == 1001
    with ChainStore.open(db, readonly=True) as s:
        assert s.covered_ranges() == [(0, 1024)] and s.has_state(1024)


def test_syncing_node_is_refused(server, tmp_path):
    server.faults.syncing = True
    res = run("pull", "--beacon-api", server.url, "--db", tmp_path / "db")
    assert res.exit_code == 2
    assert "the node is syncing" in res.output
    assert dump(str(tmp_path / "db")) == []


def test_json_only_node_and_flaky_node(server, tmp_path, fixture_dir):
    server.faults.json_only = True
    server.faults.fail_every = 5  # every 5th block request is an HTTP 500
    res = run("pull", "--beacon-api", server.url, "--db", tmp_path / "a", "--to-slot", 40,
              "--retries", 4)
    assert res.exit_code == 0, res.output
    server.faults.json_only = False
    server.faults.fail_every = 0
    assert run("pull", "--beacon-api", server.url, "--db", tmp_path / "b",
               "--to-slot", 40).exit_code == 0
    assert dump(str(tmp_path / "a"))[1:] and dump(str(tmp_path / "a")) == \
        dump(str(tmp_path / "b"))


def test_client_errors_are_peer_errors(tmp_path):
    api = BeaconApiClient("http://127.0.0.1:9", timeout=0.5, retries=2, backoff=0.01)
    with pytest.raises(PeerError, match=r"127.0.0.1:9/eth/v1/config/spec: failed after 2 tries"):
        node_network(api)


def test_block_roots_from_bytes_match_the_manifest_and_py_ssz(fixture_dir):
    """pull hashes blocks from their bytes (ssz.fast); every fixture block's root is the one
    the client reported, and a sample of each fork agrees with py-ssz decoding."""
    from era_tools import ssz
    from era_tools.sync.pull import block_root_of

    manifest = json.loads((fixture_dir / "manifest.json").read_text())
    seen = set()
    for b in manifest["blocks"]:
        if not b.get("file"):
            continue
        data = (fixture_dir / b["file"]).read_bytes()
        slot, root, parent = block_root_of(data, b["fork"], "minimal", b["file"])
        assert (slot, "0x" + root.hex(), "0x" + parent.hex()) == (
            b["slot"], b["root"], b["parent_root"])
        if b["fork"] not in seen:
            seen.add(b["fork"])
            assert root == ssz.block_root(ssz.decode_block(data, b["fork"], "minimal"))
    assert seen == {"phase0", "altair", "bellatrix", "capella"}


def test_malformed_block_is_one_clear_error_and_commits_nothing(server, tmp_path):
    real = server.chain.block_ssz

    def block_ssz(slot):
        got = real(slot)
        if slot == 21 and got is not None:
            return got[0], got[1][:150]  # truncated inside the fixed part of the message
        return got

    server.chain.block_ssz = block_ssz
    db = tmp_path / "db"
    res = run("pull", "--beacon-api", server.url, "--db", db, "--from-slot", 16,
              "--to-slot", 31)
    assert res.exit_code == 2, res.output
    line = res.output.strip().splitlines()[-1]
    assert line.startswith(f"error: {server.url}/eth/v2/beacon/blocks/21: ")
    assert "BeaconBlock" in line and "Traceback" not in res.output
    assert dump(str(db)) == []
    # a wrong message offset
    server.chain.block_ssz = lambda slot: (real(slot)[0], b"\x65" + real(slot)[1][1:]) \
        if slot == 18 else real(slot)
    res = run("pull", "--beacon-api", server.url, "--db", db, "--from-slot", 16,
              "--to-slot", 31)
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1] == (
        f"error: {server.url}/eth/v2/beacon/blocks/18: SignedBeaconBlock message offset 101, "
        "expected 100")
    assert dump(str(db)) == []


def test_states_and_blocks_are_files_beside_the_tables(server, tmp_path, sample_dir):
    """pull keeps era-boundary states and blocks out of LevelDB: each state is an e2store file
    in <db>/states/, each batch's blocks one in <db>/blocks/, written before the batch that
    references them; the store can be moved, read beside a writer, and stale files left by a
    killed run are replaced or removed."""
    from era_tools.era import EraReader
    from era_tools.era import contents_equal as same
    from era_tools.store import schema

    db = tmp_path / "db"
    os.makedirs(db / "states")
    (db / "states" / "000000000128.e2s").write_bytes(b"left by a killed run")
    os.makedirs(db / "blocks")
    (db / "blocks" / "000000000001-000000000003.e2s").write_bytes(b"left by a killed run")
    res = run("pull", "--beacon-api", server.url, "--db", db, "--to-slot", 192)
    assert res.exit_code == 0, res.output
    assert sorted(os.listdir(db / "states")) == [f"{s:012d}.e2s" for s in (0, 64, 128, 192)]
    with ChainStore.open(db, readonly=True) as s:
        stats = s.table_stats()
        assert stats["states"]["entries"] == 0 and stats["state_refs"]["entries"] == 4
        assert stats["blocks"]["entries"] == 0 and stats["block_refs"]["entries"] > 150
        paths = [json.loads(v)["path"] for _k, v in s.kv.iterate(schema.P_FILE)]
        assert [p for p in paths if p.startswith("states/")] == [
            f"states/{x:012d}.e2s" for x in (0, 64, 128, 192)]
        assert sorted(p for p in paths if p.startswith("blocks/")) == sorted(
            f"blocks/{n}" for n in os.listdir(db / "blocks"))  # the stale one is gone
        assert len(paths) == len(set(paths))
        assert s.disk_bytes() > sum(os.path.getsize(db / "states" / n)
                                    for n in os.listdir(db / "states"))
    moved = tmp_path / "moved"
    os.rename(db, moved)
    holder = ChainStore.open(moved)  # holds the LevelDB lock: the next open is a snapshot
    try:
        with ChainStore.open(moved, readonly=True) as s:
            assert s.kv.snapshot_dir is not None
            with EraReader(sample_dir / "minimal-00002-c3ec0173.era") as r:
                assert s.get_state(128) == r.state_ssz()
        res = run("export", "--db", moved, "--out", tmp_path / "out")
        assert res.exit_code == 0, res.output
    finally:
        holder.close()
    names = sorted(n for n in os.listdir(tmp_path / "out") if n.endswith(".era"))
    assert names == sorted(n for n in os.listdir(sample_dir)
                           if n.endswith(".era") and int(n.split("-")[1]) <= 3)
    for n in names:
        assert same(str(tmp_path / "out" / n), str(sample_dir / n))


class _Answering:
    """A 127.0.0.1 HTTP server answering 200 with routes[path] for GET, 404 otherwise."""

    def __init__(self, routes: dict):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                body = routes.get(self.path)
                self.send_response(200 if body is not None else 404)
                body = (body or "not found").encode()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


SYNCED = {"/eth/v1/node/syncing": '{"data": {"is_syncing": false}}',
          "/eth/v1/beacon/genesis": '{"data": {}}'}


@pytest.mark.parametrize("routes, line", [
    ({"/eth/v1/config/spec": "<html><body>hello</body></html>"},
     "{url}/eth/v1/config/spec: response is not JSON"),
    ({"/eth/v1/config/spec": '{"data": [1]}'},
     "{url}/eth/v1/config/spec: `data` is list, not an object"),
    ({"/eth/v1/config/spec": json.dumps({"data": {"PRESET_BASE": "minimal",
                                                  "GENESIS_FORK_VERSION": "0x00000001"}}),
      **SYNCED, "/eth/v1/beacon/genesis": '{"data": {"genesis_validators_root": "0x12"}}'},
     "{url}: genesis: genesis_validators_root '0x12' is not 32 bytes of hex"),
    ({**SYNCED, "/eth/v1/config/spec": '{"data": {"GENESIS_FORK_VERSION": "0x00000001", '
                                       '"SLOTS_PER_EPOCH": "many"}}'},
     "{url}: config: SLOTS_PER_EPOCH is not an integer: 'many'"),
])
def test_a_node_answering_200_with_nonsense_is_one_line(tmp_path, routes, line):
    with _Answering(routes) as node:
        res = run("pull", "--beacon-api", node.url, "--db", tmp_path / "db", "--retries", 1)
    assert res.exit_code == 2  # was exit 3 (internal error) for a list or "many"; a 1-byte root passed
    assert res.stderr == "error: " + line.format(url=node.url) + "\n"


def test_a_zero_timeout_is_a_usage_error(tmp_path):
    res = run("pull", "--beacon-api", "http://127.0.0.1:9", "--db", tmp_path / "db",
              "--timeout", 0)
    assert res.exit_code == 2  # was an internal error from requests
    assert "Invalid value for '--timeout': 0.0 is not in the range x>0." in res.stderr


def test_an_era_whose_state_no_node_has_is_proven_by_its_block_summary_root(server, tmp_path):
    """`era sync` (missing_states): an era below the finalized state's window whose state the
    node pruned is pulled with nothing committed until all its block roots hash to the
    finalized state's historical_summaries entry of that era."""
    from era_tools.errors import VerificationError
    from era_tools.sync.pull import pull

    server.faults.no_states = frozenset({128, 192})
    api = BeaconApiClient(server.url)
    net = node_network(api)
    fork = next(s for s in range(150, 192) if server.chain.block_ssz(s))
    server.faults.fork_from = fork
    db = tmp_path / "db"
    with ChainStore.open(db, net) as store:
        with pytest.raises(VerificationError, match=r"slots 128\.\.191: era 3's block roots "
                           r"hash to 0x.*, the finalized state's block_summary_root of that "
                           r"era is 0x.*; nothing of these slots was written"):
            pull(store, api, batch_slots=16, missing_states=[])
        assert store.covered_ranges() == [(0, 127)]
        referenced = {os.path.basename(p) for p in os.listdir(db / "blocks")}
        assert not any(n.startswith("000000000128") for n in referenced)
    server.faults.fork_from = None
    missing: list = []
    with ChainStore.open(db, net) as store:
        res = pull(store, api, batch_slots=16, missing_states=missing)
        assert res.linked_only == [] and missing == [128, 192]
        assert store.covered_ranges() == [(0, 1024)]
        for slot in range(1025):
            assert "0x" + store.block_root_at(slot).hex() == server.chain.root_at(slot)
        assert not store.has_state(128) and store.has_state(256)
