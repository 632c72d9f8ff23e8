"""`era checkpoint-sync` over a real HTTP Beacon API server on 127.0.0.1."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from era_tools.cli import main
from era_tools.errors import PeerError, VerificationError
from era_tools.sync.pull import node_network
from era_tools.store import ChainStore
from era_tools.sync.checkpoint import checkpoint_sync
from era_tools.sync.peers import BeaconApiClient
from peers import FixtureNode

ROOT_1024 = "0x3b3a905a95c4ff2f04bcbb91831d2b46a31505bd30b8bc9034071a250cee99d9"


@pytest.fixture(scope="module")
def node(fixture_dir):
    with FixtureNode(fixture_dir) as srv:
        yield srv


def test_checkpoint_sets_anchor_block_and_state(node, tmp_path):
    api = BeaconApiClient(node.url)
    net = node_network(api)
    seen = []
    with ChainStore.open(tmp_path / "db", net) as store:
        res = checkpoint_sync(store, api, progress=lambda n, t: seen.append((n, t)))
        a = store.anchor
        assert (res.state_slot, res.block_slot) == (1024, 1024)
        assert "0x" + res.block_root.hex() == ROOT_1024
        assert a.covered == [(1024, 1024)]
        assert a.oldest_block_slot == 1024 and "0x" + a.oldest_block_root.hex() == ROOT_1024
        assert store.has_state(1024) and store.get_block_ssz(res.block_root)
        assert seen and seen[-1][0] == res.state_bytes
        # a rerun is a no-op
        assert checkpoint_sync(store, api).already


def test_cli_trusted_root_match_and_mismatch(node, tmp_path):
    r = CliRunner().invoke(main, ["checkpoint-sync", "--db", str(tmp_path / "a"),
                                  "--beacon-api", node.url, "--trusted-block-root", ROOT_1024])
    assert r.exit_code == 0, r.output
    assert "block slot 1024 " + ROOT_1024 in r.output
    bad = "0x" + "11" * 32
    r = CliRunner().invoke(main, ["checkpoint-sync", "--db", str(tmp_path / "b"),
                                  "--beacon-api", node.url, "--trusted-block-root", bad])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == (
        f"error: slot 1024: checkpoint block root {ROOT_1024} is not the trusted block root "
        f"{bad}")
    with ChainStore.open(tmp_path / "b", readonly=False, create=True,
                         network=node_network(BeaconApiClient(node.url))) as s:
        assert s.anchor.covered == []  # nothing written


def test_other_network_state_refused(fixture_dir, tmp_path):
    with FixtureNode(fixture_dir) as srv:
        api = BeaconApiClient(srv.url)
        net = node_network(api).with_genesis(genesis_validators_root=b"\xab" * 32)
        with ChainStore.open(tmp_path / "db", net) as store:
            with pytest.raises(VerificationError, match="another network"):
                checkpoint_sync(store, api)
            assert store.anchor.covered == []


def test_state_id_not_a_slot_is_a_usage_error(node, tmp_path):
    r = CliRunner().invoke(main, ["checkpoint-sync", "--db", str(tmp_path / "a"),
                                  "--beacon-api", node.url, "--state-id", "head"])
    assert r.exit_code == 2
    assert "error: --state-id 'head': give `finalized` or a slot number" in r.output


class FlakyFinalizedNode(FixtureNode):
    """Answers 404 to the first `misses` requests for states/finalized, as a node moving its
    finalized checkpoint does (Lodestar 1.5.1)."""

    misses = 2

    def _route(self, h, n):
        if h.path.startswith("/eth/v2/debug/beacon/states/finalized"):
            self.finalized_asks = getattr(self, "finalized_asks", 0) + 1
            if self.finalized_asks <= self.misses:
                return self._not_found(h, "finalized state")
        return super()._route(h, n)


def test_a_transient_404_for_the_finalized_state_is_retried(fixture_dir, tmp_path):
    with FlakyFinalizedNode(fixture_dir) as srv:
        api = BeaconApiClient(srv.url)
        with ChainStore.open(tmp_path / "db", node_network(api)) as store:
            res = checkpoint_sync(store, api, retry_delays=(0.01, 0.02, 0.04))
            assert res.state_slot == 1024 and store.has_state(1024)
        assert srv.finalized_asks == 3
    # still missing after every retry: one clear line, nothing stored
    FlakyFinalizedNode.misses = 10
    try:
        with FlakyFinalizedNode(fixture_dir) as srv:
            api = BeaconApiClient(srv.url)
            with ChainStore.open(tmp_path / "db2", node_network(api)) as store:
                with pytest.raises(PeerError) as e:
                    checkpoint_sync(store, api, retry_delays=(0.01, 0.02))
            assert srv.finalized_asks == 3
    finally:
        FlakyFinalizedNode.misses = 2
    assert str(e.value) == (f"{srv.url}/eth/v2/debug/beacon/states/finalized: the node has no "
                            "such state (404, 3 tries over 0.03 s; a node moving its finalized "
                            "checkpoint answers so for a while: try again)")
    assert not (tmp_path / "db2").exists()
    # the default delays grow from 0.5 s to at most 4 s and stay within ~30 s in all
    from era_tools.sync.checkpoint import FINALIZED_RETRY_DELAYS as d

    assert d[0] == 0.5 and max(d) == 4 and list(d) == sorted(d) and sum(d) <= 30


def test_state_id_off_an_epoch_boundary_is_a_usage_error(node, tmp_path):
    db = tmp_path / "a"
    r = CliRunner().invoke(main, ["checkpoint-sync", "--db", str(db), "--beacon-api", node.url,
                                  "--state-id", "1025"])
    assert r.exit_code == 2, r.output  # was 1 (a verification failure), after the download
    assert r.output.strip().splitlines()[-1] == (
        "error: --state-id 1025: not an epoch boundary (8 slots per epoch on minimal); give "
        "`finalized` or a slot such as 1024 or 1032")
    assert not db.exists()  # refused before the store is opened
