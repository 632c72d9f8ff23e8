"""Networks: built-ins, client config.yaml, beacon-node spec JSON, and how a command picks one."""

from __future__ import annotations

import json

import pytest

from era_tools.config import (BUILTIN, FORKS, get_network, load_config, network_from_spec,
                              resolve_network)
from era_tools.errors import ConfigError


def test_fixture_spec_json_gives_the_fixture_schedule(network, manifest):
    assert network.config_name == "minimal" and network.preset_base == "minimal"
    assert network.slots_per_historical_root == manifest["slots_per_historical_root"]
    assert [(f.name, f.epoch, "0x" + f.version.hex()) for f in network.forks] == [
        (f["fork"], f["epoch"], f["version"]) for f in manifest["fork_schedule"]]
    assert "0x" + network.genesis_validators_root.hex() == manifest["genesis_validators_root"]
    for rec in manifest["blocks"]:
        assert network.fork_name_at_slot(rec["slot"]) == rec["fork"]


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_networks(name):
    net = get_network(name)
    assert net.forks[0].name == "phase0" and net.forks[0].epoch == 0
    assert [f.epoch for f in net.forks] == sorted(f.epoch for f in net.forks)
    assert len({f.version for f in net.forks}) == len(net.forks)
    # round trip through the spec-endpoint shape
    again = network_from_spec(net.to_spec_json())
    assert again.forks == net.forks and again.preset_base == net.preset_base


def test_mainnet_facts():
    net = get_network("mainnet")
    assert net.slots_per_historical_root == 8192
    assert net.fork_name_at_slot(74240 * 32 - 1) == "phase0"
    assert net.fork_name_at_slot(74240 * 32) == "altair"
    assert net.fork_at_epoch(411392).name == "fulu"
    assert net.genesis_validators_root.hex().startswith("4b363db9")


def test_client_config_yaml(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "PRESET_BASE: 'minimal'\nCONFIG_NAME: 'devnet'\nGENESIS_FORK_VERSION: 0x10000038\n"
        "ALTAIR_FORK_VERSION: 0x20000038\nALTAIR_FORK_EPOCH: 0\n"
        "BELLATRIX_FORK_VERSION: 0x30000038\nBELLATRIX_FORK_EPOCH: 0\n"
        "CAPELLA_FORK_VERSION: 0x40000038\nCAPELLA_FORK_EPOCH: 0\n"
        "DENEB_FORK_VERSION: 0x50000038\nDENEB_FORK_EPOCH: 4\n"
        "ELECTRA_FORK_VERSION: 0x60000038\nELECTRA_FORK_EPOCH: 18446744073709551615\n"
        "SECONDS_PER_SLOT: 6\n")
    net = load_config(tmp_path / "config.yaml")
    assert net.config_name == "devnet" and net.seconds_per_slot == 6
    assert [f.name for f in net.forks] == ["phase0", "altair", "bellatrix", "capella", "deneb"]
    assert net.fork_name_at_slot(0) == "capella"  # same-epoch forks: the latest wins
    assert net.fork_name_at_slot(32) == "deneb"
    assert net.fork_by_name("deneb").version == bytes.fromhex("50000038")


def test_slot_duration_ms_and_bad_configs(tmp_path):
    net = network_from_spec({"data": {"PRESET_BASE": "mainnet", "CONFIG_NAME": "x",
                                      "GENESIS_FORK_VERSION": "0x00000000",
                                      "SLOT_DURATION_MS": "6000"}})
    assert net.seconds_per_slot == 6
    with pytest.raises(ConfigError, match="unknown PRESET_BASE 'tiny'"):
        network_from_spec({"PRESET_BASE": "tiny", "GENESIS_FORK_VERSION": "0x00000000"})
    with pytest.raises(ConfigError, match="GENESIS_FORK_VERSION missing"):
        network_from_spec({"PRESET_BASE": "mainnet"})
    with pytest.raises(ConfigError, match="SLOTS_PER_EPOCH=8 does not match preset mainnet"):
        network_from_spec({"PRESET_BASE": "mainnet", "GENESIS_FORK_VERSION": "0x00000000",
                           "SLOTS_PER_EPOCH": "8"})
    bad = tmp_path / "spec.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not a valid config file"):
        load_config(bad)
    with pytest.raises(ConfigError, match="unknown network 'mainet'"):
        get_network("mainet")


