"""Progress output: tqdm bars on a terminal, and without one (stderr to a pipe or a file) plain
lines only, never a carriage return or an escape sequence (cli.common.progress_bar)."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_eras"
CLI = "from era_tools.cli import main; main()"


def era(*args, **kw) -> subprocess.CompletedProcess:
    # Every update prints its line, so even a short run shows what a long one would print.
    env = dict(os.environ, ERA_TOOLS_PROGRESS_EVERY="0")
    return subprocess.run([sys.executable, "-c", CLI, *map(str, args)], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, timeout=300, **kw)


def assert_plain(err: str) -> None:
    assert "\r" not in err and "\x1b" not in err, repr(err[:400])


def test_download_without_a_terminal_prints_plain_lines(sample_host, tmp_path):
    r = era("download", sample_host.url, tmp_path / "mirror", "--to-era", "5", "--jobs", "2",
            capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert_plain(r.stderr)  # were tqdm bars, one per file, moved with cursor codes
    lines = [x for x in r.stderr.splitlines() if x.startswith("download: ")]
    assert lines and all(" MB/s" in x or " kB/s" in x or " B/s" in x for x in lines), r.stderr
    assert lines[-1].startswith("download: ") and "/" in lines[-1]


@pytest.mark.parametrize("args", [
    ("verify", "--level", "roots", SAMPLE),
    ("verify", "--level", "roots", "--json", SAMPLE),
    ("info", SAMPLE / "minimal-00002-c3ec0173.era"),
])
def test_other_commands_without_a_terminal_stay_plain(args):
    r = era(*args, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert_plain(r.stderr)


def test_verify_progress_lines_count_blocks(tmp_path):
    with open(tmp_path / "err", "w+") as f:  # a file, as `2>log` gives
        r = era("verify", "--level", "roots", SAMPLE, stderr=f, stdout=subprocess.DEVNULL)
        f.seek(0)
        err = f.read()
    assert r.returncode == 0, err
    assert_plain(err)
    lines = [x for x in err.splitlines() if x.startswith("verifying: ")]
    assert lines and all(x.endswith(" blk/s") and "/" in x.split(",")[0] for x in lines), err


def test_on_a_terminal_tqdm_draws_its_bar():
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    try:
        proc = subprocess.Popen([sys.executable, "-c", CLI, "verify", "--level", "roots",
                                 str(SAMPLE)], cwd=ROOT, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(300) == 0, out
    finally:
        os.close(master)
    assert b"verifying" in out and b"\rverifying" in out  # the bar, redrawn in place
