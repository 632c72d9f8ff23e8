"""`era export`: missing history is named with a non-zero exit; existing files are skipped; a
different file for an era is never overwritten; export runs beside a writer holding the lock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from click.testing import CliRunner

from era_tools.cli import main
from era_tools.era import contents_equal
from era_tools.store import ChainStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _fill(db, era_copy, *eras):
    files = [era_copy / n for n in sorted(os.listdir(era_copy))
             if n.endswith(".era") and int(n.split("-")[1]) in eras]
    res = run("frontfill", "--db", db, "--mode", "copy", *files)
    assert res.exit_code == 0, res.output


def test_missing_history_is_named(tmp_path, era_copy):
    db, out = tmp_path / "db", tmp_path / "out"
    _fill(db, era_copy, 0, 1, 2, 4)
    res = run("export", "--db", db, "--out", out, "--from-era", 0, "--to-era", 5)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert "error: era 3: blocks of slots 128..191 are not all indexed; no state at slot 192" \
        in lines
    assert "error: era 5: blocks of slots 256..319 are not all indexed; no state at slot 320" \
        in lines
    assert lines[-1] == "error: cannot export era(s) 3, 5: history missing from the store"
    # the complete ones were still written, and nothing partial is visible
    assert sorted(os.listdir(out)) == ["genesis.json", "minimal-00000-83431ec7.era",
                                       "minimal-00001-3a1e96ab.era", "minimal-00002-c3ec0173.era",
                                       "minimal-00004-2cfc1198.era", "spec.json"]
    # without a range: every complete era, exit 0
    res = run("export", "--db", db, "--out", tmp_path / "all")
    assert res.exit_code == 0, res.output
    assert len([n for n in os.listdir(tmp_path / "all") if n.endswith(".era")]) == 4


def test_skips_existing_and_refuses_a_different_file(tmp_path, era_copy):
    db, out = tmp_path / "db", tmp_path / "out"
    _fill(db, era_copy, 0, 1, 2)
    assert run("export", "--db", db, "--out", out).exit_code == 0
    mtimes = {n: os.stat(out / n).st_mtime_ns for n in os.listdir(out)}
    res = run("export", "--db", db, "--out", out, "--json")
    assert res.exit_code == 0
    assert '"written": []' in res.output
    assert {n: os.stat(out / n).st_mtime_ns for n in os.listdir(out)} == mtimes
    # another file for era 2 (e.g. another fork of the chain): refuse, keep it
    os.rename(out / "minimal-00002-c3ec0173.era", out / "minimal-00002-deadbeef.era")
    res = run("export", "--db", db, "--out", out)
    assert res.exit_code == 2
    assert "minimal-00002-deadbeef.era: a different file for era 2 exists" in res.output
    assert os.path.exists(out / "minimal-00002-deadbeef.era")
    assert not os.path.exists(out / "minimal-00002-c3ec0173.era")


def test_a_huge_range_costs_what_the_store_holds_and_is_named_as_runs(tmp_path, era_copy):
    db, out = tmp_path / "db", tmp_path / "out"
    _fill(db, era_copy, 0, 1, 2)
    # was a loop over every era number up to --to-era: full CPU, gigabytes, no end
    res = run("export", "--db", db, "--out", out, "--from-era", 1, "--to-era",
              99999999999999999999)
    assert res.exit_code == 2
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert errors[0] == ("error: eras 3..99999999999999999999: no states at slots "
                         "192..6399999999999999999936 (no such eras stored)")
    assert errors[-1] == ("error: cannot export era(s) 3..99999999999999999999: history "
                          "missing from the store")
    assert len(errors) == 2  # one line per run of eras (was one per era)
    assert sorted(n for n in os.listdir(out) if n.endswith(".era")) == [
        "minimal-00001-3a1e96ab.era", "minimal-00002-c3ec0173.era"]


def test_a_truncated_file_under_the_right_name_is_replaced(tmp_path, era_copy):
    db, out = tmp_path / "db", tmp_path / "out"
    _fill(db, era_copy, 0, 1, 2)
    assert run("export", "--db", db, "--out", out).exit_code == 0
    victim = out / "minimal-00002-c3ec0173.era"
    good = victim.read_bytes()
    victim.write_bytes(good[:len(good) // 2])  # e.g. a copy cut short
    res = run("export", "--db", db, "--out", out)
    assert res.exit_code == 0, res.output
    # was skipped as "already there", truncated
    assert f"replaced {victim}: it was damaged (truncated or not the store's blocks)" \
        in res.output
    assert "exported 1 era files to" in res.output
    assert contents_equal(victim, era_copy / victim.name)


HOLDER = textwrap.dedent("""
    import sys, time
    from era_tools.store import ChainStore
    s = ChainStore.open(sys.argv[1])     # takes the LevelDB lock, like a live pull
    print("locked", flush=True)
    sys.stdin.readline()
    s.close()
