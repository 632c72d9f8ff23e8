"""The light-client sync protocol of the consensus specs, as pure functions over SSZ objects.

Spec text: `specs/altair/light-client/sync-protocol.md`, with the capella (execution header and
its branch), deneb (blob gas fields) and electra (deeper state branches) changes.  Names are the
spec's; `LightClientSpec(network)` binds the functions to one chain's fork schedule:

    spec = LightClientSpec(net)                           # net: era_tools.config.Network
    store = spec.initialize_light_client_store(trusted_block_root, bootstrap)
    spec.process_light_client_update(store, update, current_slot, genesis_validators_root)

Objects are era_tools SSZ containers of the fork the server sent them in (`types_for(fork,
...)`).  Unlike the executable spec, whose store upgrades everything to its own fork's format,
the store here keeps each header in the format it came in: gindices and execution roots follow
the header's slot, and a branch of either depth is checked as the spec's
`is_valid_normalized_merkle_branch` would check its normalized form.  Verdicts agree with the
executable spec's (tests/test_lightclient_protocol.py runs both on the same data).

A failed check raises `LightClientError` (a VerificationError) saying which check failed.
Signatures go through `era_tools.bls.fast_aggregate_verify`.  No HTTP, no clock, no printing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import bls, ssz
from ..config import FAR_FUTURE_EPOCH, Network
from ..errors import ConfigError, VerificationError
from ..hashing import sha256
from ..signing import compute_domain, compute_fork_data_root, compute_signing_root
from ..ssz import altair as _altair
from ..ssz import capella as _capella
from ..ssz import electra as _electra

__all__ = [
    "LightClientError", "LightClientStore", "LightClientSpec", "UpdateView",
    "is_valid_merkle_branch", "is_valid_normalized_merkle_branch", "floorlog2",
    "get_subtree_index", "DOMAIN_SYNC_COMMITTEE", "EPOCHS_PER_SYNC_COMMITTEE_PERIOD",
]

DOMAIN_SYNC_COMMITTEE = bytes.fromhex("07000000")
MIN_SYNC_COMMITTEE_PARTICIPANTS = 1
GENESIS_SLOT = 0
# Preset values (presets/*/altair.yaml); gnosis doubles mainnet's.
EPOCHS_PER_SYNC_COMMITTEE_PERIOD = {"mainnet": 256, "minimal": 8, "gnosis": 512}
SYNC_COMMITTEE_SIZE = {"mainnet": 512, "minimal": 32, "gnosis": 512}
# MIN_VALIDATOR_WITHDRAWABILITY_DELAY: the floor of the weak-subjectivity period (phase0
# weak-subjectivity.md); the real period is longer and depends on the validator set.
MIN_VALIDATOR_WITHDRAWABILITY_DELAY = 256

FINALIZED_ROOT_GINDEX = _altair.FINALIZED_ROOT_GINDEX
CURRENT_SYNC_COMMITTEE_GINDEX = _altair.CURRENT_SYNC_COMMITTEE_GINDEX
NEXT_SYNC_COMMITTEE_GINDEX = _altair.NEXT_SYNC_COMMITTEE_GINDEX
EXECUTION_PAYLOAD_GINDEX = _capella.EXECUTION_PAYLOAD_GINDEX
FINALIZED_ROOT_GINDEX_ELECTRA = _electra.FINALIZED_ROOT_GINDEX_ELECTRA
CURRENT_SYNC_COMMITTEE_GINDEX_ELECTRA = _electra.CURRENT_SYNC_COMMITTEE_GINDEX_ELECTRA
NEXT_SYNC_COMMITTEE_GINDEX_ELECTRA = _electra.NEXT_SYNC_COMMITTEE_GINDEX_ELECTRA

ZERO32 = b"\x00" * 32


class LightClientError(VerificationError):
    """Light-client data that fails a check of the sync protocol."""


def floorlog2(x: int) -> int:
    return _altair.floorlog2(x)


def get_subtree_index(generalized_index: int) -> int:
    return generalized_index % 2 ** floorlog2(generalized_index)


def is_valid_merkle_branch(leaf: bytes, branch, depth: int, index: int, root: bytes) -> bool:
    """phase0 `is_valid_merkle_branch` (with the later `depth == len(branch)` check)."""
    if depth != len(branch):
        return False
    value = bytes(leaf)
    for i in range(depth):
        if index // (2 ** i) % 2:
            value = sha256(bytes(branch[i]) + value)
        else:
            value = sha256(value + bytes(branch[i]))
    return value == bytes(root)


def is_valid_normalized_merkle_branch(leaf: bytes, branch, gindex: int, root: bytes) -> bool:
    """electra: a branch longer than the gindex's depth has zero hashes in front."""
    depth = floorlog2(gindex)
    index = get_subtree_index(gindex)
    num_extra = len(branch) - depth
    if num_extra < 0:
        return False
    if any(bytes(b) != ZERO32 for b in branch[:num_extra]):
        return False
    return is_valid_merkle_branch(leaf, list(branch[num_extra:]), depth, index, root)


