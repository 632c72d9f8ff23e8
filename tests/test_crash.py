"""Crash safety: SIGKILL `era pull`, `era frontfill` and `era export` at ten points in a
subprocess, rerun, and compare with an uninterrupted run (stores by full iteration, files by
name and contents).  No partial .era is ever visible under a finished name.

The kill points are hooks in the code: ERA_TOOLS_KILL_AFTER_BATCHES=N (store/db.py) kills the
process right after its Nth committed write batch, ERA_TOOLS_KILL_AFTER_RECORDS=N (export.py)
right after its Nth block record is written to a .tmp file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest

from beacon_api_server import BeaconApiServer
from store_dump import dump
from era_tools.era import EraReader, contents_equal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = "import sys; from era_tools.cli import main; sys.exit(main())"


def era(args, env=None):
    e = dict(os.environ)
    e.pop("ERA_TOOLS_KILL_AFTER_BATCHES", None)
    e.pop("ERA_TOOLS_KILL_AFTER_RECORDS", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", CLI, *map(str, args)], cwd=ROOT, env=e,
                          capture_output=True, text=True, timeout=300)




def finished_eras_are_whole(out):
    for n in os.listdir(out):
        if n.endswith(".era"):
            with EraReader(os.path.join(out, n)) as r:  # opens both indices: a whole file
                r.state_head()


@pytest.fixture(scope="module")
def server():
    from conftest import FIXTURE

    with BeaconApiServer(FIXTURE) as srv:
        yield srv


PULL = ["--from-slot", 0, "--to-slot", 200, "--batch-slots", 16, "--workers", 4]


@pytest.fixture(scope="module")
def pull_reference(server, tmp_path_factory):
    db = tmp_path_factory.mktemp("pullref") / "db"
    r = era(["pull", "--beacon-api", server.url, "--db", db, *PULL])
    assert r.returncode == 0, r.stderr
    return dump(db)


@pytest.mark.parametrize("kill_after", [1, 3, 9, 14])
def test_pull_killed_then_rerun(server, pull_reference, tmp_path, kill_after):
    db = tmp_path / "db"
    r = era(["pull", "--beacon-api", server.url, "--db", db, *PULL],
            {"ERA_TOOLS_KILL_AFTER_BATCHES": str(kill_after)})
    assert r.returncode == -signal.SIGKILL
    partial = dump(db)
    assert 0 < len(partial) < len(pull_reference)
    r = era(["pull", "--beacon-api", server.url, "--db", db, *PULL])
    assert r.returncode == 0, r.stderr
    assert dump(db) == pull_reference


@pytest.fixture(scope="module")
def small_eras(tmp_path_factory, sample_dir):
    """Eras 0..5 of sample_eras/ with their config (small, so each run is quick)."""
    d = tmp_path_factory.mktemp("eras")
    for n in os.listdir(sample_dir):
        if not n.endswith(".era") or int(n.split("-")[1]) <= 5:
            shutil.copyfile(sample_dir / n, d / n)
    return d


@pytest.fixture(scope="module")
def frontfill_reference(tmp_path_factory, small_eras):
    db = tmp_path_factory.mktemp("ffref") / "db"
    r = era(["frontfill", "--db", db, small_eras])
    assert r.returncode == 0, r.stderr
    return dump(db)


@pytest.mark.parametrize("kill_after", [1, 3, 5])
def test_frontfill_killed_then_rerun(frontfill_reference, tmp_path, kill_after, small_eras):
    db = tmp_path / "db"
    r = era(["frontfill", "--db", db, small_eras],
            {"ERA_TOOLS_KILL_AFTER_BATCHES": str(kill_after)})
    assert r.returncode == -signal.SIGKILL
    assert 0 < len(dump(db)) < len(frontfill_reference)
    r = era(["frontfill", "--db", db, small_eras])
    assert r.returncode == 0, r.stderr
    assert dump(db) == frontfill_reference


@pytest.mark.parametrize("kill_after", [2, 4])
def test_frontfill_copy_mode_killed_then_rerun(tmp_path, kill_after, small_eras):
    """Copy mode writes each era's blocks and state into files of the store's own before the
    batch commits; a killed run and its rerun end with the same store and the same files."""
    ref, db = tmp_path / "ref", tmp_path / "db"
    assert era(["frontfill", "--db", ref, "--mode", "copy", small_eras]).returncode == 0
    r = era(["frontfill", "--db", db, "--mode", "copy", small_eras],
            {"ERA_TOOLS_KILL_AFTER_BATCHES": str(kill_after)})
    assert r.returncode == -signal.SIGKILL
    r = era(["frontfill", "--db", db, "--mode", "copy", small_eras])
    assert r.returncode == 0, r.stderr
    assert dump(db) == dump(ref)
    for sub in ("blocks", "states"):
        assert sorted(os.listdir(db / sub)) == sorted(os.listdir(ref / sub))


@pytest.fixture(scope="module")
def export_db(tmp_path_factory, small_eras):
    db = tmp_path_factory.mktemp("exportdb") / "db"
    r = era(["frontfill", "--db", db, "--check", "index", small_eras])
    assert r.returncode == 0, r.stderr
    return db


@pytest.mark.parametrize("kill_after", [1, 100, 250])
def test_export_killed_then_rerun(tmp_path, kill_after, export_db, small_eras):
    db, out = export_db, tmp_path / "out"
    sample_files = sorted(small_eras.glob("*.era"))
    r = era(["export", "--db", db, "--out", out], {"ERA_TOOLS_KILL_AFTER_RECORDS": str(kill_after)})
    assert r.returncode == -signal.SIGKILL
    finished_eras_are_whole(out)
    assert [n for n in os.listdir(out) if n.endswith(".tmp")]  # killed mid-file
    assert len([n for n in os.listdir(out) if n.endswith(".era")]) < len(sample_files)
    r = era(["export", "--db", db, "--out", out])
    assert r.returncode == 0, r.stderr
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]
    names = sorted(n for n in os.listdir(out) if n.endswith(".era"))
    assert names == [f.name for f in sample_files]
    for f in sample_files:
        assert contents_equal(str(out / f.name), str(f))
