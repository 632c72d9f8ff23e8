"""`era verify --level chain --trusted-block-root ROOT --beacon-api URL ...` (issue 12): the light
client follows the sync committees from one old trusted root to the nodes' finalized
checkpoint, whose state (proven to belong to the verified block) anchors the archive through
its historical_summaries, the same per-era trusted-state check as --trusted-state.

The archive is the light-client test chain's own era files (eras 0..3, written by
scripts/make_lightclient_data.py with EraWriter), served beside its light-client data and
checkpoint state by real HTTP servers on 127.0.0.1 (tests/lightclient_server.py), honest or
hostile."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

from tests import lightclient_data as D
from tests.lightclient_server import LightClientServer as Server

ROOT = D.ROOT
OLD_ROOT = D.items("bootstrap")[0]["block_root"]   # slot 8: 24 epochs before the checkpoint
CP = D.manifest()["checkpoint"]
EXPECTED = D.manifest()["expected"]
ERA_FILES = D.manifest()["era_files"]


def _era(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", "from era_tools.cli import main; main()",
                           *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


def _archive(tmp_path):
    """The chain's era files with its config beside them."""
    d = tmp_path / "eras"
    d.mkdir()
    for n in [*ERA_FILES, "spec.json", "genesis.json"]:
        shutil.copy(D.DATA / n, d / n)
    return d


def _one_error(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_an_archive_anchored_by_the_light_client_among_liars(tmp_path):
    eras = _archive(tmp_path)
    assert len(ERA_FILES) == 4 and CP["state_slot"] // 64 == 3
    with Server("bad_signature") as liar, Server("honest") as node:
        r = _era("verify", eras, "--level", "chain", "--trusted-block-root", OLD_ROOT,
                 "--beacon-api", liar.url, "--beacon-api", node.url, "--json", "-j", "1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    a = out["anchor"]
    assert a["kind"] == "trusted_state" and a["matched"], a
    assert a["slot"] == CP["state_slot"] and a["root"] == CP["state_root"]
    assert a["covers_eras"] == [1, 3]
    assert a["source"].startswith(f"light client from trusted block root {OLD_ROOT}")
    assert f"{EXPECTED['finalized']['root']} at slot {EXPECTED['finalized']['slot']}" \
        in a["source"]
    assert out["summary"] == {"files": 4, "ok": 4, "failed": 0, "blocks": 192,
                              "unanchored": []}
    for f in out["files"]:
        if f["era"]:  # eras 1..3: each matched its historical summary on its own
            assert f["checks"]["historical_roots"]["status"] == "ok", f
    # the text report names the anchor
    with Server("honest") as node:
        r = _era("verify", eras, "--level", "chain", "--trusted-block-root", OLD_ROOT,
                 "--beacon-api", node.url, "-j", "1")
    assert r.returncode == 0, r.stderr
    anchor = [ln for ln in r.stdout.splitlines() if ln.startswith("anchor: ")]
    assert anchor == [f"anchor: trusted state at slot {CP['state_slot']} (state root "
                      f"{CP['state_root']}, from the {a['source']}): its historical roots "
                      "matched"], r.stdout


def test_an_era_the_verified_state_does_not_know_fails(tmp_path):
    """The anchor is real: era 2 with one block_roots entry edited (under its own name) fails
    the check against the light-client-verified state's historical summaries."""
    from era_tools.config import load_config
    from tests.test_verify_trusted import _edit_block_root, _rewrite

    eras = _archive(tmp_path)
    victim = eras / ERA_FILES[2]
    _rewrite(D.DATA / ERA_FILES[2], eras, load_config(D.DATA / "spec.json"),
             _edit_block_root(5), name=victim.name)
    with Server("honest") as node:
        r = _era("verify", eras, "--level", "chain", "--trusted-block-root", OLD_ROOT,
                 "--beacon-api", node.url, "--json", "-j", "1")
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    assert not out["anchor"]["matched"]
    f = next(f for f in out["files"] if f["path"] == str(victim))
    hr = [x for x in f["failures"] if x["check"] == "historical_roots"]
    assert hr and "era 2: era root" in hr[0]["message"], f["failures"]


def test_a_node_whose_state_lies_exits_1_naming_it(tmp_path):
    eras = _archive(tmp_path)
    with Server("bad_state") as node:
        r = _era("verify", eras, "--level", "chain", "--trusted-block-root", OLD_ROOT,
                 "--beacon-api", node.url, "-j", "1")
    assert r.returncode == 1, (r.stdout, r.stderr)
    line = _one_error(r.stderr)
    assert line.startswith(f"error: {node.url}/") and "does not belong to the verified" \
        in line, line
    assert r.stdout == ""  # nothing verified against an unproven state


def test_a_node_serving_wrong_updates_exits_1_naming_it(tmp_path):
    eras = _archive(tmp_path)
    with Server("bad_signature") as node:
        r = _era("verify", eras, "--level", "chain", "--trusted-block-root", OLD_ROOT,
                 "--beacon-api", node.url, "-j", "1")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert node.url in _one_error(r.stderr)


def test_no_reachable_node_exits_2(tmp_path):
    eras = _archive(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = _era("verify", eras, "--level", "chain", "--trusted-block-root", OLD_ROOT,
             "--beacon-api", f"http://127.0.0.1:{port}", "--light-client-timeout", "2")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert f"127.0.0.1:{port}" in _one_error(r.stderr)


def test_usage_errors_exit_2(tmp_path):
    eras = _archive(tmp_path)
    for args, msg in ((["--trusted-block-root", OLD_ROOT], "go together"),
                      (["--beacon-api", "http://127.0.0.1:1"], "go together"),
                      (["--trusted-block-root", OLD_ROOT, "--beacon-api", "http://127.0.0.1:1",
                        "--trusted-state", "x.ssz"], "give one"),
                      (["--trusted-block-root", "0x12", "--beacon-api", "http://127.0.0.1:1"],
                       "not a 32-byte hex root")):
        r = _era("verify", eras, "--level", "chain", *args)
        assert r.returncode == 2, (args, r.stderr)
        assert msg in r.stderr, (args, r.stderr)


def test_light_client_warnings_reach_stderr(tmp_path):
    """A server announcing a far-future period is warned about (the light client's warnings
    are not swallowed), and the honest one still anchors the archive."""
    eras = _archive(tmp_path)
    with Server("far_head") as far, Server("honest") as node:
        r = _era("verify", eras, "--level", "chain", "--trusted-block-root", OLD_ROOT,
                 "--beacon-api", far.url, "--beacon-api", node.url, "--json", "-j", "1")
    assert r.returncode == 0, r.stderr
    assert any(ln.startswith("warning: ") and "announced sync-committee period 10" in ln
               for ln in r.stderr.splitlines()), r.stderr
    assert json.loads(r.stdout)["anchor"]["matched"]