# --------------------------------------------------------------------------------------------
# SSZ defaults (the spec's `LightClientHeader()`, `SyncCommittee()` comparisons)

_default_bytes: dict[Any, bytes] = {}


def is_default(obj) -> bool:
    """obj == type(obj)(): every field zero / empty."""
    cls = type(obj)
    want = _default_bytes.get(cls)
    if want is None:
        want = _default_bytes[cls] = cls.serialize(ssz.default(cls))
    return cls.serialize(obj) == want


def _root(obj) -> bytes:
    return ssz.hash_tree_root(obj)


# --------------------------------------------------------------------------------------------
# The store and the update forms


@dataclass
class LightClientStore:
    """altair `LightClientStore`.  `next_sync_committee` is None while unknown (the spec's
    `SyncCommittee()`)."""

    finalized_header: Any
    current_sync_committee: Any
    next_sync_committee: Any
    best_valid_update: Any
    optimistic_header: Any
    previous_max_active_participants: int = 0
    current_max_active_participants: int = 0


@dataclass(frozen=True)
class UpdateView:
    """The fields of a `LightClientUpdate`, from an update, a finality update or an optimistic
    update (the spec converts the latter two the same way: absent fields are empty)."""

    attested_header: Any
    next_sync_committee: Any          # None: empty
    next_sync_committee_branch: tuple  # () : empty
    finalized_header: Any             # None: empty
    finality_branch: tuple
    sync_aggregate: Any
    signature_slot: int
    source: Any = None                # the object it was made from

    @classmethod
    def of(cls, obj) -> "UpdateView":
        return cls(
            attested_header=obj.attested_header,
            next_sync_committee=getattr(obj, "next_sync_committee", None),
            next_sync_committee_branch=tuple(getattr(obj, "next_sync_committee_branch", ())),
            finalized_header=getattr(obj, "finalized_header", None),
            finality_branch=tuple(getattr(obj, "finality_branch", ())),
            sync_aggregate=obj.sync_aggregate,
            signature_slot=int(obj.signature_slot),
            source=obj,
        )


def _as_view(update) -> UpdateView:
    return update if isinstance(update, UpdateView) else UpdateView.of(update)


def is_sync_committee_update(update) -> bool:
    u = _as_view(update)
    return any(bytes(b) != ZERO32 for b in u.next_sync_committee_branch)


def is_finality_update(update) -> bool:
    u = _as_view(update)
    return any(bytes(b) != ZERO32 for b in u.finality_branch)


def _header_slot(header) -> int:
    return 0 if header is None else int(header.beacon.slot)


def _participants(update: UpdateView) -> int:
    return sum(1 for b in update.sync_aggregate.sync_committee_bits if b)


def _hexroot(b: bytes) -> str:
    return "0x" + bytes(b).hex()