def test_resolve_network_order(tmp_path, sample_dir):
    net, how = resolve_network(paths=[sample_dir / "minimal-00001-3a1e96ab.era"])
    assert net.config_name == "minimal" and "spec.json" in how
    net, how = resolve_network("sepolia", None, [sample_dir])
    assert net.name == "sepolia" and how == "--network sepolia"
    (tmp_path / "mainnet-00001-40cf2f3c.era").write_bytes(b"")
    net, how = resolve_network(paths=[tmp_path / "mainnet-00001-40cf2f3c.era"])
    assert net.name == "mainnet" and "inferred from file names" in how
    (tmp_path / "mainnet-00001-40cf2f3c.era").unlink()
    (tmp_path / "x.era").write_bytes(b"")
    with pytest.raises(ConfigError, match="cannot infer the network: pass --network NAME"):
        resolve_network(paths=[tmp_path / "x.era"])
    with pytest.raises(ConfigError, match="not both"):
        resolve_network("mainnet", str(sample_dir / "spec.json"))


def test_eip4844_alias():
    spec = json.loads(json.dumps({"PRESET_BASE": "minimal", "GENESIS_FORK_VERSION": "0x00000001",
                                  "ALTAIR_FORK_VERSION": "0x01000001", "ALTAIR_FORK_EPOCH": "0",
                                  "BELLATRIX_FORK_VERSION": "0x02000001",
                                  "BELLATRIX_FORK_EPOCH": "0",
                                  "CAPELLA_FORK_VERSION": "0x03000001", "CAPELLA_FORK_EPOCH": "1",
                                  "EIP4844_FORK_VERSION": "0x04000001", "EIP4844_FORK_EPOCH": "2"}))
    net = network_from_spec(spec)
    assert net.forks[-1].name == "deneb" and net.forks[-1].epoch == 2


def test_gnosis_preset_ssz_sizes():
    """The gnosis preset differs from mainnet, where SSZ sizes are concerned, in SLOTS_PER_EPOCH
    (16) and MAX_WITHDRAWALS_PER_PAYLOAD (8): gnosischain/configs presets/gnosis and Lodestar's
    gnosis preset (its other differences, BASE_REWARD_FACTOR, EPOCHS_PER_SYNC_COMMITTEE_PERIOD,
    MAX_VALIDATORS_PER_WITHDRAWALS_SWEEP, change no type).  No executable spec builds this
    preset, so the check is that the preset differs in exactly those two (the fork modules
    build every type from the preset) and that the lists and vectors sized from them follow."""
    from era_tools import ssz
    from era_tools.config import PRESETS

    diff = {k for k in PRESETS["mainnet"] if PRESETS["gnosis"][k] != PRESETS["mainnet"][k]}
    assert diff == {"SLOTS_PER_EPOCH", "MAX_WITHDRAWALS_PER_PAYLOAD"}
    assert PRESETS["gnosis"]["SLOTS_PER_EPOCH"] == 16
    assert PRESETS["gnosis"]["MAX_WITHDRAWALS_PER_PAYLOAD"] == 8

    def fields(fork, preset, name):
        return dict(getattr(ssz.types_for(fork, preset), name)._meta.fields)

    for fork in ("phase0", "altair", "bellatrix", "capella", "deneb", "electra", "fulu"):
        g, m = fields(fork, "gnosis", "BeaconState"), fields(fork, "mainnet", "BeaconState")
        assert g["eth1_data_votes"].max_length == 64 * 16
        assert m["eth1_data_votes"].max_length == 64 * 32
        if fork == "phase0":
            assert g["previous_epoch_attestations"].max_length == 128 * 16
        if fork in ("capella", "deneb", "electra", "fulu"):
            assert fields(fork, "gnosis", "ExecutionPayload")["withdrawals"].max_length == 8
            assert fields(fork, "mainnet", "ExecutionPayload")["withdrawals"].max_length == 16
        if fork == "fulu":
            assert g["proposer_lookahead"].length == 2 * 16


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_spec_mismatch_names_the_first_differing_key(name):
    from era_tools.config import spec_mismatch

    net = BUILTIN[name]
    spec = net.to_spec_json()
    assert spec_mismatch(net, spec) is None and spec_mismatch(net, {"data": spec}) is None
    later = net.forks[-1]
    key = "GENESIS" if later.name == "phase0" else later.name.upper()
    assert spec_mismatch(net, dict(spec, **{f"{key}_FORK_VERSION": "0x99999999"})) == (
        f"{key}_FORK_VERSION", "0x" + later.version.hex(), "0x99999999")
    assert spec_mismatch(net, dict(spec, SLOTS_PER_EPOCH="7")) == (
        "SLOTS_PER_EPOCH", str(net.slots_per_epoch), "7")
    # a fork the network does not schedule, scheduled by the node
    unscheduled = [f for f in FORKS if f not in {x.name for x in net.forks}]
    if unscheduled:
        k = unscheduled[0].upper()
        assert spec_mismatch(net, dict(spec, **{f"{k}_FORK_EPOCH": "5"}))[0] == f"{k}_FORK_EPOCH"
