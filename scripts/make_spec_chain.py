#!/usr/bin/env python3
"""Build tests/data/spec_chain/: era files of a deneb -> electra -> fulu chain made by the spec.

The executable consensus spec (`eth_consensus_specs`, minimal preset) and its test helpers build a
short chain of real signed blocks: genesis in deneb with 64 validators, electra from epoch
ELECTRA_EPOCH (slot 64, exactly an era boundary, so the era-1 state is an electra state although
every era-1 block is deneb), fulu from epoch FULU_EPOCH (mid era 3, its first slot empty).  Every
block is processed by `state_transition` with signature and state-root checks on; proposer
signatures and RANDAO reveals come from the helpers' deterministic private keys.  Blocks carry
attestations for the previous slot (full committees, so the chain justifies and finalizes) and a
few carry blob transactions with KZG commitments.  Some slots are empty: a seeded random choice
plus fixed ones (slot 128, an era boundary; slot 144, the first fulu slot; slot 192, the last).

Written with era_tools' own EraWriter: eras 0..3 (era 0 = genesis state only), plus `spec.json`
(the `/eth/v1/config/spec` shape), `genesis.json` and `manifest.json` (per slot: fork, block root
or null when empty, state root after the slot; per era: state slot and root; the final state
root).  Deterministic given --seed: BLS signatures are deterministic, and so is everything else.
Snappy encoders differ, so compare regenerated files with `era_tools.era.contents_equal`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import json
import random
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from era_tools.era import EraWriter  # noqa: E402

DEFAULT_OUT = ROOT / "tests" / "data" / "spec_chain"
CONFIG_NAME = "specchain"
VALIDATORS = 64
ELECTRA_EPOCH = 8          # slot 64: an era boundary
FULU_EPOCH = 18            # slot 144: mid era 3
LAST_SLOT = 192            # eras 1..3 complete; the era-3 state is at slot 192
GENESIS_TIME = 1_700_000_000
FORCED_EMPTY = {128, 144, LAST_SLOT}   # era boundary without a block, first fulu slot, last slot
FORCED_BLOCK = {1, 63, 64, 65, 127, 129, 143, 145, 191}
BLOB_SLOTS = {5: 1, 70: 2, 150: 1}     # slot -> blob count (one per fork)
EMPTY_PROBABILITY = 0.12

# --------------------------------------------------------------------------------------------
# Making the spec's test helpers importable


class _SpecAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Some 1.7.0a13 helpers import `tests.core.pyspec.eth_consensus_specs...` (the path inside
    the spec repository).  Serve those names as aliases of the installed `eth_consensus_specs`
    modules (the same module objects), and `tests.core`, `tests.core.pyspec` as empty packages."""

    PREFIX = "tests.core.pyspec.eth_consensus_specs"
    PARENTS = ("tests.core", "tests.core.pyspec")

    def find_spec(self, name, path=None, target=None):
        if name in self.PARENTS or name == self.PREFIX or name.startswith(self.PREFIX + "."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        if name == "tests" and not any(
                f.find_spec(name, path) for f in sys.meta_path if f is not self
                and hasattr(f, "find_spec")):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        if spec.name.startswith(self.PREFIX):
            real = importlib.import_module("eth_consensus_specs" + spec.name[len(self.PREFIX):])
            spec.loader_state = real.__spec__
            return real
        mod = types.ModuleType(spec.name)
        mod.__path__ = []
        return mod

    def exec_module(self, module):
        real_spec = getattr(module.__spec__, "loader_state", None)
        if real_spec is not None:  # importlib set the alias spec on the real module; undo that
            module.__spec__ = real_spec


def install_spec_alias() -> None:
    if not any(isinstance(f, _SpecAlias) for f in sys.meta_path):
        sys.meta_path.insert(0, _SpecAlias())


# --------------------------------------------------------------------------------------------
# The chain


def _specs():
    """deneb/electra/fulu minimal spec modules with this chain's fork schedule in their config."""
    from eth_consensus_specs.deneb import minimal as deneb
    from eth_consensus_specs.electra import minimal as electra
    from eth_consensus_specs.fulu import minimal as fulu

    schedule = dict(ALTAIR_FORK_EPOCH=0, BELLATRIX_FORK_EPOCH=0, CAPELLA_FORK_EPOCH=0,
                    DENEB_FORK_EPOCH=0)
    for mod in (deneb, electra, fulu):
        over = dict(schedule)
        if hasattr(mod.config, "ELECTRA_FORK_EPOCH"):
            over["ELECTRA_FORK_EPOCH"] = ELECTRA_EPOCH
        if hasattr(mod.config, "FULU_FORK_EPOCH"):
            over["FULU_FORK_EPOCH"] = FULU_EPOCH
        mod.config = mod.config._replace(**over)
    return {"deneb": deneb, "electra": electra, "fulu": fulu}


def fork_at_slot(slot: int, slots_per_epoch: int) -> str:
    epoch = slot // slots_per_epoch
    if epoch >= FULU_EPOCH:
        return "fulu"
    if epoch >= ELECTRA_EPOCH:
        return "electra"
    return "deneb"


def choose_empty_slots(seed: int) -> set[int]:
    rng = random.Random(seed)
    empty = set(FORCED_EMPTY)
    for slot in range(1, LAST_SLOT):
        if slot in FORCED_BLOCK or slot in BLOB_SLOTS or slot in FORCED_EMPTY:
            continue
        if rng.random() < EMPTY_PROBABILITY:
            empty.add(slot)
    return empty


def spec_json(fulu_spec) -> dict:
    """The `/eth/v1/config/spec` answer for this chain: the fulu config with our schedule, the
    preset values that size types, and the signing domains."""
    out = {"CONFIG_NAME": CONFIG_NAME}
    cfg = fulu_spec.config
    for key in cfg._fields:
        val = getattr(cfg, key)
        if key == "BLOB_SCHEDULE":
            out[key] = [{k: str(v) for k, v in dict(e).items()} for e in val]
        elif isinstance(val, bytes):
            out[key] = "0x" + bytes(val).hex()
        else:
            out[key] = str(val)
    out["SECONDS_PER_SLOT"] = str(int(cfg.SLOT_DURATION_MS) // 1000)
    for key in ("SLOTS_PER_EPOCH", "SLOTS_PER_HISTORICAL_ROOT", "EPOCHS_PER_HISTORICAL_VECTOR",
                "EPOCHS_PER_SLASHINGS_VECTOR", "EPOCHS_PER_ETH1_VOTING_PERIOD",
                "HISTORICAL_ROOTS_LIMIT", "VALIDATOR_REGISTRY_LIMIT", "MAX_COMMITTEES_PER_SLOT",
                "TARGET_COMMITTEE_SIZE", "MAX_VALIDATORS_PER_COMMITTEE", "SYNC_COMMITTEE_SIZE",
                "MAX_WITHDRAWALS_PER_PAYLOAD", "MAX_BLOB_COMMITMENTS_PER_BLOCK",
                "MAX_ATTESTATIONS_ELECTRA", "MAX_ATTESTER_SLASHINGS_ELECTRA",
                "PENDING_PARTIAL_WITHDRAWALS_LIMIT", "PENDING_CONSOLIDATIONS_LIMIT",
                "MIN_SEED_LOOKAHEAD", "MAX_SEED_LOOKAHEAD"):
        out[key] = str(int(getattr(fulu_spec, key)))
    for key in ("DOMAIN_BEACON_PROPOSER", "DOMAIN_BEACON_ATTESTER", "DOMAIN_RANDAO",
                "DOMAIN_SYNC_COMMITTEE"):
        out[key] = "0x" + bytes(getattr(fulu_spec, key)).hex()
    # Forks after fulu are not part of this chain: leave them out rather than far-future.
    return {k: v for k, v in out.items() if not k.startswith(("GLOAS_", "HEZE_", "EIP"))}


def build_chain(seed: int, progress=None) -> dict:
    """Run the chain.  Returns blocks (slot -> SSZ), era states (era -> SSZ), the manifest and
    the configs.  `progress(slot)` is called after each slot."""
    install_spec_alias()
    from eth_consensus_specs.test.helpers.attestations import (
        get_valid_attestations_for_block_at_slot,
    )
    from eth_consensus_specs.test.helpers.blob import get_sample_blob_tx
    from eth_consensus_specs.test.helpers.block import build_empty_block, sign_block
    from eth_consensus_specs.test.helpers.execution_payload import (
        compute_el_block_hash_for_block,
    )
    from eth_consensus_specs.test.helpers.genesis import (
        create_genesis_state,
        create_signed_genesis_block,
    )
    from eth_consensus_specs.test.helpers.state import state_transition_and_sign_block
    from eth_consensus_specs.utils import bls
    from eth_consensus_specs.utils.kzg import load_trusted_setup

    bls.bls_active = True
    load_trusted_setup()  # blob commitments need it; the helpers do not load it themselves
    specs = _specs()
    deneb = specs["deneb"]
    spe = int(deneb.SLOTS_PER_EPOCH)
    sphr = int(deneb.SLOTS_PER_HISTORICAL_ROOT)
    assert LAST_SLOT % sphr == 0

    balances = [deneb.MAX_EFFECTIVE_BALANCE] * VALIDATORS
    state = create_genesis_state(deneb, balances, deneb.MAX_EFFECTIVE_BALANCE)
    state.genesis_time = GENESIS_TIME
    genesis_block = create_signed_genesis_block(deneb, state)

    empty = choose_empty_slots(seed)
    blob_rng = random.Random(seed + 1)
    blocks: dict[int, bytes] = {0: genesis_block.encode_bytes()}
    era_states: dict[int, bytes] = {0: state.encode_bytes()}
    slots = [{"slot": 0, "fork": "deneb",
              "block_root": "0x" + genesis_block.message.hash_tree_root().hex(),
              "state_root": "0x" + state.hash_tree_root().hex(),
              "attestations": 0, "blobs": 0}]
    era_roots = [{"era": 0, "slot": 0, "fork": "deneb",
                  "state_root": "0x" + state.hash_tree_root().hex()}]
    fork = "deneb"
    for slot in range(1, LAST_SLOT + 1):
        want = fork_at_slot(slot, spe)
        if want != fork:  # first slot of a fork epoch: epoch processing, then the upgrade
            specs[fork].process_slots(state, slot)
            state = getattr(specs[want], f"upgrade_to_{want}")(state)
            fork = want
        spec = specs[fork]
        n_att = n_blobs = 0
        if slot in empty:
            if state.slot < slot:
                spec.process_slots(state, slot)
            block_root = None
        else:
            block = build_empty_block(spec, state, slot)
            if slot >= 2:  # attest the previous slot with full committees
                for att in get_valid_attestations_for_block_at_slot(spec, state, slot - 1):
                    block.body.attestations.append(att)
                    n_att += 1
            n_blobs = BLOB_SLOTS.get(slot, 0)
            if n_blobs:
                tx, _, commitments, _ = get_sample_blob_tx(spec, blob_count=n_blobs,
                                                           rng=blob_rng)
                block.body.execution_payload.transactions = [tx]
                block.body.blob_kzg_commitments = commitments
                block.body.execution_payload.block_hash = compute_el_block_hash_for_block(
                    spec, block)
            if state.slot < slot:  # process_slots + process_block, state root, signature
                signed = state_transition_and_sign_block(spec, state, block)
            else:  # the fork's first slot, already upgraded: the block alone
                spec.process_block(state, block)
                block.state_root = state.hash_tree_root()
                signed = sign_block(spec, state, block)
            blocks[slot] = signed.encode_bytes()
            block_root = "0x" + signed.message.hash_tree_root().hex()
        state_root = state.hash_tree_root()
        slots.append({"slot": slot, "fork": fork, "block_root": block_root,
                      "state_root": "0x" + state_root.hex(),
                      "attestations": n_att, "blobs": n_blobs})
        if slot % sphr == 0:
            era_states[slot // sphr] = state.encode_bytes()
            era_roots.append({"era": slot // sphr, "slot": slot, "fork": fork,
                              "state_root": "0x" + state_root.hex()})
        if progress:
            progress(slot)

    forks = {"deneb": 0, "electra": ELECTRA_EPOCH, "fulu": FULU_EPOCH}
    manifest = {
        "config_name": CONFIG_NAME,
        "preset_base": "minimal",
        "slots_per_epoch": spe,
        "slots_per_historical_root": sphr,
        "seed": seed,
        "validators": VALIDATORS,
        "generator": "scripts/make_spec_chain.py with eth-consensus-specs "
                     + importlib.metadata.version("eth-consensus-specs"),
        "fork_epochs": forks,
        "genesis_validators_root": "0x" + bytes(state.genesis_validators_root).hex(),
        "genesis_time": GENESIS_TIME,
        "empty_slots": sorted(empty),
        "slots": slots,
        "era_states": era_roots,
        "final_slot": LAST_SLOT,
        "final_state_root": era_roots[-1]["state_root"],
        "finalized_epoch": int(state.finalized_checkpoint.epoch),
    }
    genesis = {
        "genesis_validators_root": manifest["genesis_validators_root"],
        "genesis_time": str(GENESIS_TIME),
        "genesis_fork_version": "0x" + bytes(deneb.config.GENESIS_FORK_VERSION).hex(),
    }
    return {"blocks": blocks, "era_states": era_states, "manifest": manifest,
            "spec": spec_json(specs["fulu"]), "genesis": genesis, "sphr": sphr,
            "specs": specs}


def verify_with_spec(chain: dict) -> None:
    """Replay every block through the spec's full `state_transition` (signatures and state roots
    checked) starting from the genesis state, as an independent check of what was written."""
    specs = chain["specs"]
    spe = chain["manifest"]["slots_per_epoch"]
    state = specs["deneb"].BeaconState.decode_bytes(chain["era_states"][0])
    fork = "deneb"
    for slot in sorted(chain["blocks"]):
        if slot == 0:
            continue
        want = fork_at_slot(slot, spe)
        if want != fork:
            specs[fork].process_slots(state, (slot // spe) * spe)
            state = getattr(specs[want], f"upgrade_to_{want}")(state)
            fork = want
        spec = specs[fork]
        signed = spec.SignedBeaconBlock.decode_bytes(chain["blocks"][slot])
        if state.slot < slot:
            spec.state_transition(state, signed, True)
        else:  # state_transition needs a slot to process; check what it would have checked
            if not spec.verify_block_signature(state, signed):
                raise AssertionError(f"replay: slot {slot}: bad proposer signature")
            spec.process_block(state, signed.message)
            if signed.message.state_root != state.hash_tree_root():
                raise AssertionError(f"replay: slot {slot}: state root mismatch")
    spec = specs[fork]
    spec.process_slots(state, LAST_SLOT)
    root = "0x" + state.hash_tree_root().hex()
    if root != chain["manifest"]["final_state_root"]:
        raise AssertionError(f"replay: final state root {root}, manifest says "
                             f"{chain['manifest']['final_state_root']}")


def write(chain: dict, out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    sphr = chain["sphr"]
    written = []
    for era in sorted(chain["era_states"]):
        with EraWriter(out, CONFIG_NAME, era, sphr) as w:
            if era > 0:
                for slot in range((era - 1) * sphr, era * sphr):
                    if slot in chain["blocks"]:
                        w.add_block(slot, ssz=chain["blocks"][slot])
            w.set_state(ssz=chain["era_states"][era])
            path = w.finish()
        written.append(Path(path).name)
    chain["manifest"]["era_files"] = written
    for name, obj in (("spec.json", chain["spec"]), ("genesis.json", chain["genesis"]),
                      ("manifest.json", chain["manifest"])):
        tmp = out / (name + ".tmp")
        tmp.write_text(json.dumps(obj, indent=1) + "\n")
        tmp.replace(out / name)
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-replay", action="store_true",
                    help="skip replaying the chain through state_transition before writing")
    args = ap.parse_args()
    t0 = time.monotonic()

    def progress(slot):
        if slot % 16 == 0:
            print(f"slot {slot}/{LAST_SLOT}  {time.monotonic() - t0:.0f}s", file=sys.stderr)

    chain = build_chain(args.seed, progress)
    t1 = time.monotonic()
    if not args.no_replay:
        verify_with_spec(chain)
    t2 = time.monotonic()
    for name in write(chain, args.out):
        print(name)
    m = chain["manifest"]
    print(f"{len(chain['blocks'])} blocks, {len(m['empty_slots'])} empty slots, finalized epoch "
          f"{m['finalized_epoch']}; build {t1 - t0:.0f}s, replay {t2 - t1:.0f}s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