""")


def test_export_and_status_beside_a_process_holding_the_store(tmp_path, era_copy,
                                                              sample_dir):
    db, out = tmp_path / "db", tmp_path / "out"
    _fill(db, era_copy, 0, 1, 2, 3)
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert p.stdout.readline().strip() == "locked"
        res = run("frontfill", "--db", db, era_copy)  # a second writer is refused clearly
        assert res.exit_code == 2
        assert "in use by another process" in res.output
        res = run("export", "--db", db, "--out", out)
        assert res.exit_code == 0, res.output
        assert run("status", "--db", db).exit_code == 0
    finally:
        p.communicate("\n", timeout=30)
    eras = [n for n in os.listdir(out) if n.endswith(".era")]
    for n in eras:
        assert contents_equal(str(out / n), str(sample_dir / n))
    assert len(eras) == 4
    assert not [n for n in os.listdir(tmp_path) if ".snapshot-" in n]


def _ref_store(tmp_path, era_copy, *eras):
    files = [era_copy / n for n in sorted(os.listdir(era_copy))
             if n.endswith(".era") and int(n.split("-")[1]) in eras]
    res = run("frontfill", "--db", tmp_path / "db", *files)  # reference mode: era tables
    assert res.exit_code == 0, res.output
    return files


def test_reference_export_copies_records_in_runs(tmp_path, era_copy, sample_dir, monkeypatch):
    """From a reference-mode store, export copies the block records straight from the era
    files (in runs of adjacent records) and the state record too; any run size gives the same
    files."""
    from era_tools import export as export_mod

    _ref_store(tmp_path, era_copy, 0, 1, 2, 3)
    with ChainStore.open(tmp_path / "db", readonly=True) as s:
        src = s.era_file_blocks(64, 127)
        assert src is not None and len(src[2]) == len(src[3]) > 1
        assert s.state_file_record(128) is not None
        res = export_mod.export(s, tmp_path / "big")
        assert len(res.written) == 4
        # bytes_written counts the block and state records: each file adds its Version
        # record (8), the state index (8 + 24) and, after era 0, the block index (8 + 8*64 + 16)
        overhead = sum(8 + 32 + (0 if "-00000-" in p else 8 + 8 * 64 + 16)
                       for p in res.written)
        assert res.bytes_written == sum(os.path.getsize(p) for p in res.written) - overhead
        monkeypatch.setattr(export_mod, "_RUN_BYTES", 1)  # one record per run
        res1 = export_mod.export(s, tmp_path / "small")
    for p in res.written:
        n = os.path.basename(p)
        assert contents_equal(p, str(sample_dir / n))
        assert contents_equal(str(tmp_path / "small" / n), str(sample_dir / n))
    assert res1.bytes_written == res.bytes_written


def test_reference_export_refuses_a_changed_era_file(tmp_path, era_copy):
    files = _ref_store(tmp_path, era_copy, 0, 1, 2)
    with open(files[2], "ab") as f:
        f.write(b"\0" * 8)  # era 2's file grew after front-fill
    res = run("export", "--db", tmp_path / "db", "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1] == (
        f"error: {files[2]}: referenced era file changed size "
        f"({os.path.getsize(files[2])} bytes, {os.path.getsize(files[2]) - 8} when "
        "front-filled)")
    assert not [n for n in os.listdir(tmp_path / "out") if n.endswith(".tmp")]
    assert sorted(n for n in os.listdir(tmp_path / "out") if n.endswith(".era")) == [
        "minimal-00000-83431ec7.era", "minimal-00001-3a1e96ab.era"]


def test_reference_export_checks_every_record_header(tmp_path, era_copy):
    """A block record overwritten in place (same size) is caught before anything is copied."""
    from era_tools.era import EraReader

    files = _ref_store(tmp_path, era_copy, 0, 1, 2)
    with EraReader(files[2]) as r:
        slot = r.block_slots()[3]
        pos = r.block_record(slot).offset
    with open(files[2], "r+b") as f:
        f.seek(pos)
        f.write(b"\x02\x00")  # the record now claims to be a state
    res = run("export", "--db", tmp_path / "db", "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1] == (
        f"error: {files[2]}: offset {pos}: the reference for the block at slot {slot} does "
        "not point at a whole CompressedSignedBeaconBlock record")
    assert "minimal-00002-c3ec0173.era" not in os.listdir(tmp_path / "out")
    assert not [n for n in os.listdir(tmp_path / "out") if n.endswith(".tmp")]


def test_state_front_read_from_a_big_or_small_chunked_state_record(tmp_path, network):
    """export reads only the chunks holding a referenced state's front when the record is big
    (and falls back to the whole record when the chunks are smaller than 64 KiB)."""
    from era_tools import framing
    from era_tools.era import EraWriter, state_prefix_size
    from era_tools.export import _state_prefix_from_file

    sphr = network.slots_per_historical_root
    state = bytearray(state_prefix_size(sphr) + 600_000)
    state[8:40] = network.genesis_validators_root
    state[40:48] = (3 * sphr).to_bytes(8, "little")
    state[176:176 + 64 * sphr] = os.urandom(64 * sphr)
    state[176 + 64 * sphr:] = os.urandom(600_000)
    state = bytes(state)
    small = b"".join(framing.compress(state[i:i + 1000]) for i in range(0, len(state), 1000))
    for framed in (framing.compress(state), small):
        w = EraWriter(tmp_path / ("a" if framed is small else "b"), "minimal", 3, sphr,
                      fsync=False)
        w.set_state(framed=framed)
        path = w.finish()
        from era_tools.era import EraReader

        with EraReader(path) as r:
            off = r.state_record().offset

        class S:
            pass

        s = S()
        s.sphr, s.path = sphr, "db"
        got = _state_prefix_from_file(s, 3, path, os.path.getsize(path), off)
        assert got[:state_prefix_size(sphr)] == state[:state_prefix_size(sphr)]
