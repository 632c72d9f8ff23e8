"""The committed light-client data (tests/data/lightclient/, scripts/make_lightclient_data.py),
decoded with era_tools' types, and the executable spec's view of the same chain (the oracle)."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

from era_tools import ssz
from era_tools.config import load_config

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "lightclient"

TYPE_NAMES = {"bootstrap": "LightClientBootstrap", "update": "LightClientUpdate",
              "sample": "LightClientUpdate", "finality_update": "LightClientFinalityUpdate",
              "finality_update_old": "LightClientFinalityUpdate",
              "optimistic_update": "LightClientOptimisticUpdate"}


@functools.lru_cache(maxsize=None)
def manifest() -> dict:
    return json.loads((DATA / "manifest.json").read_text())


@functools.lru_cache(maxsize=None)
def network():
    spec = json.loads((DATA / "spec.json").read_text())
    net = load_config(DATA / "spec.json")
    return net.with_genesis(bytes.fromhex(manifest()["genesis_validators_root"][2:]),
                            manifest()["genesis_time"]), spec


def gvr() -> bytes:
    return bytes.fromhex(manifest()["genesis_validators_root"][2:])


def raw(item: dict) -> bytes:
    return (DATA / item["file"]).read_bytes()


def cls_of(item: dict):
    return getattr(ssz.types_for(item["fork"], "minimal"), TYPE_NAMES[item["kind"]])


def decode(item: dict):
    return ssz.decode(raw(item), cls_of(item))


def items(kind: str) -> list[dict]:
    return [i for i in manifest()["items"] if i["kind"] == kind]


def light_client_spec():
    from era_tools.lightclient.protocol import LightClientSpec

    net, spec = network()
    return LightClientSpec(net, blob_schedule=spec.get("BLOB_SCHEDULE"),
                           max_blobs_per_block_electra=int(spec["MAX_BLOBS_PER_BLOCK_ELECTRA"]))


# --------------------------------------------------------------------------------------------
# The executable spec, with this chain's fork schedule


def phases() -> dict:
    """The spec modules with this chain's fork schedule.  The schedule lives in each module's
    global `config`, which other tests (the spec chain's) set to theirs: it is set again on
    every call, so the order tests run in does not matter."""
    if str(ROOT / "scripts") not in sys.path:
        sys.path.insert(0, str(ROOT / "scripts"))
    import make_lightclient_data
    import make_spec_chain

    make_spec_chain.install_spec_alias()
    from eth_consensus_specs.utils import bls

    bls.bls_active = True
    return make_lightclient_data.phases()


def spec_decode(item_or_fork, data: bytes | None = None, kind: str | None = None):
    """The spec's object for an item (or for `data` of `kind` in a fork)."""
    if isinstance(item_or_fork, dict):
        fork, kind, data = item_or_fork["fork"], item_or_fork["kind"], raw(item_or_fork)
    else:
        fork = item_or_fork
    return getattr(phases()[fork], TYPE_NAMES[kind]).decode_bytes(data)


def spec_upgrade(fork: str, obj, kind: str):
    """An item in the latest fork's format (how the spec's store takes it)."""
    from eth_consensus_specs.test.helpers import light_client as h

    P = phases()
    latest = P["fulu"]
    if kind == "bootstrap":
        return h.upgrade_lc_bootstrap_to_new_spec(P[fork], latest, obj, P)
    if kind in ("update", "sample"):
        return h.upgrade_lc_update_to_new_spec(P[fork], latest, obj, P)
    if kind.startswith("finality_update"):
        return h.upgrade_lc_finality_update_to_new_spec(P[fork], latest, obj, P)
    return latest.LightClientOptimisticUpdate(
        attested_header=h.upgrade_lc_header_to_new_spec(P[fork], latest, obj.attested_header, P),
        sync_aggregate=obj.sync_aggregate, signature_slot=obj.signature_slot)


def spec_as_update(fork: str, obj, kind: str):
    """The latest-fork LightClientUpdate the spec's process functions would make of it."""
    latest = phases()["fulu"]
    up = spec_upgrade(fork, obj, kind)
    if kind in ("update", "sample"):
        return up
    if kind.startswith("finality_update"):
        return latest.LightClientUpdate(
            attested_header=up.attested_header,
            next_sync_committee=latest.SyncCommittee(),
            next_sync_committee_branch=latest.NextSyncCommitteeBranch(),
            finalized_header=up.finalized_header, finality_branch=up.finality_branch,
            sync_aggregate=up.sync_aggregate, signature_slot=up.signature_slot)
    return latest.LightClientUpdate(
        attested_header=up.attested_header, next_sync_committee=latest.SyncCommittee(),
        next_sync_committee_branch=latest.NextSyncCommitteeBranch(),
        finalized_header=latest.LightClientHeader(),
        finality_branch=latest.FinalityBranch(),
        sync_aggregate=up.sync_aggregate, signature_slot=up.signature_slot)
