#!/usr/bin/env python3
"""Build tests/data/lightclient/: light-client data of an altair -> fulu chain made by the spec.

The executable consensus spec (`eth_consensus_specs`, minimal preset: 8 slots per epoch, 8
epochs per sync-committee period) and its test helpers build a chain of real signed blocks with
64 validators, genesis in altair, a block in every slot, full attestations (so it justifies and
finalizes) and a full sync aggregate in every block, signed with the helpers' deterministic
keys.  Forks at epochs FORK_EPOCHS: every fork after altair falls inside a sync-committee
period, and the chain spans periods 0..3.

From that chain the spec's own full-node functions (`create_light_client_bootstrap`,
`create_light_client_update`, `create_light_client_finality_update`,
`create_light_client_optimistic_update`), each in the fork of its attested block as a beacon
node serves them, make:
- bootstraps for every epoch-boundary block root from epoch 1 up to the last finalized one;
- the best update of every period (the spec's `is_better_update` over every block's update,
  compared in the latest fork's format), as `/eth/v1/beacon/light_client/updates` serves them;
- the latest finality and optimistic updates;
- `samples`: more updates for the oracle tests (every 8th block, and the ones around each fork,
  where the signature slot's fork differs from the attested header's);
- the checkpoint a node serves for the finalized header the store ends at (the epoch-boundary
  state and the block), for `era checkpoint-sync --trusted-block-root`, and the checkpoint
  one epoch earlier with the blocks between (for `era backfill --trusted-block-root`);
- the chain's era files up to the last finalized era boundary (eras 0..3, written with
  era_tools' EraWriter: era 0 = genesis state only), which the checkpoint state's
  historical_roots/historical_summaries anchor (`era verify --trusted-block-root`).
Finally a spec `LightClientStore` is run from the first bootstrap through the per-period
updates and the latest finality update; its finalized and optimistic headers are the expected
result (`expected` in manifest.json).

Written: one `<name>.ssz` per item, `manifest.json` (per item: kind, fork, period, slots, file),
`spec.json` (the `/eth/v1/config/spec` shape) and `genesis.json`.  Deterministic: signatures
are deterministic, and so is everything else.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import make_spec_chain  # noqa: E402  (the import hook and the spec.json shape)

DEFAULT_OUT = ROOT / "tests" / "data" / "lightclient"
CONFIG_NAME = "lcchain"
VALIDATORS = 64
GENESIS_TIME = 1_700_000_000
FORKS = ("altair", "bellatrix", "capella", "deneb", "electra", "fulu")
# Period p covers epochs 8p .. 8p+7.  Capella (3), deneb (9), electra (12) and fulu (17) all
# fall inside a period.
FORK_EPOCHS = {"altair": 0, "bellatrix": 1, "capella": 3, "deneb": 9, "electra": 12, "fulu": 17}
LAST_SLOT = 28 * 8   # epochs 0..27: periods 0..3, period 3 half done


def phases() -> dict:
    """The minimal spec modules of every fork, with this chain's fork schedule."""
    import importlib

    out = {}
    for fork in FORKS:
        mod = importlib.import_module(f"eth_consensus_specs.{fork}.minimal")
        over = {f"{f.upper()}_FORK_EPOCH": e for f, e in FORK_EPOCHS.items()
                if hasattr(mod.config, f"{f.upper()}_FORK_EPOCH")}
        mod.config = mod.config._replace(**over)
        out[fork] = mod
    return out


def fork_at_epoch(epoch: int) -> str:
    return [f for f in FORKS if FORK_EPOCHS[f] <= epoch][-1]


