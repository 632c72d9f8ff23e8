"""Trusted-state verification as a per-era task (issue 17): each era file is checked against one
trusted state's historical_roots / historical_summaries with nothing but the file and the
state's lists, so no chain walk and no neighbouring era is needed.

On the fixture chain (phase0 -> capella: historical_roots and historical_summaries) and on the
spec chain (deneb -> electra -> fulu: historical_summaries only), a swapped era, an edited
block_roots entry and a wrong file name are each caught by the check alone (`anchor_era`, which
hashes no block and decodes no state), and by `verify_file` on the file by itself.  The state
also comes from a beacon node URL (`era serve` over the sample eras, a real HTTP server), with an
optional expected root."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from era_tools.cli import main
from era_tools.config import load_config
from era_tools.era import EraReader, EraWriter
from era_tools.errors import VerificationError
from era_tools.verify import (TrustedState, anchor_era, load_trusted_state, verify_archive,
                              verify_file)

ROOT = Path(__file__).resolve().parents[1]
SPEC_DATA = ROOT / "tests" / "data" / "spec_chain"
BLOCK_ROOTS = 176  # BeaconState: genesis_time 8 | gvr 32 | slot 8 | fork 16 | header 112


def _rewrite(src: Path, out_dir: Path, network, state_edit=None, name: str | None = None):
    """A copy of era file `src` rewritten with EraWriter, its state edited by `state_edit`;
    named from its (edited) state, or `name` to keep another name."""
    with EraReader(src) as r:
        era, blocks, state = r.era, dict(r.iter_blocks()), r.state_ssz()
    if state_edit is not None:
        state = state_edit(bytearray(state))
    tmp = out_dir / "_w"
    with EraWriter(tmp, network.config_name, era, network.slots_per_historical_root,
                   fsync=False) as w:
        for slot in sorted(blocks):
            w.add_block(slot, ssz=blocks[slot])
        w.set_state(ssz=bytes(state))
        path = w.finish()
    final = out_dir / (name or os.path.basename(path))
    os.replace(path, final)
    shutil.rmtree(tmp)
    return final


def _edit_block_root(index: int):
    def edit(state: bytearray) -> bytes:
        i = BLOCK_ROOTS + 32 * index
        state[i:i + 32] = bytes([state[i] ^ 0xFF]) + bytes(state[i + 1:i + 32])
        return bytes(state)
    return edit


def _caught_alone(path, network, trusted, what: str):
    """Caught by the trusted check alone, and by verify_file on the file by itself."""
    alone = anchor_era(path, network, trusted)
    assert not alone.ok
    fails = [f for f in alone.failures if f.check == "historical_roots"]
    assert fails and all(f.level == "chain" for f in alone.failures), alone.failures
    assert what in fails[0].message, fails[0].message
    full = verify_file(path, network, "chain", trusted=trusted)
    assert any(f.check == "historical_roots" for f in full.failures), full.failures
    return fails[0]


# --------------------------------------------------------------------------------------------
# fixture chain


@pytest.fixture(scope="module")
def trusted_1024(network, fixture_dir) -> TrustedState:
    return load_trusted_state((fixture_dir / "states" / "1024.ssz").read_bytes(), network)


def test_the_task_input_is_small_and_picklable(trusted_1024, network):
    blob = pickle.dumps((trusted_1024, network))
    assert pickle.loads(blob)[0] == trusted_1024
    # 16 era roots and the state's own state_roots: bytes, no objects per entry
    assert len(pickle.dumps(trusted_1024)) < 8 * 1024


def test_every_sample_era_is_anchored_on_its_own(sample_files, network, trusted_1024):
    for p in sample_files:
        r = anchor_era(p, network, trusted_1024)
        assert r.ok, r.line()
        if r.era:  # eras 1..16: the state's historical_roots (phase0..) and summaries (capella)
            assert r.checks["historical_roots"]["status"] == "ok"
        else:
            assert "historical_roots" not in r.checks  # era 0 has no era root


def test_fixture_swapped_era_is_caught_alone(sample_dir, network, trusted_1024, tmp_path):
    era3 = next(sample_dir.glob("minimal-00003-*.era"))
    era4 = next(sample_dir.glob("minimal-00004-*.era"))
    swapped = tmp_path / era4.name
    shutil.copy(era3, swapped)  # era 3's file under era 4's name
    f = _caught_alone(swapped, network, trusted_1024, "file name says era 4")
    assert f.expected == "0x" + trusted_1024.era_root(4).hex()


def test_fixture_edited_block_roots_is_caught_alone(sample_dir, network, trusted_1024,
                                                    tmp_path):
    era3 = next(sample_dir.glob("minimal-00003-*.era"))
    # the name follows the edited state, so the file is consistent in itself
    edited = _rewrite(era3, tmp_path, network, _edit_block_root(5))
    assert edited.name != era3.name
    f = _caught_alone(edited, network, trusted_1024, "era 3: era root")
    assert f.expected == "0x" + trusted_1024.era_root(3).hex()
    # ... and under the old name too
    stale = _rewrite(era3, tmp_path, network, _edit_block_root(5), name=era3.name)
    _caught_alone(stale, network, trusted_1024, "era 3: era root")


def test_a_later_era_under_the_genesis_era_name_is_caught_alone(sample_dir, network,
                                                                trusted_1024, tmp_path):
    # era 0 has no trusted root, but the name's era is still not the file's
    era3 = next(sample_dir.glob("minimal-00003-*.era"))
    g = next(sample_dir.glob("minimal-00000-*.era"))
    shutil.copy(era3, tmp_path / g.name)
    _caught_alone(tmp_path / g.name, network, trusted_1024, "file name says era 0; the file "
                  "holds era 3")


def test_fixture_wrong_file_name_is_caught_alone(sample_dir, network, trusted_1024, tmp_path):
    era3 = next(sample_dir.glob("minimal-00003-*.era"))
    renamed = tmp_path / "minimal-00003-deadbeef.era"
    shutil.copy(era3, renamed)
    f = _caught_alone(renamed, network, trusted_1024, "file name short root 0xdeadbeef")
    assert f.expected == "0x" + trusted_1024.era_root(3)[:4].hex()


def test_eras_past_the_state_stay_visibly_unanchored(sample_dir, network, fixture_dir,
                                                     tmp_path):
    t = load_trusted_state((fixture_dir / "states" / "640.ssz").read_bytes(), network)
    assert t.covered_eras == 10
    late = next(sample_dir.glob("minimal-00012-*.era"))
    r = anchor_era(late, network, t)
    assert r.ok and "historical_roots" not in r.checks  # no check, not a pass
    for n in (9, 10, 11, 12):
        shutil.copy(next(sample_dir.glob(f"minimal-{n:05d}-*.era")), tmp_path)
    res = CliRunner().invoke(main, ["verify", str(tmp_path), "--level", "chain",
                                    "--trusted-state", str(fixture_dir / "states" / "640.ssz"),
                                    "-j", "1", "--config", str(sample_dir / "spec.json")])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    names = sorted(p.name for p in tmp_path.glob("*.era"))
    assert f"{tmp_path / names[0]}: OK" in lines and f"{tmp_path / names[1]}: OK" in lines
    assert f"{tmp_path / names[2]}: OK (unanchored)" in lines
    assert f"{tmp_path / names[3]}: OK (unanchored)" in lines


def test_archive_needs_no_chain_walk(sample_dir, network, trusted_1024, tmp_path):
    # every other era: no two files link, yet each is anchored by the trusted state
    for n in (2, 5, 9, 13):
        shutil.copy(next(sample_dir.glob(f"minimal-{n:05d}-*.era")), tmp_path)
    rep = verify_archive([tmp_path], network, "chain", jobs=2, trusted_state=trusted_1024)
    assert [f.anchored for f in rep.files] == [True] * 4
    assert rep.unanchored == []
    assert not rep.ok  # the gaps between them are still reported
    assert {f.check for f in rep.failures} == {"era_sequence"}


# --------------------------------------------------------------------------------------------
# spec chain (deneb -> electra -> fulu, executable spec)


@pytest.fixture(scope="module")
def spec_net():
    return load_config(SPEC_DATA / "spec.json")


@pytest.fixture(scope="module")
def spec_files() -> list[Path]:
    manifest = json.loads((SPEC_DATA / "manifest.json").read_text())
    return [SPEC_DATA / n for n in manifest["era_files"]]


@pytest.fixture(scope="module")
def spec_trusted(spec_files, spec_net) -> TrustedState:
    with EraReader(spec_files[-1]) as r:  # the newest era state holds every earlier era root
        data = r.state_ssz()
    t = load_trusted_state(data, spec_net)
    manifest = json.loads((SPEC_DATA / "manifest.json").read_text())
    assert "0x" + t.root.hex() == manifest["final_state_root"]  # the spec's own root
    assert t.historical_roots == b"" and t.covered_eras == len(spec_files) - 1
    return t


def test_spec_chain_eras_are_anchored(spec_files, spec_net, spec_trusted):
    for p in spec_files:
        assert anchor_era(p, spec_net, spec_trusted).ok
    rep = verify_archive([SPEC_DATA], spec_net, "chain", jobs=1, trusted_state=spec_trusted)
    assert rep.ok and rep.unanchored == []


def test_spec_chain_swapped_era(spec_files, spec_net, spec_trusted, tmp_path):
    swapped = tmp_path / spec_files[2].name
    shutil.copy(spec_files[1], swapped)
    _caught_alone(swapped, spec_net, spec_trusted, "file name says era 2")


def test_spec_chain_edited_block_roots(spec_files, spec_net, spec_trusted, tmp_path):
    edited = _rewrite(spec_files[2], tmp_path, spec_net, _edit_block_root(9))
    _caught_alone(edited, spec_net, spec_trusted, "era 2: era root")


def test_spec_chain_wrong_file_name(spec_files, spec_net, spec_trusted, tmp_path):
    good = spec_files[1].name
    renamed = tmp_path / (good.rsplit("-", 1)[0] + "-0badf00d.era")
    shutil.copy(spec_files[1], renamed)
    _caught_alone(renamed, spec_net, spec_trusted, "file name short root 0x0badf00d")


# --------------------------------------------------------------------------------------------
# the trusted state from a beacon node


def test_trusted_state_from_a_node(sample_host, network, trusted_1024):
    from era_tools.sync.checkpoint import trusted_state_from_node

    t = trusted_state_from_node(sample_host.url, network, retry_delays=())
    assert t == trusted_1024  # the archive's finalized state: slot 1024
    assert trusted_state_from_node(sample_host.url, network, expected_root=t.root,
                                   retry_delays=()) == t
    with pytest.raises(VerificationError, match="is not the expected 0x1111"):
        trusted_state_from_node(sample_host.url, network, expected_root=b"\x11" * 32,
                                retry_delays=())


def test_cli_trusted_state_url(sample_host, sample_dir, tmp_path, trusted_1024):
    for n in (14, 15, 16):
        shutil.copy(next(sample_dir.glob(f"minimal-{n:05d}-*.era")), tmp_path)
    runner = CliRunner()
    args = ["verify", str(tmp_path), "--level", "chain", "--trusted-state", sample_host.url,
            "-j", "1", "--config", str(sample_dir / "spec.json")]
    res = runner.invoke(main, args + ["--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["anchor"]["kind"] == "trusted_state" and rep["anchor"]["slot"] == 1024
    assert [f["anchored"] for f in rep["files"]] == [True] * 3
    root = "0x" + trusted_1024.root.hex()
    res = runner.invoke(main, args + ["--trusted-state-root", root])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, args + ["--trusted-state-root", "0x" + "11" * 32])
    assert res.exit_code == 1
    url = sample_host.url.rstrip("/")
    assert res.stderr.strip().splitlines()[-1] == (
        f"error: {url}/eth/v2/debug/beacon/states/finalized: state (slot 1024) root {root} is "
        f"not the expected 0x{'11' * 32}")


def test_cli_trusted_state_unreachable_node(sample_dir):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = CliRunner().invoke(main, ["verify", str(sample_dir), "--level", "chain",
                                    "--trusted-state", f"http://127.0.0.1:{port}"])
    assert res.exit_code == 2
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: http://127.0.0.1:{port}/eth/v2/debug/beacon/states/"
                           "finalized: "), line
    assert "connection refused" in line, line


@pytest.mark.parametrize("args, message", [
    (["--trusted-state", "/nonexistent/state.ssz"],
     "Invalid value for --trusted-state: '/nonexistent/state.ssz': no such file"),
    (["--trusted-state", "http://"],
     "Invalid value for --trusted-state: 'http://' is not an http:// or https:// URL with a "
     "host"),
    (["--trusted-state-root", "0x" + "11" * 32],
     "Error: --trusted-state-root needs --trusted-state"),
    (["--dask", "http://127.0.0.1:8786"],
     "Invalid value for '--dask': 'http://127.0.0.1:8786' is not a Dask scheduler address"),
    (["--dask", "127.0.0.1"],
     "Invalid value for '--dask': '127.0.0.1' is not a Dask scheduler address"),
])
def test_bad_trusted_state_and_dask_options_exit_2(sample_dir, args, message):
    res = CliRunner().invoke(main, ["verify", str(sample_dir), "--level", "chain", *args])
    assert res.exit_code == 2, res.output
    assert message in res.stderr, res.stderr