class LightClientSpec:
    """The sync protocol's functions for one chain (`network`: fork schedule, preset)."""

    def __init__(self, network: Network, blob_schedule: list | None = None,
                 max_blobs_per_block_electra: int | None = None, backend=None):
        self.network = network
        base = network.preset_base
        if base not in EPOCHS_PER_SYNC_COMMITTEE_PERIOD:
            raise ConfigError(f"light client: no sync-committee period for preset {base!r}")
        self.SLOTS_PER_EPOCH = network.slots_per_epoch
        self.EPOCHS_PER_SYNC_COMMITTEE_PERIOD = EPOCHS_PER_SYNC_COMMITTEE_PERIOD[base]
        self.SYNC_COMMITTEE_SIZE = SYNC_COMMITTEE_SIZE[base]
        self.UPDATE_TIMEOUT = self.SLOTS_PER_EPOCH * self.EPOCHS_PER_SYNC_COMMITTEE_PERIOD
        self.blob_schedule = sorted(
            ((int(e["EPOCH"]), int(e["MAX_BLOBS_PER_BLOCK"])) for e in (blob_schedule or [])),
            reverse=True)
        self.max_blobs_per_block_electra = max_blobs_per_block_electra
        self.backend = backend

    # -- time and forks ----------------------------------------------------------------------
    def fork_epoch(self, name: str) -> int:
        for f in self.network.forks:
            if f.name == name:
                return f.epoch
        return FAR_FUTURE_EPOCH

    def compute_epoch_at_slot(self, slot: int) -> int:
        return int(slot) // self.SLOTS_PER_EPOCH

    def compute_sync_committee_period(self, epoch: int) -> int:
        return int(epoch) // self.EPOCHS_PER_SYNC_COMMITTEE_PERIOD

    def compute_sync_committee_period_at_slot(self, slot: int) -> int:
        return self.compute_sync_committee_period(self.compute_epoch_at_slot(slot))

    def compute_start_slot_at_sync_committee_period(self, period: int) -> int:
        return period * self.EPOCHS_PER_SYNC_COMMITTEE_PERIOD * self.SLOTS_PER_EPOCH

    def compute_fork_version(self, epoch: int) -> bytes:
        return self.network.fork_at_epoch(epoch).version

    def fork_name_at_slot(self, slot: int) -> str:
        return self.network.fork_name_at_slot(int(slot))

    def compute_fork_digest(self, genesis_validators_root: bytes, epoch: int) -> bytes:
        """fulu `compute_fork_digest`: from fulu on, the digest also mixes in the blob
        parameters of the epoch (BLOB_SCHEDULE), when they are known."""
        base = compute_fork_data_root(self.compute_fork_version(epoch), genesis_validators_root)
        fulu = self.fork_epoch("fulu")
        if epoch < fulu:
            return base[:4]
        params = self.get_blob_parameters(epoch)
        if params is None:
            raise ConfigError("fulu fork digest needs BLOB_SCHEDULE and "
                              "MAX_BLOBS_PER_BLOCK_ELECTRA (from the node's config/spec)")
        mix = sha256(params[0].to_bytes(8, "little") + params[1].to_bytes(8, "little"))
        return bytes(a ^ b for a, b in zip(base[:4], mix[:4]))

    def get_blob_parameters(self, epoch: int) -> tuple[int, int] | None:
        for e, m in self.blob_schedule:
            if epoch >= e:
                return e, m
        if self.max_blobs_per_block_electra is None:
            return None
        return self.fork_epoch("electra"), self.max_blobs_per_block_electra

    def fork_digests(self, genesis_validators_root: bytes) -> dict[bytes, str]:
        """Every fork digest of the chain (altair on) -> fork name.  From fulu on, the
        digests with the blob parameters mixed in and, for servers that label items the
        pre-fulu way (beacon-APIs before fulu: the fork data root alone), the plain ones."""
        out = {compute_fork_data_root(f.version, genesis_validators_root)[:4]: f.name
               for f in self.network.forks if f.name != "phase0"}
        epochs = [(f.name, f.epoch) for f in self.network.forks if f.name != "phase0"]
        fulu = self.fork_epoch("fulu")
        epochs += [("fulu", e) for e, _ in self.blob_schedule if e >= fulu]
        for name, epoch in epochs:
            try:
                out[self.compute_fork_digest(genesis_validators_root, epoch)] = name
            except ConfigError:
                continue
        return out

    # -- gindices -----------------------------------------------------------------------------
    def _electra(self, slot: int) -> bool:
        return self.compute_epoch_at_slot(slot) >= self.fork_epoch("electra")

    def finalized_root_gindex_at_slot(self, slot: int) -> int:
        return FINALIZED_ROOT_GINDEX_ELECTRA if self._electra(slot) else FINALIZED_ROOT_GINDEX

    def current_sync_committee_gindex_at_slot(self, slot: int) -> int:
        return (CURRENT_SYNC_COMMITTEE_GINDEX_ELECTRA if self._electra(slot)
                else CURRENT_SYNC_COMMITTEE_GINDEX)

    def next_sync_committee_gindex_at_slot(self, slot: int) -> int:
        return (NEXT_SYNC_COMMITTEE_GINDEX_ELECTRA if self._electra(slot)
                else NEXT_SYNC_COMMITTEE_GINDEX)

    # -- headers ------------------------------------------------------------------------------
    def get_lc_execution_root(self, header) -> bytes:
        """capella/deneb `get_lc_execution_root`: the root of the execution payload header in
        the format of the header's own epoch."""
        epoch = self.compute_epoch_at_slot(header.beacon.slot)
        execution = getattr(header, "execution", None)
        if execution is None or epoch < self.fork_epoch("capella"):
            return ZERO32
        fork = "deneb" if epoch >= self.fork_epoch("deneb") else "capella"
        cls = ssz.types_for(fork, self.network.preset_base).ExecutionPayloadHeader
        if type(execution) is cls:
            return _root(execution)
        names = [n for n, _ in cls._meta.fields]
        have = set(n for n, _ in type(execution)._meta.fields)
        if not set(names) <= have:
            return ZERO32  # an older format than the epoch needs: cannot hold its root
        return _root(cls(**{n: getattr(execution, n) for n in names}))

    def is_valid_light_client_header(self, header) -> bool:
        epoch = self.compute_epoch_at_slot(header.beacon.slot)
        execution = getattr(header, "execution", None)
        if execution is None:  # altair format: only before capella
            return epoch < self.fork_epoch("capella")
        if epoch < self.fork_epoch("deneb") and hasattr(execution, "blob_gas_used"):
            if int(execution.blob_gas_used) != 0 or int(execution.excess_blob_gas) != 0:
                return False
        if epoch < self.fork_epoch("capella"):
            return is_default(execution) and all(
                bytes(b) == ZERO32 for b in header.execution_branch)
        return is_valid_merkle_branch(
            leaf=self.get_lc_execution_root(header),
            branch=list(header.execution_branch),
            depth=floorlog2(EXECUTION_PAYLOAD_GINDEX),
            index=get_subtree_index(EXECUTION_PAYLOAD_GINDEX),
            root=header.beacon.body_root,
        )

    # -- store --------------------------------------------------------------------------------
    def initialize_light_client_store(self, trusted_block_root: bytes,
                                      bootstrap) -> LightClientStore:
        header = bootstrap.header
        slot = int(header.beacon.slot)
        if not self.is_valid_light_client_header(header):
            raise LightClientError(f"bootstrap header at slot {slot}: execution payload header "
                                   "does not prove into the block body")
        root = _root(header.beacon)
        if root != bytes(trusted_block_root):
            raise LightClientError(f"bootstrap header at slot {slot} has root {_hexroot(root)}, "
                                   f"not the trusted block root {_hexroot(trusted_block_root)}")
        if not is_valid_normalized_merkle_branch(
                leaf=_root(bootstrap.current_sync_committee),
                branch=list(bootstrap.current_sync_committee_branch),
                gindex=self.current_sync_committee_gindex_at_slot(slot),
                root=header.beacon.state_root):
            raise LightClientError(f"bootstrap at slot {slot}: current_sync_committee does not "
                                   "prove into the header's state root")
        return LightClientStore(
            finalized_header=header,
            current_sync_committee=bootstrap.current_sync_committee,
            next_sync_committee=None,
            best_valid_update=None,
            optimistic_header=header,
        )

    @staticmethod
    def is_next_sync_committee_known(store: LightClientStore) -> bool:
        return store.next_sync_committee is not None

    @staticmethod
    def get_safety_threshold(store: LightClientStore) -> int:
        return max(store.previous_max_active_participants,
                   store.current_max_active_participants) // 2

    def is_better_update(self, new_update, old_update) -> bool:
        new, old = _as_view(new_update), _as_view(old_update)
        period = self.compute_sync_committee_period_at_slot
        max_active = len(new.sync_aggregate.sync_committee_bits)
        new_n, old_n = _participants(new), _participants(old)
        new_super, old_super = new_n * 3 >= max_active * 2, old_n * 3 >= max_active * 2
        if new_super != old_super:
            return new_super
        if not new_super and new_n != old_n:
            return new_n > old_n
        new_rel = is_sync_committee_update(new) and (
            period(new.attested_header.beacon.slot) == period(new.signature_slot))
        old_rel = is_sync_committee_update(old) and (
            period(old.attested_header.beacon.slot) == period(old.signature_slot))
        if new_rel != old_rel:
            return new_rel
        new_fin, old_fin = is_finality_update(new), is_finality_update(old)
        if new_fin != old_fin:
            return new_fin
        if new_fin:
            new_scf = period(_header_slot(new.finalized_header)) == period(
                new.attested_header.beacon.slot)
            old_scf = period(_header_slot(old.finalized_header)) == period(
                old.attested_header.beacon.slot)
            if new_scf != old_scf:
                return new_scf
        if new_n != old_n:
            return new_n > old_n
        if new.attested_header.beacon.slot != old.attested_header.beacon.slot:
            return new.attested_header.beacon.slot < old.attested_header.beacon.slot
        return new.signature_slot < old.signature_slot

    def validate_light_client_update(self, store: LightClientStore, update, current_slot: int,
                                     genesis_validators_root: bytes) -> None:
        """Raise LightClientError unless `update` is valid for `store` (the spec's asserts,
        in the spec's order)."""
        u = _as_view(update)
        period = self.compute_sync_committee_period_at_slot
        bits = list(u.sync_aggregate.sync_committee_bits)
        n = sum(1 for b in bits if b)
        att_slot = int(u.attested_header.beacon.slot)
        where = f"update (attested slot {att_slot}, signature slot {u.signature_slot})"
        if n < MIN_SYNC_COMMITTEE_PARTICIPANTS:
            raise LightClientError(f"{where}: {n} sync committee participants, need "
                                   f"{MIN_SYNC_COMMITTEE_PARTICIPANTS}")
        if not self.is_valid_light_client_header(u.attested_header):
            raise LightClientError(f"{where}: attested header's execution payload header does "
                                   "not prove into its block body")
        fin_slot = _header_slot(u.finalized_header)
        if u.signature_slot > current_slot:
            raise LightClientError(f"{where}: signature slot is in the future (current slot "
                                   f"{current_slot})")
        if not u.signature_slot > att_slot >= fin_slot:
            raise LightClientError(
                f"{where}: slots out of order (signature {u.signature_slot} > attested "
                f"{att_slot} >= finalized {fin_slot} fails)")
        store_period = period(store.finalized_header.beacon.slot)
        sig_period = period(u.signature_slot)
        known = self.is_next_sync_committee_known(store)
        if known:
            if sig_period not in (store_period, store_period + 1):
                raise LightClientError(f"{where}: signature period {sig_period} is not the "
                                       f"store's period {store_period} or the next")
        elif sig_period != store_period:
            raise LightClientError(f"{where}: signature period {sig_period} is not the store's "
                                   f"period {store_period} (next sync committee unknown)")
        att_period = period(att_slot)
        has_next = not known and is_sync_committee_update(u) and att_period == store_period
        if not (att_slot > int(store.finalized_header.beacon.slot) or has_next):
            raise LightClientError(f"{where}: not newer than the finalized slot "
                                   f"{int(store.finalized_header.beacon.slot)} and brings no "
                                   "next sync committee")
        if not is_finality_update(u):
            if u.finalized_header is not None and not is_default(u.finalized_header):
                raise LightClientError(f"{where}: finalized header without finality branch")
        else:
            if fin_slot == GENESIS_SLOT:
                if u.finalized_header is not None and not is_default(u.finalized_header):
                    raise LightClientError(f"{where}: genesis finalized header is not empty")
                finalized_root = ZERO32
            else:
                if not self.is_valid_light_client_header(u.finalized_header):
                    raise LightClientError(f"{where}: finalized header's execution payload "
                                           "header does not prove into its block body")
                finalized_root = _root(u.finalized_header.beacon)
            if not is_valid_normalized_merkle_branch(
                    leaf=finalized_root, branch=list(u.finality_branch),
                    gindex=self.finalized_root_gindex_at_slot(att_slot),
                    root=u.attested_header.beacon.state_root):
                raise LightClientError(f"{where}: finality branch does not prove finalized "
                                       f"root {_hexroot(finalized_root)} into the attested "
                                       "state root")
        if not is_sync_committee_update(u):
            if u.next_sync_committee is not None and not is_default(u.next_sync_committee):
                raise LightClientError(f"{where}: next sync committee without branch")
        else:
            if att_period == store_period and known:
                if _root(u.next_sync_committee) != _root(store.next_sync_committee):
                    raise LightClientError(f"{where}: next sync committee differs from the "
                                           "one the store knows for that period")
            if not is_valid_normalized_merkle_branch(
                    leaf=_root(u.next_sync_committee),
                    branch=list(u.next_sync_committee_branch),
                    gindex=self.next_sync_committee_gindex_at_slot(att_slot),
                    root=u.attested_header.beacon.state_root):
                raise LightClientError(f"{where}: next sync committee branch does not prove "
                                       "into the attested state root")
        committee = (store.current_sync_committee if sig_period == store_period
                     else store.next_sync_committee)
        if len(bits) != len(committee.pubkeys):
            raise LightClientError(f"{where}: {len(bits)} participation bits for a committee "
                                   f"of {len(committee.pubkeys)}")
        participants = [pk for bit, pk in zip(bits, committee.pubkeys) if bit]
        fork_version_slot = max(u.signature_slot, 1) - 1
        fork_version = self.compute_fork_version(self.compute_epoch_at_slot(fork_version_slot))
        domain = compute_domain(DOMAIN_SYNC_COMMITTEE, fork_version, genesis_validators_root)
        signing_root = compute_signing_root(_root(u.attested_header.beacon), domain)
        # The committee was proven into a verified state root: registry keys (see bls).
        if not bls.fast_aggregate_verify(
                [bytes(p) for p in participants], signing_root,
                bytes(u.sync_aggregate.sync_committee_signature), backend=self.backend,
                registry_pubkeys=True, aggregate_pubkey=bytes(committee.aggregate_pubkey),
                all_pubkeys=[bytes(p) for p in committee.pubkeys]):
            raise LightClientError(
                f"{where}: sync committee signature does not verify ({n} participants, fork "
                f"version 0x{fork_version.hex()}, attested root "
                f"{_hexroot(_root(u.attested_header.beacon))})")

    def apply_light_client_update(self, store: LightClientStore, update) -> None:
        u = _as_view(update)
        period = self.compute_sync_committee_period_at_slot
        store_period = period(store.finalized_header.beacon.slot)
        fin_period = period(_header_slot(u.finalized_header))
        if not self.is_next_sync_committee_known(store):
            if fin_period != store_period:
                raise LightClientError(f"apply update: finalized period {fin_period} is not the "
                                       f"store's period {store_period}")
            store.next_sync_committee = u.next_sync_committee
        elif fin_period == store_period + 1:
            store.current_sync_committee = store.next_sync_committee
            store.next_sync_committee = u.next_sync_committee
            store.previous_max_active_participants = store.current_max_active_participants
            store.current_max_active_participants = 0
        if _header_slot(u.finalized_header) > int(store.finalized_header.beacon.slot):
            store.finalized_header = u.finalized_header
            if store.finalized_header.beacon.slot > store.optimistic_header.beacon.slot:
                store.optimistic_header = store.finalized_header

    def process_light_client_store_force_update(self, store: LightClientStore,
                                                current_slot: int) -> None:
        if (current_slot > int(store.finalized_header.beacon.slot) + self.UPDATE_TIMEOUT
                and store.best_valid_update is not None):
            best = store.best_valid_update
            if _header_slot(best.finalized_header) <= int(store.finalized_header.beacon.slot):
                best = UpdateView(best.attested_header, best.next_sync_committee,
                                  best.next_sync_committee_branch, best.attested_header,
                                  best.finality_branch, best.sync_aggregate,
                                  best.signature_slot, best.source)
            self.apply_light_client_update(store, best)
            store.best_valid_update = None

    def process_light_client_update(self, store: LightClientStore, update, current_slot: int,
                                    genesis_validators_root: bytes) -> None:
        u = _as_view(update)
        self.validate_light_client_update(store, u, current_slot, genesis_validators_root)
        n = _participants(u)
        size = len(u.sync_aggregate.sync_committee_bits)
        if store.best_valid_update is None or self.is_better_update(u, store.best_valid_update):
            store.best_valid_update = u
        store.current_max_active_participants = max(store.current_max_active_participants, n)
        if (n > self.get_safety_threshold(store)
                and u.attested_header.beacon.slot > store.optimistic_header.beacon.slot):
            store.optimistic_header = u.attested_header
        period = self.compute_sync_committee_period_at_slot
        has_finalized_next = (
            not self.is_next_sync_committee_known(store)
            and is_sync_committee_update(u) and is_finality_update(u)
            and period(_header_slot(u.finalized_header)) == period(u.attested_header.beacon.slot))
        if n * 3 >= size * 2 and (
                _header_slot(u.finalized_header) > int(store.finalized_header.beacon.slot)
                or has_finalized_next):
            self.apply_light_client_update(store, u)
            store.best_valid_update = None

    def process_light_client_finality_update(self, store, finality_update, current_slot: int,
                                             genesis_validators_root: bytes) -> None:
        self.process_light_client_update(store, UpdateView.of(finality_update), current_slot,
                                         genesis_validators_root)

    def process_light_client_optimistic_update(self, store, optimistic_update,
                                               current_slot: int,
                                               genesis_validators_root: bytes) -> None:
        self.process_light_client_update(store, UpdateView.of(optimistic_update), current_slot,
                                         genesis_validators_root)