def build_chain(P: dict, progress=None) -> dict:
    """Blocks (slot -> signed block), post-states (slot -> state) and forks, one block a slot."""
    from eth_consensus_specs.test.helpers.attestations import state_transition_with_full_block
    from eth_consensus_specs.test.helpers.fork_transition import do_fork
    from eth_consensus_specs.test.helpers.genesis import (
        create_genesis_state,
        create_signed_genesis_block,
    )
    from eth_consensus_specs.test.helpers.light_client import get_sync_aggregate
    from eth_consensus_specs.utils import bls

    bls.bls_active = True
    spec = P["altair"]
    balances = [spec.MAX_EFFECTIVE_BALANCE] * VALIDATORS
    state = create_genesis_state(spec, balances, spec.MAX_EFFECTIVE_BALANCE)
    state.genesis_time = GENESIS_TIME
    blocks = {0: create_signed_genesis_block(spec, state)}
    states = {0: state.copy()}
    forks = {0: "altair"}
    spe = int(spec.SLOTS_PER_EPOCH)
    for slot in range(1, LAST_SLOT + 1):
        sync_aggregate, _ = get_sync_aggregate(spec, state, phases=P)
        want = fork_at_epoch(slot // spe)
        if want != spec.fork:
            state, block = do_fork(state, spec, P[want], slot // spe, with_block=True,
                                   sync_aggregate=sync_aggregate)
            spec = P[want]
        else:
            block = state_transition_with_full_block(spec, state, True, True,
                                                     sync_aggregate=sync_aggregate)
        blocks[slot], states[slot], forks[slot] = block, state.copy(), spec.fork
        if progress:
            progress(slot)
    return {"blocks": blocks, "states": states, "forks": forks}


def light_client_data(P: dict, chain: dict) -> dict:
    from eth_consensus_specs.test.helpers.light_client import upgrade_lc_update_to_new_spec

    blocks, states, forks = chain["blocks"], chain["states"], chain["forks"]
    by_root = {bytes(b.message.hash_tree_root()): b for b in blocks.values()}
    latest = P[FORKS[-1]]
    spe = int(latest.SLOTS_PER_EPOCH)
    gvr = states[0].genesis_validators_root

    def update_for(slot: int):
        """The update a node makes from the block at `slot` (attested: its parent)."""
        att_slot = slot - 1
        attested_state = states[att_slot]
        fin_root = bytes(attested_state.finalized_checkpoint.root)
        finalized_block = by_root.get(fin_root) if fin_root != b"\x00" * 32 else None
        d_spec = P[forks[att_slot]]
        return d_spec, d_spec.create_light_client_update(
            states[slot], blocks[slot], attested_state, blocks[att_slot], finalized_block)

    items = []

    def add(kind: str, fork: str, obj, **extra):
        name = f"{kind}_{len(items):03d}"
        items.append({"name": name, "kind": kind, "fork": fork, "file": name + ".ssz",
                      "ssz": obj.encode_bytes(), **extra})

    # Every block's update; the best per period (attested period) by the spec's rule.
    best: dict[int, tuple] = {}
    all_updates = {}
    for slot in range(2, LAST_SLOT + 1):
        d_spec, upd = update_for(slot)
        all_updates[slot] = (d_spec, upd)
        period = int(latest.compute_sync_committee_period_at_slot(upd.attested_header.beacon.slot))
        up = upgrade_lc_update_to_new_spec(d_spec, latest, upd, P)
        if period not in best or latest.is_better_update(up, best[period][2]):
            best[period] = (d_spec, upd, up)

    # Bootstraps at epoch-boundary blocks up to the last finalized checkpoint.
    final_state = states[LAST_SLOT]
    last_fin_epoch = int(final_state.finalized_checkpoint.epoch)
    for epoch in range(1, last_fin_epoch + 1):
        slot = epoch * spe
        d_spec = P[forks[slot]]
        boot = d_spec.create_light_client_bootstrap(states[slot], blocks[slot])
        add("bootstrap", d_spec.fork, boot, slot=slot,
            block_root="0x" + bytes(blocks[slot].message.hash_tree_root()).hex())
    for period in sorted(best):
        d_spec, upd, _ = best[period]
        add("update", d_spec.fork, upd, period=period,
            attested_slot=int(upd.attested_header.beacon.slot),
            signature_slot=int(upd.signature_slot))
    d_spec, last = all_updates[LAST_SLOT]
    fin = d_spec.create_light_client_finality_update(last)
    opt = d_spec.create_light_client_optimistic_update(last)
    add("finality_update", d_spec.fork, fin, attested_slot=int(fin.attested_header.beacon.slot),
        finalized_slot=int(fin.finalized_header.beacon.slot), signature_slot=int(fin.signature_slot))
    add("optimistic_update", d_spec.fork, opt,
        attested_slot=int(opt.attested_header.beacon.slot), signature_slot=int(opt.signature_slot))
    # An older finality update, as a stale node would serve it (end of period 1).
    d_spec, old = all_updates[2 * 64 - 1]
    oldfin = d_spec.create_light_client_finality_update(old)
    add("finality_update_old", d_spec.fork, oldfin,
        attested_slot=int(oldfin.attested_header.beacon.slot),
        finalized_slot=int(oldfin.finalized_header.beacon.slot),
        signature_slot=int(oldfin.signature_slot))
    # Samples for the oracle: every 8th block, and the blocks around each fork.
    fork_slots = {FORK_EPOCHS[f] * spe for f in FORKS[1:]}
    sample_slots = sorted({s for s in all_updates if s % 8 == 5}
                          | {s + d for s in fork_slots for d in (0, 1)})
    for slot in sample_slots:
        d_spec, upd = all_updates[slot]
        add("sample", d_spec.fork, upd, attested_slot=int(upd.attested_header.beacon.slot),
            signature_slot=int(upd.signature_slot),
            period=int(latest.compute_sync_committee_period_at_slot(
                upd.attested_header.beacon.slot)))

    expected = run_store(P, items, gvr)
    # The checkpoint a node would serve for the finalized header the store ends at: the
    # epoch-boundary state whose latest block is that header's block, and the block.
    fin_slot = expected["finalized"]["slot"]
    state_slot = -(-fin_slot // spe) * spe
    checkpoint = {"state_slot": state_slot, "block_slot": fin_slot,
                  "state_fork": forks[state_slot], "block_fork": forks[fin_slot],
                  "state": states[state_slot].encode_bytes(),
                  "block": blocks[fin_slot].encode_bytes(),
                  "state_root": "0x" + bytes(states[state_slot].hash_tree_root()).hex()}
    assert "0x" + bytes(blocks[fin_slot].message.hash_tree_root()).hex() == \
        expected["finalized"]["root"]
    # An earlier checkpoint (one epoch before) and the blocks from it up to the finalized one:
    # a store anchored there is linked to the verified header by parent roots (backfill).
    early = state_slot - spe
    checkpoint["early_state"] = {"slot": early, "fork": forks[early],
                                 "ssz": states[early].encode_bytes(),
                                 "state_root": "0x" + bytes(states[early].hash_tree_root()).hex()}
    checkpoint["blocks"] = [{"slot": s, "fork": forks[s], "ssz": blocks[s].encode_bytes(),
                             "root": "0x" + bytes(blocks[s].message.hash_tree_root()).hex()}
                            for s in range(early, fin_slot + 1)]
    return {"items": items, "expected": expected, "checkpoint": checkpoint,
            "genesis_validators_root": "0x" + bytes(gvr).hex(),
            "finalized_epoch": last_fin_epoch}


def decode_item(P: dict, item: dict):
    spec = P[item["fork"]]
    cls = {"bootstrap": spec.LightClientBootstrap, "update": spec.LightClientUpdate,
           "sample": spec.LightClientUpdate, "finality_update": spec.LightClientFinalityUpdate,
           "finality_update_old": spec.LightClientFinalityUpdate,
           "optimistic_update": spec.LightClientOptimisticUpdate}[item["kind"]]
    return cls.decode_bytes(item["ssz"])


def run_store(P: dict, items: list, gvr) -> dict:
    """The spec's LightClientStore (latest fork's format) from the first bootstrap through the
    per-period updates, then the latest finality and optimistic updates."""
    from eth_consensus_specs.test.helpers.light_client import (
        upgrade_lc_bootstrap_to_new_spec,
        upgrade_lc_update_to_new_spec,
    )

    latest = P[FORKS[-1]]
    boot_item = next(i for i in items if i["kind"] == "bootstrap")
    boot = decode_item(P, boot_item)
    store = latest.initialize_light_client_store(
        bytes.fromhex(boot_item["block_root"][2:]),
        upgrade_lc_bootstrap_to_new_spec(P[boot_item["fork"]], latest, boot, P))
    current_slot = LAST_SLOT + 1
    for item in items:
        if item["kind"] not in ("update", "finality_update", "optimistic_update"):
            continue
        obj = decode_item(P, item)
        if item["kind"] == "update":
            up = upgrade_lc_update_to_new_spec(P[item["fork"]], latest, obj, P)
            latest.process_light_client_update(store, up, current_slot, gvr)
        elif item["kind"] == "finality_update":
            from eth_consensus_specs.test.helpers.light_client import (
                upgrade_lc_finality_update_to_new_spec,
            )
            up = upgrade_lc_finality_update_to_new_spec(P[item["fork"]], latest, obj, P)
            latest.process_light_client_finality_update(store, up, current_slot, gvr)
        else:
            from eth_consensus_specs.test.helpers.light_client import (
                upgrade_lc_header_to_new_spec,
            )
            up = latest.LightClientOptimisticUpdate(
                attested_header=upgrade_lc_header_to_new_spec(
                    P[item["fork"]], latest, obj.attested_header, P),
                sync_aggregate=obj.sync_aggregate, signature_slot=obj.signature_slot)
            latest.process_light_client_optimistic_update(store, up, current_slot, gvr)

    def header(h):
        return {"slot": int(h.beacon.slot), "root": "0x" + bytes(h.beacon.hash_tree_root()).hex(),
                "state_root": "0x" + bytes(h.beacon.state_root).hex()}

    return {"finalized": header(store.finalized_header),
            "optimistic": header(store.optimistic_header),
            "sync_committee_period": int(latest.compute_sync_committee_period_at_slot(
                store.finalized_header.beacon.slot)),
            "current_slot": current_slot}


def write_eras(out: Path, chain: dict, last_era: int) -> list[str]:
    """Era files 0..last_era (era N: the blocks of slots [(N-1)*64, N*64) and the state at
    slot N*64), named by era_tools' EraWriter."""
    from era_tools.era import EraWriter

    sphr = int(chain["sphr"])
    written = []
    for era in range(last_era + 1):
        with EraWriter(out, CONFIG_NAME, era, sphr) as w:
            if era > 0:
                for slot in range((era - 1) * sphr, era * sphr):
                    w.add_block(slot, ssz=chain["blocks"][slot].encode_bytes())
            w.set_state(ssz=chain["states"][era * sphr].encode_bytes())
            written.append(Path(w.finish()).name)
    return written


def write(out: Path, P: dict, data: dict, chain: dict | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("*.ssz"), *out.glob("*.era")]:
        old.unlink()
    era_files = []
    if chain is not None:  # the eras the checkpoint state's historical roots cover
        sphr = int(P["fulu"].SLOTS_PER_HISTORICAL_ROOT)
        chain["sphr"] = sphr
        era_files = write_eras(out, chain, data["checkpoint"]["state_slot"] // sphr)
    for item in data["items"]:
        (out / item["file"]).write_bytes(item.pop("ssz"))
    cp = data["checkpoint"]
    cp["state_file"], cp["block_file"] = "checkpoint_state.ssz", "checkpoint_block.ssz"
    (out / cp["state_file"]).write_bytes(cp.pop("state"))
    (out / cp["block_file"]).write_bytes(cp.pop("block"))
    es = cp["early_state"]
    es["file"] = f"checkpoint_state_{es['slot']}.ssz"
    (out / es["file"]).write_bytes(es.pop("ssz"))
    for b in cp["blocks"]:
        b["file"] = f"block_{b['slot']}.ssz"
        (out / b["file"]).write_bytes(b.pop("ssz"))
    spec = make_spec_chain.spec_json(P["fulu"])
    spec["CONFIG_NAME"] = CONFIG_NAME
    latest = P["fulu"]
    for key in ("EPOCHS_PER_SYNC_COMMITTEE_PERIOD", "MIN_SYNC_COMMITTEE_PARTICIPANTS",
                "UPDATE_TIMEOUT"):
        spec[key] = str(int(getattr(latest, key)))
    manifest = {
        "config_name": CONFIG_NAME,
        "preset_base": "minimal",
        "generator": "scripts/make_lightclient_data.py with eth-consensus-specs "
                     + importlib.metadata.version("eth-consensus-specs"),
        "validators": VALIDATORS,
        "fork_epochs": FORK_EPOCHS,
        "last_slot": LAST_SLOT,
        "genesis_time": GENESIS_TIME,
        "genesis_validators_root": data["genesis_validators_root"],
        "finalized_epoch": data["finalized_epoch"],
        "expected": data["expected"],
        "checkpoint": data["checkpoint"],
        "items": data["items"],
        "era_files": era_files,
    }
    genesis = {"genesis_validators_root": data["genesis_validators_root"],
               "genesis_time": str(GENESIS_TIME),
               "genesis_fork_version": "0x" + bytes(P["altair"].config.GENESIS_FORK_VERSION).hex()}
    for name, obj in (("spec.json", spec), ("genesis.json", genesis),
                      ("manifest.json", manifest)):
        tmp = out / (name + ".tmp")
        tmp.write_text(json.dumps(obj, indent=1) + "\n")
        tmp.replace(out / name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    make_spec_chain.install_spec_alias()
    t0 = time.monotonic()

    def progress(slot):
        if slot % 16 == 0:
            print(f"slot {slot}/{LAST_SLOT}  {time.monotonic() - t0:.0f}s", file=sys.stderr)

    P = phases()
    chain = build_chain(P, progress)
    data = light_client_data(P, chain)
    write(args.out, P, data, chain)
    print(f"{len(data['items'])} items, finalized epoch {data['finalized_epoch']}, expected "
          f"{data['expected']}; {time.monotonic() - t0:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
