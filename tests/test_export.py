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
    assert sorted(os.listdir(out)) == ["minimal-00000-83431ec7.era", "minimal-00001-3a1e96ab.era",
                                       "minimal-00002-c3ec0173.era", "minimal-00004-2cfc1198.era"]
    # without a range: every complete era, exit 0
    res = run("export", "--db", db, "--out", tmp_path / "all")
    assert res.exit_code == 0, res.output
    assert len(os.listdir(tmp_path / "all")) == 4


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
    for n in os.listdir(out):
        assert contents_equal(str(out / n), str(sample_dir / n))
    assert len(os.listdir(out)) == 4
    assert not [n for n in os.listdir(tmp_path) if ".snapshot-" in n]
