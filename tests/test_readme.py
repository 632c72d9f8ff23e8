"""The README's tour runs as written (paths and port moved into a temp dir)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tour() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## A one-minute tour on `sample_eras/`", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readme_tour_runs(tmp_path, fixture_dir):
    script = _tour().replace("/tmp/", f"{tmp_path}/").replace("8080", str(_free_port()))
    # wait for the server the tour starts in the background before talking to it
    script = script.replace("kill %1", "kill %1; wait")
    script = re.sub(r"(era serve [^\n]*&[^\n]*\n)",
                    r"\1for i in $(seq 100); do era_ready && break; sleep 0.1; done\n", script)
    port = re.search(r"--port (\d+)", script).group(1)
    # `era` as an exec wrapper, so `kill %1` reaches the server itself
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "era").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m era_tools "$@"\n')
    (bindir / "era").chmod(0o755)
    prelude = (f'set -euo pipefail\nexport PATH="{bindir}:$PATH"\n'
               f'era_ready() {{ "{sys.executable}" -c "import socket; '
               f"socket.create_connection(('127.0.0.1', {port}), 1)\" 2>/dev/null; }}\n")
    # output to a file, not a pipe: the background server must not hold our pipe open
    log = tmp_path / "tour.log"
    with open(log, "w") as out:
        res = subprocess.run(["bash", "-c", prelude + script], cwd=ROOT, stdout=out,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=300)
    text = log.read_text()
    assert res.returncode == 0, text[-4000:]
    assert "OK: 17 files, 889 blocks checked at level chain" in text
    assert len(list((tmp_path / "eras").glob("*.era"))) == 17
    assert len(list((tmp_path / "mirror").glob("*.era"))) == 17
    assert (tmp_path / "state.ssz").read_bytes() == (fixture_dir / "states/128.ssz").read_bytes()
