"""`era frontfill`: sample_eras/ into a fresh store reproduces sample_eras/ on export; checks;
linking to newer history already in the store."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from click.testing import CliRunner

from beacon_api_server import BeaconApiServer
from era_tools.cli import main
from era_tools import e2store
from era_tools.era import contents_equal
from era_tools.store import ChainStore


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("mode", ["reference", "copy"])
def test_frontfill_then_export_reproduces_sample_eras(tmp_path, era_copy, sample_files, mode):
    db, out = tmp_path / "db", tmp_path / "out"
    res = run("frontfill", "--db", db, "--mode", mode, "--json", era_copy)
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["eras_written"] == list(range(17)) and info["blocks"] == 889
    assert info["anchor"]["covered"] == [[0, 1023]]
    res = run("export", "--db", db, "--out", out)
    assert res.exit_code == 0, res.output
    assert sorted(os.listdir(out)) == sorted([f.name for f in sample_files] +
                                             ["genesis.json", "spec.json"])
    for f in sample_files:
        assert contents_equal(str(out / f.name), str(f))
    with ChainStore.open(db, readonly=True) as s:
        stats = s.table_stats()
        # both modes index eras the same way; copy mode points into the store's own files
        assert stats["block_refs"]["entries"] == 889 and stats["blocks"]["entries"] == 0
        counts = s.referenced_file_counts()
        assert counts == ({"era": 17, "blocks": 0, "states": 0} if mode == "reference" else
                          {"era": 0, "blocks": 16, "states": 17})
        before = s.dump()
    # rerun: everything already there
    res = run("frontfill", "--db", db, "--mode", mode, "--json", era_copy)
    assert json.loads(res.output)["eras_skipped"] == list(range(17))
    with ChainStore.open(db, readonly=True) as s:
        assert s.dump() == before
    if mode == "copy":  # the store no longer needs the era files
        for f in era_copy.iterdir():
            f.unlink()
        res = run("export", "--db", db, "--out", tmp_path / "out2")
        assert res.exit_code == 0, res.output
        for f in sample_files:
            assert contents_equal(str(tmp_path / "out2" / f.name), str(f))


def test_wrong_file_name_root_is_refused_before_writing(tmp_path, era_copy):
    src = era_copy / "minimal-00003-00fea774.era"
    bad = era_copy / "minimal-00003-00fea775.era"
    src.rename(bad)
    res = run("frontfill", "--db", tmp_path / "db", era_copy)
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1] == (
        f"error: {bad}: file name root 00fea775 does not match the root computed from its "
        "state, 00fea774")
    assert not (tmp_path / "db").exists()  # nothing written: not even the store's directory


def test_eras_in_pieces_join(tmp_path, era_copy, sample_dir):
    """Eras 0-1, then 3 (a gap), then 2: the store records the gap, then closes it (era 2
    links to era 1 below and to era 3 above)."""
    db = tmp_path / "db"
    assert run("frontfill", "--db", db, *[era_copy / n for n in sorted(os.listdir(era_copy))
                                          if n.startswith(("minimal-00000", "minimal-00001"))]
               ).exit_code == 0
    res = run("frontfill", "--db", db, era_copy / "minimal-00003-00fea774.era")
    assert res.exit_code == 0, res.output
    with ChainStore.open(db, readonly=True) as s:
        assert s.covered_ranges() == [(0, 63), (128, 191)]
        assert s.gaps() == [(64, 127)]
    res = run("frontfill", "--db", db, era_copy / "minimal-00002-c3ec0173.era")
    assert res.exit_code == 0, res.output
    with ChainStore.open(db, readonly=True) as s:
        assert s.covered_ranges() == [(0, 191)]


def test_link_to_checkpoint_history(tmp_path, era_copy, fixture_dir, sample_files):
    """Pull the top of the chain first (like a checkpoint sync), then front-fill below it:
    the ranges must join, and export must give every era."""
    db = tmp_path / "db"
    with BeaconApiServer(fixture_dir) as srv:
        assert run("pull", "--beacon-api", srv.url, "--db", db, "--from-slot", 900).exit_code == 0
    with ChainStore.open(db, readonly=True) as s:
        assert s.covered_ranges() == [(900, 1024)]
    res = run("frontfill", "--db", db, era_copy)
    assert res.exit_code == 0, res.output
    with ChainStore.open(db, readonly=True) as s:
        assert s.covered_ranges() == [(0, 1024)]
        assert s.anchor.oldest_block_slot == 0
    res = run("export", "--db", db, "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    for f in sample_files:
        assert contents_equal(str(tmp_path / "out" / f.name), str(f))


def test_checkpoint_mismatch_is_fatal_and_writes_nothing(tmp_path, era_copy, network):
    db = tmp_path / "db"
    with ChainStore.open(db, network) as s:
        b = s.batch()
        # a "checkpoint" block at slot 700 whose parent is not the era root at slot 699
        b.put_block(700, b"\x42" * 32, b"\x99" * 32, b"framed")
        b.cover(700, 700)
        s.commit(b)
        before = s.dump()
    res = run("frontfill", "--db", db, era_copy)
    assert res.exit_code == 1
    line = res.output.strip().splitlines()[-1]
    assert line.startswith(f"error: {era_copy / 'minimal-00011-2173730b.era'}: slot 699: era "
                           "root 0x")
    assert line.endswith(f"does not match the parent_root 0x{'99' * 32} of the store's oldest "
                         "block at slot 700 (wrong network or corrupt archive); nothing written")
    with ChainStore.open(db, readonly=True) as s:
        assert s.dump() == before


def test_era_files_of_another_network(tmp_path, era_copy, network):
    from dataclasses import replace

    db = tmp_path / "db"
    other = replace(network, genesis_validators_root=b"\x11" * 32)
    with ChainStore.open(db, other) as s:
        s.put_blocks_batch(empty_slots=[5000], cover=(5000, 5000))
    res = run("frontfill", "--db", db, "--config", era_copy / "spec.json", era_copy)
    assert res.exit_code == 2
    assert "(another network)" in res.output
    shutil.rmtree(db)
    with ChainStore.open(db, other) as s:
        s.put_blocks_batch(empty_slots=[5000], cover=(5000, 5000))
    res = run("frontfill", "--db", db, era_copy)  # network from the config beside the files
    assert res.exit_code == 2


def test_era_tables_answer_like_per_slot_entries(tmp_path, era_copy):
    """Front-fill writes one era table per era (no per-slot `i`/`h` entries); every read of
    the API gives what the per-slot layout (`era_tables=False`) gives."""
    from era_tools.frontfill import frontfill
    from era_tools.store import schema

    res = run("frontfill", "--db", tmp_path / "reference", era_copy)
    assert res.exit_code == 0, res.output
    ref = ChainStore.open(tmp_path / "reference", readonly=True)
    with ChainStore.open(tmp_path / "per-slot", ref.network) as s:
        frontfill(s, [era_copy], era_tables=False)
    cp = ChainStore.open(tmp_path / "per-slot", readonly=True)
    try:
        stats = ref.table_stats()
        assert stats["index_eras"]["entries"] == 16 and stats["index"]["entries"] == 0
        assert stats["summaries"]["entries"] == 0 and stats["block_refs"]["entries"] == 889
        assert cp.table_stats()["index_eras"]["entries"] == 0
        assert ref.anchor == cp.anchor
        assert list(ref.iter_index(0, 1023)) == list(cp.iter_index(0, 1023))
        assert list(ref.iter_index(100, 700, reverse=True)) == \
            list(cp.iter_index(100, 700, reverse=True))
        for slot in range(0, 1026):
            assert ref.index_entry(slot) == cp.index_entry(slot), slot
            assert ref.block_root_at(slot) == cp.block_root_at(slot), slot
        for _k, root in cp.iter_index(0, 1023):
            if root:
                assert ref.get_summary(root) == cp.get_summary(root)
                assert ref.get_block_framed(root) == cp.get_block_framed(root)
        assert ref.get_summary(b"\x55" * 32) is None
        assert ref.era_file_blocks(64, 127) is not None and cp.era_file_blocks(64, 127) is None
        empty = next(schema.slot_of_key(k) for k, v in cp.iter_index(64, 127) if not v)
    finally:
        ref.close()
        cp.close()
    # an era that overlaps slots already indexed is written per slot, and still agrees, in
    # both modes (copy mode copies only the blocks the store lacks into its block file)
    with ChainStore.open(tmp_path / "per-slot", readonly=True) as c:
        first = next((schema.slot_of_key(k), bytes(v)) for k, v in c.iter_index(64, 127) if v)
        held = (first[0], first[1], c.get_summary(first[1])[1], c.get_block_framed(first[1]))
    for mode in ("reference", "copy"):
        mixed = tmp_path / f"mixed-{mode}"
        with ChainStore.open(mixed, ref.network) as s:
            b = s.batch()
            b.put_empty(empty)  # an empty slot of era 2 (as a pull would have stored it)
            b.cover(empty, empty)
            if mode == "copy":
                b.put_block(*held)  # and its first block
                b.cover(held[0], held[0])
            s.commit(b)
            frontfill(s, [era_copy], mode=mode)
            assert s.table_stats()["index_eras"]["entries"] == 15
            if mode == "copy":
                path = next(f["path"] for f in s.referenced_files().values()
                            if f["path"].endswith("era-00002.e2s"))
                with open(path, "rb") as f:  # the block the store held is not copied again
                    n = sum(1 for rec in e2store.iter_records(f, os.path.getsize(path), path)
                            if rec.type == e2store.COMPRESSED_SIGNED_BEACON_BLOCK)
                assert n == sum(1 for _k, v in s.iter_index(64, 127) if v) - 1
        with ChainStore.open(mixed, readonly=True) as s, \
                ChainStore.open(tmp_path / "per-slot", readonly=True) as c:
            assert list(s.iter_index(0, 1023)) == list(c.iter_index(0, 1023))
            assert s.covered_ranges() == [(0, 1023)]
            assert schema.slot_of_key(next(iter(s.iter_index(64, 64)))[0]) == 64
        # export: era 2 (per-slot entries) goes through the index, the others are copied from
        # the era files (or the store's block files); all reproduce sample_eras/
        res = run("export", "--db", mixed, "--out", tmp_path / f"out-{mode}")
        assert res.exit_code == 0, res.output
        for n in os.listdir(era_copy):
            if n.endswith(".era"):
                assert contents_equal(str(tmp_path / f"out-{mode}" / n), str(era_copy / n))


def test_frontfill_keeps_at_most_two_era_files_open(tmp_path, era_copy, network):
    """Mainnet has ~1,600 era files: front-fill must not hold them all open at once."""
    from era_tools.frontfill import frontfill

    def open_eras():
        out = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.endswith(".era"):
                out.append(target)
        return out

    seen = []
    with ChainStore.open(tmp_path / "db", network) as s:
        res = frontfill(s, [era_copy], progress=lambda n: seen.append(len(open_eras())))
    assert len(res.eras_written) == 17 and len(seen) == 16
    assert max(seen) <= 2
    assert open_eras() == []


def test_per_slot_reference_layout_reads_the_same(tmp_path, era_copy, network):
    """frontfill(era_tables=False), the layout before era tables, answers identically."""
    from era_tools.frontfill import frontfill

    with ChainStore.open(tmp_path / "a", network) as a, \
            ChainStore.open(tmp_path / "b", network) as b:
        frontfill(a, [era_copy], check="index")
        frontfill(b, [era_copy], check="index", era_tables=False)
        assert b.table_stats()["index_eras"]["entries"] == 0
        assert b.table_stats()["index"]["entries"] == 1024
        assert list(a.iter_index(0, 1023)) == list(b.iter_index(0, 1023))
        assert a.anchor == b.anchor
        for _k, root in b.iter_index(0, 1023):
            if root:
                assert a.get_summary(root) == b.get_summary(root)


def test_a_directory_without_era_files_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    res = run("frontfill", "--db", tmp_path / "db", tmp_path / "empty")
    assert res.exit_code == 2
    assert res.stderr == f"error: no .era files in {tmp_path / 'empty'}\n"
    assert not (tmp_path / "db").exists()


def test_eras_missing_between_the_files_are_reported(tmp_path, sample_files):
    from click.testing import CliRunner

    from era_tools.cli import main

    db = tmp_path / "db"
    files = [str(sample_files[e]) for e in (0, 1, 5)]
    res = CliRunner().invoke(main, ["frontfill", "--db", str(db), *files])
    assert res.exit_code == 0, res.output
    # was silent: eras 2..4 were neither given nor in the store
    assert ("gap: eras 2..4 not given and not in the store: the store has a gap at slots "
            "64..255") in res.stderr.splitlines()
    res = CliRunner().invoke(main, ["frontfill", "--db", str(db), "--json", *files])
    assert json.loads(res.stdout)["gaps"] == [[2, 4]]
    # once the store holds them, no gap is left to report
    res = CliRunner().invoke(main, ["frontfill", "--db", str(db), "--json",
                                    *[str(sample_files[e]) for e in (0, 2, 3, 4, 5)]])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["frontfill", "--db", str(db), "--json", *files])
    assert json.loads(res.stdout)["gaps"] == []
