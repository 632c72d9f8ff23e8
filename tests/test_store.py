"""The chain store: schema, network check, atomic commits, anchor, read-only beside a writer."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace

import pytest
from click.testing import CliRunner

from era_tools.cli import main
from era_tools.config import get_network
from era_tools.errors import StoreError
from era_tools.store import ChainStore, schema
from era_tools.store.db import KV

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def r(n: int) -> bytes:
    return n.to_bytes(32, "big")


def test_keys_sort_by_slot_and_table():
    keys = [schema.index_key(s) for s in (0, 1, 255, 256, 2**40)]
    assert keys == sorted(keys)
    assert schema.index_key(256) == b"i" + (256).to_bytes(8, "big")
    assert schema.slot_of_key(schema.state_key(8192)) == 8192
    prefixes = list(schema.TABLES)
    assert len(set(prefixes)) == len(prefixes) and all(len(p) == 1 for p in prefixes)
    assert schema.add_range([(0, 9)], 10, 20) == [(0, 20)]
    assert schema.add_range([(0, 9)], 30, 40) == [(0, 9), (30, 40)]
    assert schema.gaps([(0, 9), (30, 40)]) == [(10, 29)]


def test_fresh_store_writes_nothing_until_first_commit(tmp_path, network):
    s = ChainStore.open(tmp_path / "db", network)
    assert s.dump() == []
    s.close()
    s = ChainStore.open(tmp_path / "db", network)
    s.put_blocks_batch(blocks=[(0, r(1), b"\0" * 32, b"framed0")], cover=(0, 0))
    keys = {k for k, _ in s.dump()}
    assert schema.meta_key(schema.META_SCHEMA_VERSION) in keys
    assert schema.index_key(0) in keys and schema.block_key(r(1)) in keys
    s.close()


def test_a_store_made_by_a_run_that_imports_nothing_is_removed(tmp_path, network):
    """A run that fails before its first import (a dead node, a refused checkpoint) leaves no
    empty store behind; a directory that was there before, or a store that committed, stays."""
    s = ChainStore.open(tmp_path / "new", network)
    s.close()
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    ChainStore.open(tmp_path / "mine", network).close()
    assert (tmp_path / "mine").is_dir()  # not made here: left as it was (plus LevelDB's files)
    with ChainStore.open(tmp_path / "kept", network) as s:
        s.put_blocks_batch(empty_slots=[3], cover=(3, 3))
    with ChainStore.open(tmp_path / "kept", readonly=True) as s:
        assert s.index_entry(3) == b""


def test_a_store_killed_before_its_first_write_reads_as_empty_and_reruns(tmp_path, network,
                                                                         sample_dir):
    """SIGKILL between making the store and its first write (found by the fault campaign's
    checkpoint-sync kills) leaves an empty LevelDB with no metadata: readers say so in one
    line, and the rerun fills it as a new store."""
    KV.open(str(tmp_path / "db")).close()   # what the killed run left
    with pytest.raises(StoreError, match=r"an empty chain store \(a run stopped before its "
                                         r"first write\); rerun the command that made it"):
        ChainStore.open(tmp_path / "db", readonly=True)
    res = CliRunner().invoke(main, ["status", "--db", str(tmp_path / "db"), "--config",
                                    str(sample_dir / "spec.json")])
    assert res.exit_code != 0 and "an empty chain store" in res.output
    assert "Traceback" not in res.output
    with ChainStore.open(tmp_path / "db", network) as s:
        s.put_blocks_batch(empty_slots=[5], cover=(5, 5))
    with ChainStore.open(tmp_path / "db", readonly=True) as s:
        assert s.index_entry(5) == b""


def test_other_network_is_a_store_error(tmp_path, network):
    with ChainStore.open(tmp_path / "db", network) as s:
        s.put_blocks_batch(empty_slots=[5], cover=(5, 5))
    with pytest.raises(StoreError, match="genesis_validators_root"):
        ChainStore.open(tmp_path / "db", replace(network, genesis_validators_root=b"\x11" * 32))
    with pytest.raises(StoreError, match="holds network minimal"):
        ChainStore.open(tmp_path / "db", get_network("mainnet"))
    # no network given: the stored one
    with ChainStore.open(tmp_path / "db") as s:
        assert s.network.genesis_validators_root == network.genesis_validators_root
        assert s.network.forks == network.forks


def test_anchor_ranges_and_block_roots(tmp_path, network):
    with ChainStore.open(tmp_path / "db", network) as s:
        # a "checkpoint" range on top first
        b = s.batch()
        b.put_block(100, r(100), r(99), b"f100")
        b.put_empty(101)
        b.cover(100, 101)
        s.commit(b)
        a = s.anchor
        assert (a.oldest_block_slot, a.oldest_block_root, a.oldest_block_parent) == (
            100, r(100), r(99))
        assert (a.newest_slot, a.newest_root) == (101, r(100))
        # then history from genesis, with a gap
        b = s.batch()
        b.put_block(0, r(1), b"\0" * 32, b"f0")
        b.put_empty(1)
        b.put_block(2, r(2), r(1), b"f2")
        b.cover(0, 2)
        s.commit(b)
        assert s.covered_ranges() == [(0, 2), (100, 101)]
        assert s.gaps() == [(3, 99)]
        assert s.anchor.oldest_block_slot == 100  # oldest block of the newest range
        assert s.block_root_at(1) == r(1) and s.block_root_at(2) == r(2)
        assert s.block_root_at(101) == r(100)
        assert s.block_root_at(50) is None
        assert s.index_entry(1) == b"" and s.index_entry(3) is None
        assert s.get_summary(r(2)) == (2, r(1))
        assert s.get_block_framed(r(2)) == b"f2"
        assert s.get_block_framed(r(77)) is None


def test_status_cli(tmp_path, network):
    with ChainStore.open(tmp_path / "db", network) as s:
        s.put_blocks_batch(blocks=[(0, r(1), b"\0" * 32, b"x")], empty_slots=[1], cover=(0, 1))
        b = s.batch()  # and two blocks in a block file, as backfill and pull write them
        b.put_blocks_file([(2, r(2), r(1), b"yy"), (3, r(3), r(2), b"zzz")], "2-3")
        b.cover(2, 3)
        s.commit(b)
        assert s.get_block_framed(r(3)) == b"zzz"
    res = CliRunner().invoke(main, ["status", "--db", str(tmp_path / "db"), "--json"])
    assert res.exit_code == 0, res.output
    import json

    info = json.loads(res.output)
    assert info["network"] == "minimal" and info["covered"] == [[0, 3]]
    assert info["tables"]["index"]["entries"] == 4
    assert info["tables"]["blocks"]["entries"] == 1 and info["tables"]["block_refs"]["entries"] == 2
    assert info["block_files"] == 1 and info["referenced_files"] == 0
    res = CliRunner().invoke(main, ["status", "--db", str(tmp_path / "db")])
    assert "blocks:   1 in LevelDB, 2 referenced in 0 era files and 1 block files" in res.output
    res = CliRunner().invoke(main, ["status", "--db", str(tmp_path / "nope")])
    assert res.exit_code == 2
    assert "no chain store here" in res.output


def test_status_names_a_state_off_an_era_boundary_by_its_slot(tmp_path, network):
    from era_tools import framing

    with ChainStore.open(tmp_path / "db", network) as s:
        b = s.batch()
        for slot in (0, 64, 128, 200):  # 200: a checkpoint state (an epoch, not an era)
            b.put_state(slot, framing.compress(slot.to_bytes(8, "little") * 30))
        s.commit(b)
    res = CliRunner().invoke(main, ["status", "--db", str(tmp_path / "db")])
    assert res.exit_code == 0, res.output
    # was "4 era-boundary states (eras 0..3)": slot 200 is no era boundary, era 3 has none
    assert ("states:   3 era-boundary states (eras 0..2), 1 checkpoint state between era "
            "boundaries (slot 200)") in res.output.splitlines()
    res = CliRunner().invoke(main, ["status", "--db", str(tmp_path / "db"), "--json"])
    import json

    info = json.loads(res.output)
    assert info["era_states"] == [0, 1, 2] and info["other_states"] == [200]


WRITER = textwrap.dedent("""
    import sys, time
    from era_tools.store.db import KV
    kv = KV.open(sys.argv[1])
    print("ready", flush=True)
    i = 0
    deadline = time.time() + float(sys.argv[2])
    while time.time() < deadline:
        # one batch: 50 keys of 2 KB and a counter that says how many batches exist
        puts = {b"x%08d-%02d" % (i, j): bytes([i % 251]) * 2048 for j in range(50)}
        puts[b"count"] = str(i + 1).encode()
        kv.write(puts)
        i += 1
    kv.close()
    print("done", i, flush=True)
