"""`--json` output: one key name per concept across the commands (README, "JSON output"):
`path` for a file or directory path, `name` for a bare file name, `bytes` for the bytes a run
wrote or transferred, `slots`/`blocks` for counts."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from era_tools.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "sample_eras"
# Spellings replaced by the names above ("file" was `era info`'s, the others pull's and
# download's).
OLD_NAMES = {"file", "filename", "bytes_downloaded", "slots_pulled"}


def keys(obj) -> set[str]:
    if isinstance(obj, dict):
        return set(obj) | {k for v in obj.values() for k in keys(v)}
    if isinstance(obj, list):
        return {k for v in obj for k in keys(v)}
    return set()


def run_json(*args) -> object:
    r = CliRunner().invoke(main, [*map(str, args), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert not keys(out) & OLD_NAMES, keys(out) & OLD_NAMES
    return out


def test_info_and_verify_name_each_file_by_path():
    era = sorted(SAMPLE.glob("*.era"))[2]
    info = run_json("info", era)
    assert info["path"] == str(era) and info["name"] == era.name
    many = run_json("info", *sorted(SAMPLE.glob("*.era"))[:3])
    assert [d["path"] for d in many] == [str(p) for p in sorted(SAMPLE.glob("*.era"))[:3]]
    rep = run_json("verify", "--level", "structure", era)
    assert [f["path"] for f in rep["files"]] == [str(era)]


def test_info_error_entries_use_path_too(tmp_path):
    bad = tmp_path / "minimal-00001-00000000.era"
    bad.write_bytes(b"\x00" * 40)
    good = sorted(SAMPLE.glob("*.era"))[1]
    r = CliRunner().invoke(main, ["info", "--json", "--config", str(SAMPLE / "spec.json"),
                                  str(good), str(bad)])
    out = {d["path"]: d for d in json.loads(r.stdout)}
    assert set(out) == {str(good), str(bad)}
    assert "error" in out[str(bad)] and "error" not in out[str(good)]


def test_store_commands(tmp_path):
    db, out = tmp_path / "db", tmp_path / "out"
    ff = run_json("frontfill", "--db", db, *sorted(SAMPLE.glob("*.era"))[:4])
    assert ff["blocks"] > 0
    ex = run_json("export", "--db", db, "--out", out)
    assert ex["bytes"] > 0 and all(Path(p).parent == out for p in ex["written"])
    st = run_json("status", "--db", db)
    assert st["path"] == str(db)


def test_download(sample_host, tmp_path):
    rep = run_json("download", sample_host.url, tmp_path / "m", "--to-era", "2")
    assert rep["bytes"] == sum(p.stat().st_size for p in (tmp_path / "m").glob("*.era"))
    assert all(set(f) >= {"name", "kind"} for f in rep["files"])
