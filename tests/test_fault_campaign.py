"""Quick versions of scripts/fault_campaign.py (the full campaign, with its figures, is
FUZZING.md's; `ERA_TOOLS_SLOW=1` runs it here too): a SIGKILL at a random point in `download`
and `checkpoint-sync`, two in `era sync --once`, then a rerun (pull, export, frontfill and
backfill have theirs in test_crash.py and test_backfill.py), a full tmpfs under three writers
(era sync's publish directory one of them), `era serve` under a small version of every
abuse, and hostile peers.  Real subprocesses, real sockets on
127.0.0.1, a real tmpfs (skipped where it cannot be mounted)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import fault_campaign as fc  # noqa: E402


@pytest.fixture(scope="module")
def servers(fixture_dir):
    srv = fc.Servers()
    yield srv
    srv.close()


@pytest.fixture
def work(tmp_path):
    return str(tmp_path)


def _can_mount_tmpfs() -> bool:
    d = tempfile.mkdtemp()
    try:
        return fc._mount_tmpfs(d, 1 << 20) is None
    finally:
        fc._umount(d)
        os.rmdir(d)


def test_killed_download_and_checkpoint_sync_rerun_to_the_same_result(servers, work):
    rows = fc.kill_section(work, servers, 1, random.Random(3), {"download", "checkpoint-sync"})
    assert [r["writer"] for r in rows] == ["download", "checkpoint-sync"]
    for r in rows:
        assert r["failures"] == 0, r
        assert r["kills"] == 1, r


def test_killed_sync_reruns_to_the_same_store_and_published_files(servers, work):
    """`era sync --once` against a live chain (its own node per run), SIGKILLed at two random
    points: published .era files only whole, listings naming only whole files, and the rerun
    equal to an uninterrupted run (store content, published bytes)."""
    rows = fc.kill_section(work, servers, 2, random.Random(5), {"sync"})
    assert [r["writer"] for r in rows] == ["sync --once"]
    assert rows[0]["failures"] == 0 and rows[0]["kills"] == 2, rows[0]


@pytest.mark.skipif(os.geteuid() != 0 or not _can_mount_tmpfs(), reason="needs a tmpfs mount")
def test_full_disk_under_writers_one_line_no_partial_file_rerun_completes(servers, work):
    rows = fc.disk_section(work, servers, {"export", "frontfill (copy)", "sync"})
    assert [r["writer"] for r in rows] == ["export", "frontfill (copy)", "sync --once"]
    for r in rows:
        assert r["ok"], r  # exit 2, one `error:` line about space, store consistent, rerun equal
        assert r["exit"] == 2 and r["rerun_equal"], r
        assert r["partial_files"] == "none", r


def test_era_serve_under_small_abuse_keeps_answering_and_never_leaks(work):
    rows, summary = fc.serve_section(work, 60, 2.0, random.Random(1), max_connections=60)
    assert summary["server_alive_after"] and summary["honest_requests"] > 0
    assert len(rows) == 9
    for r in rows:
        assert r["ok"], r
        assert r["5xx"] == 0 and r["outside_root"] == 0 and r["honest_failed"] == 0, r
    slow = rows[2]  # a header line a second for 2 s against --header-timeout 1: all cut
    assert slow["phase"].startswith("slowloris") and slow["cut"] == slow["requests"] > 0, slow
    assert slow["statuses"] == f"408:{slow['requests']}", slow
    idle = rows[3]  # 3 x the cap of idle sockets: the oldest closed for newer connections
    assert idle["phase"].startswith("180 idle") and "closed-by-server:" in idle["statuses"], idle
    closed = summary["connections_closed"]
    assert closed["header_timeout"] == slow["requests"] and closed["evicted"] > 0, closed
    shapes = rows[-2]
    assert shapes["requests"] > 400 and "200:" in shapes["statuses"]


def test_hostile_peers_give_one_line_and_bounded_memory(servers, work):
    rows = fc.peers_section(work, servers, sent_mb=16, only={
        ("backfill", "closes mid-chunk"), ("pull", "10 GB"), ("checkpoint-sync", "truncated"),
        ("download", "closes mid-file")})
    assert len(rows) == 4
    for r in rows:
        assert r["ok"], r
        assert r["exit"] == 2, r
    pull = next(r for r in rows if r["command"] == "pull")
    assert "exceeds the limit" in pull["message"]
    assert pull["peak_rss_mb"] < 400  # 16 MiB sent; before the cap all of it was held


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("ERA_TOOLS_SLOW") != "1",
                    reason="the full campaign takes ~15 minutes; set ERA_TOOLS_SLOW=1")
def test_full_campaign(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "fault_campaign.py"),
                        "--json", str(tmp_path / "c.json")], capture_output=True, text=True,
                       timeout=3600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