""")


def test_readonly_snapshot_beside_a_live_writer(tmp_path):
    """A second process holds the LevelDB lock and writes batches (flushing memtables and
    compacting as it goes); read-only opens in this process see a consistent prefix."""
    db = str(tmp_path / "db")
    p = subprocess.Popen([sys.executable, "-c", WRITER, db, "4"], stdout=subprocess.PIPE,
                         text=True, cwd=ROOT)
    try:
        assert p.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError, match="in use by another process"):
            KV.open(db)
        seen = []
        while p.poll() is None and len(seen) < 15:
            kv = KV.open(db, readonly=True)
            try:
                if kv.snapshot_dir is None:  # the writer finished meanwhile
                    break
                count = kv.get(b"count")
                n = int(count) if count else 0
                keys = sum(1 for _ in kv.iterate(b"x", include_value=False))
                assert keys == 50 * n, (keys, n)
                seen.append(n)
            finally:
                kv.close()
            time.sleep(0.1)
    finally:
        out, _ = p.communicate(timeout=30)
    assert p.returncode == 0, out
    assert len(seen) >= 3 and seen == sorted(seen) and seen[-1] > 0
    assert not [n for n in os.listdir(tmp_path) if ".snapshot-" in n]  # cleaned up
    kv = KV.open(db, readonly=True)  # no writer now: direct open
    assert kv.snapshot_dir is None
    # the snapshots never damaged the writer's own files
    n = int(kv.get(b"count"))
    assert sum(1 for _ in kv.iterate(b"x", include_value=False)) == 50 * n
    kv.close()


def _era_table_store(tmp_path, network):
    """A store with era tables for slots [64, 127] and [128, 191] (minimal: SPHR 64) and
    per-slot entries below them, built through Batch.put_era_refs."""
    import numpy as np

    s = ChainStore.open(tmp_path / "db", network)
    b = s.batch()
    b.put_block(62, r(62), r(61), b"f62")
    b.put_empty(63)
    b.cover(62, 63)
    s.commit(b)
    # era 2: blocks at 64, 65, 70; era 3: blocks at 130 and 191 (128, 129 empty)
    roots, last = [], r(62)
    pos = np.zeros(128, dtype=np.int64)
    for i, slot in enumerate(range(64, 192)):
        if slot in (64, 65, 70, 130, 191):
            pos[i] = 1000 + slot
            last = r(slot)
        roots.append(np.frombuffer(last, dtype=np.uint8))
    roots = np.array(roots)
    b = s.batch()
    fid = b.file_id(__file__)  # any existing file stands in for an era file here
    b.put_era_refs(64, fid, pos[:64], roots[:64], r(62))
    b.put_era_refs(128, fid, pos[64:], roots[64:], r(70))
    b.cover(64, 191)
    s.commit(b)
    return s


def test_era_tables_read_like_per_slot_entries(tmp_path, network):
    s = _era_table_store(tmp_path, network)
    try:
        assert s.covered_ranges() == [(62, 191)]
        a = s.anchor
        assert (a.oldest_block_slot, a.oldest_block_root, a.oldest_block_parent) == (
            62, r(62), r(61))
        assert (a.newest_slot, a.newest_root) == (191, r(191))
        assert s.index_entry(64) == r(64) and s.index_entry(66) == b""
        assert s.index_entry(129) == b"" and s.index_entry(191) == r(191)
        assert s.index_entry(192) is None and s.index_entry(61) is None
        got = [(schema.slot_of_key(k), bytes(v)) for k, v in s.iter_index(60, 200)]
        want = [(62, r(62)), (63, b"")] + [
            (x, r(x) if x in (64, 65, 70, 130, 191) else b"") for x in range(64, 192)]
        assert got == want
        back = [(schema.slot_of_key(k), bytes(v)) for k, v in s.iter_index(60, 200,
                                                                           reverse=True)]
        assert back == want[::-1]
        assert [schema.slot_of_key(k) for k, _ in s.iter_index(126, 129)] == [126, 127, 128, 129]
        assert s.block_root_at(69) == r(65) and s.block_root_at(129) == r(70)
        assert s.block_root_at(63) == r(62) and s.block_root_at(300) is None
        assert s.get_summary(r(64)) == (64, r(62))     # the era's first block: first_parent
        assert s.get_summary(r(70)) == (70, r(65))     # others: the previous root
        assert s.get_summary(r(130)) == (130, r(70))
        assert s.has_block(r(191)) and not s.has_block(r(66))
        stats = s.table_stats()
        assert stats["index_eras"]["entries"] == 2 and stats["index"]["entries"] == 2
        assert stats["block_refs"]["entries"] == 5 and stats["summaries"]["entries"] == 1
        assert s.era_file_blocks(64, 127)[2].tolist() == [64, 65, 70]
        assert s.era_file_blocks(0, 63) is None
        # a per-slot entry takes precedence over the era table
        b = s.batch()
        b.put_empty(70)
        s.commit(b)
        assert s.index_entry(70) == b""
        assert [bytes(v) for k, v in s.iter_index(70, 70)] == [b""]
        assert s.era_file_blocks(64, 127) is None
    finally:
        s.close()
    # the same answers from a fresh open (no cache) and from a read-only open
    with ChainStore.open(tmp_path / "db", readonly=True) as s2:
        assert s2.index_entry(191) == r(191) and s2.get_summary(r(130)) == (130, r(70))
        assert s2.schema_version == 2


def test_schema_version_1_store_is_read_and_upgraded(tmp_path, network):
    with ChainStore.open(tmp_path / "db", network) as s:
        s.put_blocks_batch(blocks=[(62, r(62), r(61), b"x")], empty_slots=[63], cover=(62, 63))
    kv = KV.open(tmp_path / "db")
    kv.write({schema.meta_key(schema.META_SCHEMA_VERSION): schema.encode_u64(1)})
    kv.close()
    with ChainStore.open(tmp_path / "db", network) as s:
        assert s.schema_version == 1 and s.index_entry(62) == r(62)
    s = _era_table_store(tmp_path, network)  # writes era tables: the version goes to 2
    s.close()
    kv = KV.open(tmp_path / "db", readonly=True)
    assert schema.decode_u64(kv.get(schema.meta_key(schema.META_SCHEMA_VERSION))) == 2
    kv.close()
    kv = KV.open(tmp_path / "db")
    kv.write({schema.meta_key(schema.META_SCHEMA_VERSION): schema.encode_u64(7)})
    kv.close()
    with pytest.raises(StoreError, match="store schema version 7, this era_tools reads "
                                         "versions 1, 2"):
        ChainStore.open(tmp_path / "db", network)


def test_corrupt_era_table_is_a_store_error(tmp_path, network):
    s = _era_table_store(tmp_path, network)
    s.close()
    kv = KV.open(tmp_path / "db")
    kv.write({schema.era_index_key(64): b"\x00" * 50})
    kv.close()
    with ChainStore.open(tmp_path / "db", readonly=True) as s:
        with pytest.raises(StoreError, match="era index table at slot 64: 50 bytes"):
            s.index_entry(65)


def test_reverse_range_iteration_includes_start(tmp_path):
    """plyvel 1.5.1 alone returns nothing for a reverse range whose only key is `start`."""
    kv = KV.open(tmp_path / "db")
    kv.write([(b"a1", b"1"), (b"a3", b"3"), (b"a5", b"5")])
    assert list(kv.iterate(b"a", start=b"a1", stop=b"a2", reverse=True)) == [(b"a1", b"1")]
    assert list(kv.iterate(b"a", start=b"a3", stop=b"a4", reverse=True,
                           include_value=False)) == [b"a3"]
    assert [k for k, _ in kv.iterate(b"a", start=b"a2", stop=b"a6", reverse=True)] == [
        b"a5", b"a3"]
    assert [k for k, _ in kv.iterate(b"a", start=b"a1", stop=b"a6")] == [b"a1", b"a3", b"a5"]
    kv.close()


def test_a_new_store_creates_missing_parent_directories(tmp_path, network):
    with ChainStore.open(tmp_path / "a" / "b" / "db", network) as s:
        s.put_blocks_batch(empty_slots=[3], cover=(3, 3))
    with ChainStore.open(tmp_path / "a" / "b" / "db", readonly=True) as s:
        assert s.index_entry(3) == b""


def test_referenced_era_files_stay_open_within_a_bound_under_concurrent_readers(
        tmp_path, network, sample_files, monkeypatch):
    """Reference mode reads blocks out of the era files; with 17 files and a cap of 3 open
    handles, eight threads reading every block see the right bytes, and no more than the cap
    (plus the files in use at that moment) stays open."""
    import threading

    from era_tools import era
    from era_tools.frontfill import frontfill
    from era_tools.store import chain

    monkeypatch.setattr(chain, "MAX_OPEN_FILES", 3)
    want = {}
    for p in sample_files:
        with era.EraReader(p) as r:
            head = r.state_head(network.slots_per_historical_root)
            for slot in r.block_slots():
                want[head.block_root_at(slot)] = bytes(r.block_framed(slot))
    with ChainStore.open(tmp_path / "db", network) as store:
        frontfill(store, sample_files, mode="reference")
        assert len(store.referenced_files()) == len(sample_files)
        roots = sorted(want)
        errors, peak = [], [0]

        def read(k):
            try:
                for root in roots[k::8] + roots[::-1][k::8]:
                    assert store.get_block_framed(root) == want[root]
                    peak[0] = max(peak[0], len(store._handles))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=read, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[0]
        assert peak[0] <= 3 + 8 and len(store._handles) <= 3


def _leveldb(path, puts):
    import plyvel

    db = plyvel.DB(str(path), create_if_missing=True)
    for k, v in puts.items():
        db.put(k, v)
    db.close()
    return path


def test_a_leveldb_of_something_else_is_not_a_chain_store(tmp_path, sample_files):
    db = _leveldb(tmp_path / "other", {b"foo": b"bar"})
    for cmd in (["frontfill", "--db", str(db), str(sample_files[1])],
                ["backfill", "--db", str(db), "--peer", "http://127.0.0.1:9"]):
        r = CliRunner().invoke(main, cmd)
        assert r.exit_code == 2, r.output  # frontfill was an internal error (exit 3)
        assert r.stderr.strip().splitlines()[-1] == (
            f"error: {db}: not a chain store (a LevelDB database with other data and no "
            "schema version)")


def test_corrupt_store_metadata_is_a_store_error(tmp_path):
    version = schema.meta_key(schema.META_SCHEMA_VERSION)
    cases = {
        "short_version": ({version: b"\x01\x02"},
                          "corrupt store: schema version is 0x0102, not 8 bytes"),
        "no_network": ({version: schema.encode_u64(schema.SCHEMA_VERSION)},
                       "corrupt store: no network record"),
        "bad_network": ({version: schema.encode_u64(schema.SCHEMA_VERSION),
                         schema.meta_key(schema.META_NETWORK): b"[1]"},
                        "corrupt store: its network record does not load (AttributeError: "),
    }
    for name, (puts, why) in cases.items():
        db = _leveldb(tmp_path / name, puts)
        r = CliRunner().invoke(main, ["status", "--db", str(db)])
        assert r.exit_code == 2, (name, r.output)  # each was an internal error (exit 3)
        assert r.stderr.startswith(f"error: {db}: {why}"), (name, r.stderr)


def test_a_damaged_leveldb_says_why_in_text(tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    (db / "CURRENT").write_text("garbage\n")
    r = CliRunner().invoke(main, ["status", "--db", str(db)])
    assert r.exit_code == 2
    assert r.stderr.startswith(f"error: {db}: cannot open the chain store: Corruption: ")


AS_AN_UNPRIVILEGED_USER = textwrap.dedent("""
    import os, sys
    import plyvel, era_tools.cli.store, era_tools.frontfill, era_tools.store  # noqa: first
    from era_tools.cli import main
    if os.geteuid() == 0:  # root may write anywhere: drop to nobody (imports are done)
        os.setgid(65534)
        os.setuid(65534)
    main(sys.argv[1:])
