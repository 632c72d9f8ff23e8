"""The multi-server light client and `era lightclient`, against real HTTP servers on 127.0.0.1
serving the spec-built data (tests/lightclient_server.py), honest and hostile.

The expected end state is the executable spec's own store run over the same data
(manifest.json `expected`, written by scripts/make_lightclient_data.py)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

import pytest

from era_tools.lightclient.driver import (AllServersWrongError, LightClientServer,
                                          NoServerError, network_from_servers,
                                          sync_light_client, verified_finalized_header)
from tests import lightclient_data as D
from tests.lightclient_server import LightClientServer as Server

ROOT = D.ROOT
EXPECTED = D.manifest()["expected"]
TRUSTED = D.items("bootstrap")[0]["block_root"]
LIARS = ["bad_signature", "bit_flipped", "bad_branch", "wrong_digest", "bad_bootstrap"]


def _sync(*modes, timeout=20.0, trusted=TRUSTED):
    with contextlib.ExitStack() as st:
        srvs = [st.enter_context(Server(m)) for m in modes]
        servers = [LightClientServer(s.url) for s in srvs]
        net, spec_json = network_from_servers(servers)
        res = sync_light_client(servers, bytes.fromhex(trusted[2:]), net, spec_json,
                                timeout=timeout, fail_delay=0.02, fail_delay_cap=0.2)
        return res.to_dict(), srvs


def _assert_expected(out):
    assert out["finalized"] == EXPECTED["finalized"]
    assert out["optimistic"] == EXPECTED["optimistic"]
    assert out["sync_committee_period"] == EXPECTED["sync_committee_period"]


@pytest.mark.parametrize("mode", ["honest", "json_only", "json_no_version", "flaky"])
def test_one_server_syncs_to_the_specs_store(mode):
    out, (srv,) = _sync(mode)
    _assert_expected(out)
    assert out["servers"][0]["status"] in ("ok", "failing")
    # bootstrap, per-period pages (none above the server's limit of 4), finality, optimistic
    ups = [r for r in srv.requests if "/updates?" in r]
    assert ups and all(int(r.split("count=")[1]) <= 4 for r in ups)


def test_ssz_and_json_servers_together():
    out, _ = _sync("json_only", "honest")
    _assert_expected(out)
    assert [s["status"] for s in out["servers"]] == ["ok", "ok"]


@pytest.mark.parametrize("liar", LIARS)
def test_one_honest_server_among_liars_is_enough(liar):
    out, _ = _sync(liar, "honest")
    _assert_expected(out)
    liar_s, honest_s = out["servers"]
    assert liar_s["status"] == "dropped" and liar_s["dropped_for"]
    assert honest_s["status"] == "ok"


def test_honest_server_among_all_the_liars():
    out, _ = _sync(*LIARS, "stale", "withhold", "honest")
    _assert_expected(out)
    status = [s["status"] for s in out["servers"]]
    # every liar that served updates is dropped (the bootstrap came from the first server, so
    # bad_bootstrap was never asked for its wrong one); nobody honest is
    assert status[:4] == ["dropped"] * 4
    assert "dropped" not in status[4:]


@pytest.mark.parametrize("liar", LIARS)
def test_a_liar_alone_is_a_verification_failure(liar):
    with pytest.raises(AllServersWrongError, match="wrong data"):
        _sync(liar)


def test_stale_server_alone_gives_its_older_finality_and_with_an_honest_one_the_newest():
    out, _ = _sync("stale")
    old = D.items("finality_update_old")[0]
    assert out["finalized"]["slot"] == old["finalized_slot"]
    assert out["servers"][0]["status"] == "ok"
    out, _ = _sync("stale", "honest")
    _assert_expected(out)


def test_withholding_server_is_retried_not_dropped_and_an_honest_one_finishes():
    out, (w, _) = _sync("withhold", "honest")
    _assert_expected(out)
    assert out["servers"][0]["status"] != "dropped"
    with pytest.raises(NoServerError, match="period 0"):
        _sync("withhold", timeout=1.0)


def test_server_answering_500_then_recovering_is_retried():
    out, (srv,) = _sync("flaky")
    _assert_expected(out)
    assert out["servers"][0]["status"] != "dropped"
    assert out["servers"][0]["verified_items"] > 0


def test_unknown_trusted_root_is_no_server_error():
    with pytest.raises(NoServerError, match="no server gave a bootstrap"):
        _sync("honest", timeout=0.5, trusted="0x" + "ab" * 32)


def test_verified_finalized_header_hook():
    with Server("bad_signature") as bad, Server("honest") as good:
        header = verified_finalized_header([bad.url, good.url], bytes.fromhex(TRUSTED[2:]))
    assert int(header.beacon.slot) == EXPECTED["finalized"]["slot"]
    assert "0x" + bytes(header.beacon.state_root).hex() == EXPECTED["finalized"]["state_root"]


def test_unreachable_server_beside_an_honest_one():
    with Server("honest") as good:
        servers = [LightClientServer("http://127.0.0.1:9"), LightClientServer(good.url)]
        net, sj = network_from_servers(servers)
        res = sync_light_client(servers, bytes.fromhex(TRUSTED[2:]), net, sj, timeout=10,
                                fail_delay=0.02)
    _assert_expected(res.to_dict())


# --------------------------------------------------------------------------------------------
# The command


def _era(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", "from era_tools.cli import main; main()",
                           *args], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=ROOT)


def test_cli_json_with_a_liar_and_an_honest_server():
    with Server("bad_branch") as bad, Server("json_only") as good:
        r = _era("lightclient", "--beacon-api", bad.url, "--beacon-api", good.url,
                 "--trusted-block-root", TRUSTED, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    _assert_expected(out)
    assert [s["status"] for s in out["servers"]] == ["dropped", "ok"]
    assert "weak-subjectivity" in r.stderr  # the chain's genesis is long past


def test_cli_text_and_exit_codes():
    with Server("honest") as good:
        r = _era("lightclient", "--beacon-api", good.url, "--trusted-block-root", TRUSTED)
        assert r.returncode == 0, r.stderr
        assert f"finalized: slot {EXPECTED['finalized']['slot']} root " \
               f"{EXPECTED['finalized']['root']}" in r.stdout
        bad_root = _era("lightclient", "--beacon-api", good.url, "--trusted-block-root", "0x12")
        assert bad_root.returncode == 2 and "Traceback" not in bad_root.stderr
    with Server("bad_signature") as bad:
        r = _era("lightclient", "--beacon-api", bad.url, "--trusted-block-root", TRUSTED)
    assert r.returncode == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1]  # progress lines, then the one error line
    assert last.startswith("error: ") and "signature does not verify" in last
    r = _era("lightclient", "--beacon-api", "http://127.0.0.1:9", "--trusted-block-root",
             TRUSTED)
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and last.startswith("error: ") and "refused" in last


def test_optimistic_update_newer_than_every_finality_update_asks_for_finality_again():
    """The first finality_update request finds none; the optimistic update is of a newer
    epoch than every finality update seen, so every server is asked again, and the finalized
    header moves past what the period updates alone prove (slot 192)."""
    out, (srv,) = _sync("late_finality")
    _assert_expected(out)
    assert sum(r.endswith("/finality_update") for r in srv.requests) >= 2
    per_period = D.decode(D.items("update")[-1])
    assert int(per_period.finalized_header.beacon.slot) < out["finalized"]["slot"]


def test_an_announced_head_nobody_can_prove_does_not_stop_the_sync():
    """A server announces an optimistic update of period 10 (unverifiable: no committee for
    it); the periods nobody serves are given up after a few tries, with a warning, and the
    result is what the honest data proves."""
    out, _ = _sync("far_head", "honest")
    _assert_expected(out)
    assert any("announced sync-committee period 10" in w for w in out["warnings"])
    assert [s["status"] for s in out["servers"]] != ["dropped", "dropped"]


def test_a_node_refusing_large_pages_is_asked_one_period_at_a_time():
    with Server("honest", max_count=1) as srv:
        servers = [LightClientServer(srv.url)]
        net, sj = network_from_servers(servers)
        res = sync_light_client(servers, bytes.fromhex(TRUSTED[2:]), net, sj, timeout=20,
                                fail_delay=0.02, fail_delay_cap=0.2)
    _assert_expected(res.to_dict())
    counts = [int(r.split("count=")[1]) for r in srv.requests if "/updates?" in r]
    assert counts[0] > 1 and set(counts[1:]) == {1}


def test_readme_light_client_step_runs(tmp_path):
    import re
    import socket

    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text.split("### Trust no node", 1)[1], re.S).group(1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    script = (block.replace("8081", port).replace("python ", f"{sys.executable} ")
              .replace("era lightclient", f"{sys.executable} -m era_tools lightclient")
              .replace("kill %1", "kill %1; wait")
              .replace("sleep 5", "for i in $(seq 300); do " + sys.executable + " -c \"import "
                       "socket; socket.create_connection(('127.0.0.1', " + port + "), 1)\" "
                       "2>/dev/null && break; sleep 0.1; done"))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], capture_output=True,
                       text=True, env=env, cwd=ROOT, timeout=120)
    assert r.returncode in (0, 143), r.stderr  # 143: the killed server, waited for
    assert f"finalized: slot {EXPECTED['finalized']['slot']}" in r.stdout


def test_servers_disagreeing_on_the_network_need_a_network_flag():
    """A node lying about the genesis root would make every honest signature fail: without
    --network/--config the servers must agree, with it the liar is only marked failing."""
    from era_tools.errors import ConfigError

    with Server("other_network") as liar, Server("honest") as good:
        servers = [LightClientServer(liar.url), LightClientServer(good.url)]
        with pytest.raises(ConfigError, match="disagree on the network"):
            network_from_servers(servers)
        expected = D.network()[0]
        servers = [LightClientServer(liar.url), LightClientServer(good.url)]
        net, sj = network_from_servers(servers, expected)
        assert net.genesis_validators_root == D.gvr()
        res = sync_light_client(servers, bytes.fromhex(TRUSTED[2:]), net, sj, timeout=20,
                                fail_delay=0.02)
    _assert_expected(res.to_dict())
    r = _era_cli_other_network()
    assert r.returncode == 2 and "disagree on the network" in r.stderr.strip().splitlines()[-1]


def _era_cli_other_network():
    with Server("other_network") as liar, Server("honest") as good:
        return _era("lightclient", "--beacon-api", liar.url, "--beacon-api", good.url,
                    "--trusted-block-root", TRUSTED)