""")


def test_a_directory_without_write_permission_is_named_as_such(tmp_path, sample_files):
    import tempfile

    base = tempfile.mkdtemp()  # not under pytest's own 0700 directory: nobody must reach it
    try:
        os.chmod(base, 0o755)
        ro = os.path.join(base, "ro")
        os.mkdir(ro, 0o555)
        store = os.path.join(base, "store")
        r = CliRunner().invoke(main, ["frontfill", "--db", store, str(sample_files[0]),
                                      str(sample_files[1])])
        assert r.exit_code == 0, r.output
        for dirpath, dirs, files in os.walk(store):
            os.chmod(dirpath, 0o555)
            for f in files:
                os.chmod(os.path.join(dirpath, f), 0o444)
        os.chmod(base, 0o555)  # nor can a read-only opener put its snapshot copy beside it

        def era(*args):
            return subprocess.run([sys.executable, "-c", AS_AN_UNPRIVILEGED_USER, *args],
                                  cwd=ROOT, capture_output=True, text=True, timeout=120)

        # was "cannot open the chain store: NotFound: .../LOCK: No such file or directory"
        r = era("frontfill", "--db", os.path.join(ro, "db"), str(sample_files[0]))
        assert r.returncode == 2
        assert r.stderr.splitlines()[-1] == (f"error: {ro}/db: cannot create the chain store's "
                                             "directory: Permission denied")
        # was "the chain store is in use by another process (LevelDB lock held)"
        r = era("frontfill", "--db", store, str(sample_files[0]))
        assert r.returncode == 2
        assert r.stderr.splitlines()[-1] == (f"error: {store}: permission denied: the chain "
                                             "store's directory is not writable")
        # and reading it works (was "...snapshot-...: Permission denied")
        r = era("status", "--db", store)
        assert r.returncode == 0, r.stderr
        assert "covered:  0..63" in r.stdout
    finally:
        for dirpath, dirs, files in os.walk(base):
            os.chmod(dirpath, 0o755)
        import shutil

        shutil.rmtree(base)
