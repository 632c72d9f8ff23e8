"""Phase0 SSZ containers (consensus-specs `specs/phase0/beacon-chain.md`, `validator.md`).

Types depend on the preset (list limits, vector lengths), so they are built by `build(preset)`
from a preset dict with the keys of `era_tools.config.PRESETS`.  Results are cached per preset
content: every call with an equal preset returns the same namespace, holding the same classes,
and later forks reuse these class objects for the types they leave unchanged.

This module also holds the small toolkit the other fork modules share: spec type aliases,
the `SSZContainer` base class and the `fork_builder` cache decorator.
"""

from __future__ import annotations

import functools
import itertools
import threading
from types import SimpleNamespace
from typing import Callable

from . import _pyssz  # noqa: F401  (first: loads py-ssz whole, once)
from ssz.exceptions import DeserializationError, SerializationError
from ssz.hashable_structure import BaseHashableStructure
from ssz.sedes import BasicSedes
from ssz.sedes import ByteList as _PySszByteList
from ssz.sedes import (
    Bitlist,
    Bitvector,
    ByteVector,
    List,
    Serializable,
    Vector,
    boolean,
    bytes4,
    bytes32,
    bytes48,
    bytes96,
    uint8,
    uint64,
    uint256,
)
from ssz.sedes.serializable import MetaSerializable
from ssz.utils import merkleize, mix_in_length

__all__ = [
    "build", "block_containers", "fork_builder", "SSZContainer",
    # sedes re-exported for the later fork modules
    "Bitlist", "Bitvector", "ByteList", "ByteVector", "List", "Vector", "boolean",
    "uint8", "uint64", "uint256",
    # spec aliases
    "Slot", "Epoch", "CommitteeIndex", "ValidatorIndex", "Gwei", "Root", "Hash32", "Bytes32",
    "Version", "DomainType", "ForkDigest", "Domain", "BLSPubkey", "BLSSignature",
]

# --- spec custom types (phase0 beacon-chain.md "Custom types") -------------------------------
Slot = uint64
Epoch = uint64
CommitteeIndex = uint64
ValidatorIndex = uint64
Gwei = uint64
Root = bytes32
Hash32 = bytes32
Bytes32 = bytes32
Version = bytes4
DomainType = bytes4
ForkDigest = bytes4
Domain = bytes32
BLSPubkey = bytes48
BLSSignature = bytes96


class ByteList(_PySszByteList):
    """`ByteList[N]`, fixing py-ssz 0.6.0's class for cached hashing: it reads a `.length`
    attribute it never sets (in `get_sedes_id` and its error messages), and its inherited
    `get_hash_tree_root_and_leaves` treats the bytes as a list of 1-byte strings."""

    def get_hash_tree_root_and_leaves(self, value, cache):
        return self.get_hash_tree_root(value), cache

    def get_sedes_id(self) -> str:
        return f"ByteList{self.max_length}"

    def serialize(self, value) -> bytes:
        if len(value) > self.max_length:
            raise SerializationError(
                f"cannot serialize {len(value)} bytes as ByteList[{self.max_length}]")
        return bytes(value)

    def deserialize(self, data: bytes) -> bytes:
        if len(data) > self.max_length:
            raise DeserializationError(
                f"{len(data)} bytes exceed ByteList[{self.max_length}]")
        return bytes(data)


# Constants (not preset dependent) that size types.
DEPOSIT_CONTRACT_TREE_DEPTH = 32
JUSTIFICATION_BITS_LENGTH = 4


def _field_root(value, sedes) -> bytes:
    """hash_tree_root of one value of `sedes`, without py-ssz's key/LRU hash caches."""
    if isinstance(sedes, _ContainerMeta):
        return sedes.get_hash_tree_root(value)
    if isinstance(value, BaseHashableStructure) and value.sedes == sedes:
        return value.hash_tree_root  # decoded lists/vectors carry their tree already
    if (isinstance(sedes, (List, Vector))
            and not isinstance(sedes, (_PySszByteList, ByteVector))
            and not isinstance(sedes.element_sedes, BasicSedes)):
        element = sedes.element_sedes
        if isinstance(element, ByteVector) and element.length <= 32:
            leaves = [bytes(v).ljust(32, b"\x00") for v in value]  # Bytes32 roots etc.: the value is its own leaf
        else:
            leaves = [_field_root(v, element) for v in value]
        root = merkleize(leaves, limit=sedes.chunk_count)
        return mix_in_length(root, len(value)) if isinstance(sedes, List) else root
    return sedes.get_hash_tree_root(value)


class _ContainerMeta(MetaSerializable):
    """py-ssz's container metaclass with a faster, memoized hash_tree_root.

    py-ssz's cached path keys every node by its serialized bytes in hex (and hashes objects
    through `__hash__`, which is itself a hash_tree_root), which made roots cost more than
    decoding.  Objects are immutable (py-ssz already memoizes their serialization), so the root
    is memoized on the instance too.
    """

    def get_hash_tree_root(cls, value, cache: bool = True) -> bytes:
        root = value.__dict__.get("_era_htr")
        if root is None:
            root = merkleize([
                _field_root(getattr(value, attr), sedes)
                for attr, (_, sedes) in zip(cls._meta.field_attrs, cls._meta.fields)
            ])
            value.__dict__["_era_htr"] = root
        return root


class SSZContainer(Serializable, metaclass=_ContainerMeta):
    """Base class of every container built here.

    py-ssz keys its hash cache by `get_sedes_id()` + serialized bytes, and the default id is
    the bare class name.  The same spec name exists in several shapes (per fork, per preset),
    so each built class gets a unique id (`<fork>.<Name>#<build>`), set by `fork_builder`.
    """

    _sedes_id: str | None = None
    _origin: tuple | None = None  # (fork, preset key, name), set by fork_builder

    @classmethod
    def get_sedes_id(cls) -> str:
        return cls._sedes_id or cls.__name__

    def reset_cache(self) -> None:
        super().reset_cache()
        self.__dict__.pop("_era_htr", None)

    def __reduce__(self):
        # Built classes live inside build(); pickle by (fork, preset, name) + SSZ bytes so
        # decoded objects can cross process boundaries (process pools).
        if self._origin is None:
            return super().__reduce__()
        return _unpickle, (*self._origin, type(self).serialize(self))


def _unpickle(fork: str, key: tuple, name: str, data: bytes):
    import importlib

    module = importlib.import_module(f"{__package__}.{fork}")
    return getattr(module.build(dict(key)), name).deserialize(data)


_build_lock = threading.RLock()
_build_counter = itertools.count()


def preset_key(preset: dict) -> tuple:
    return tuple(sorted(preset.items()))


def fork_builder(fork: str) -> Callable[[Callable[[dict], SimpleNamespace]],
                                        Callable[[dict], SimpleNamespace]]:
    """Decorate a fork's `build(preset)`: cache it per preset content and tag its classes."""

    def decorate(fn: Callable[[dict], SimpleNamespace]) -> Callable[[dict], SimpleNamespace]:
        cache: dict[tuple, SimpleNamespace] = {}

        @functools.wraps(fn)
        def build(preset: dict) -> SimpleNamespace:
            key = preset_key(preset)
            with _build_lock:
                ns = cache.get(key)
                if ns is None:
                    ns = fn(dict(preset))
                    n = next(_build_counter)
                    for name, value in vars(ns).items():
                        if (isinstance(value, type) and issubclass(value, SSZContainer)
                                and value._sedes_id is None):
                            value._sedes_id = f"{fork}.{name}#{n}"
                            value._origin = (fork, key, name)
                            value.__qualname__ = name
                    ns.FORK = fork
                    ns.PRESET = dict(preset)
                    cache[key] = ns
                return ns

        build.cache = cache  # type: ignore[attr-defined]
        return build

    return decorate


def extend(prev: SimpleNamespace | None, *classes: type) -> SimpleNamespace:
    """A namespace with the previous fork's types, overridden/extended by `classes`."""
    ns = SimpleNamespace(**(vars(prev) if prev is not None else {}))
    for cls in classes:
        setattr(ns, cls.__name__, cls)
    return ns


def block_containers(body: type) -> tuple[type, type]:
    """`BeaconBlock` and `SignedBeaconBlock` around a fork's `BeaconBlockBody`: every fork
    redefines these two only because its body type changed; their fields never do."""

    class BeaconBlock(SSZContainer):
        fields = [
            ("slot", Slot),
            ("proposer_index", ValidatorIndex),
            ("parent_root", Root),
            ("state_root", Root),
            ("body", body),
        ]

    class SignedBeaconBlock(SSZContainer):
        fields = [
            ("message", BeaconBlock),
            ("signature", BLSSignature),
        ]

    return BeaconBlock, SignedBeaconBlock


@fork_builder("phase0")
def build(preset: dict) -> SimpleNamespace:
    """Build the phase0 containers for `preset`."""
    P = preset
    SLOTS_PER_EPOCH = P["SLOTS_PER_EPOCH"]
    MAX_VALIDATORS_PER_COMMITTEE = P["MAX_VALIDATORS_PER_COMMITTEE"]
    VALIDATOR_REGISTRY_LIMIT = P["VALIDATOR_REGISTRY_LIMIT"]

    class Fork(SSZContainer):
        fields = [
            ("previous_version", Version),
            ("current_version", Version),
            ("epoch", Epoch),
        ]

    class ForkData(SSZContainer):
        fields = [
            ("current_version", Version),
            ("genesis_validators_root", Root),
        ]

    class Checkpoint(SSZContainer):
        fields = [
            ("epoch", Epoch),
            ("root", Root),
        ]

    class Validator(SSZContainer):
        fields = [
            ("pubkey", BLSPubkey),
            ("withdrawal_credentials", Bytes32),
            ("effective_balance", Gwei),
            ("slashed", boolean),
            ("activation_eligibility_epoch", Epoch),
            ("activation_epoch", Epoch),
            ("exit_epoch", Epoch),
            ("withdrawable_epoch", Epoch),
        ]

    class AttestationData(SSZContainer):
        fields = [
            ("slot", Slot),
            ("index", CommitteeIndex),
            ("beacon_block_root", Root),
            ("source", Checkpoint),
            ("target", Checkpoint),
        ]

    class IndexedAttestation(SSZContainer):
        fields = [
            ("attesting_indices", List(ValidatorIndex, MAX_VALIDATORS_PER_COMMITTEE)),
            ("data", AttestationData),
            ("signature", BLSSignature),
        ]

    class PendingAttestation(SSZContainer):
        fields = [
            ("aggregation_bits", Bitlist(MAX_VALIDATORS_PER_COMMITTEE)),
            ("data", AttestationData),
            ("inclusion_delay", Slot),
            ("proposer_index", ValidatorIndex),
        ]

    class Eth1Data(SSZContainer):
        fields = [
            ("deposit_root", Root),
            ("deposit_count", uint64),
            ("block_hash", Hash32),
        ]

    class HistoricalBatch(SSZContainer):
        fields = [
            ("block_roots", Vector(Root, P["SLOTS_PER_HISTORICAL_ROOT"])),
            ("state_roots", Vector(Root, P["SLOTS_PER_HISTORICAL_ROOT"])),
        ]

    class DepositMessage(SSZContainer):
        fields = [
            ("pubkey", BLSPubkey),
            ("withdrawal_credentials", Bytes32),
            ("amount", Gwei),
        ]

    class DepositData(SSZContainer):
        fields = [
            ("pubkey", BLSPubkey),
            ("withdrawal_credentials", Bytes32),
            ("amount", Gwei),
            ("signature", BLSSignature),
        ]

    class BeaconBlockHeader(SSZContainer):
        fields = [
            ("slot", Slot),
            ("proposer_index", ValidatorIndex),
            ("parent_root", Root),
            ("state_root", Root),
            ("body_root", Root),
        ]

    class SigningData(SSZContainer):
        fields = [
            ("object_root", Root),
            ("domain", Domain),
        ]

    class SignedBeaconBlockHeader(SSZContainer):
        fields = [
            ("message", BeaconBlockHeader),
            ("signature", BLSSignature),
        ]

    class ProposerSlashing(SSZContainer):
        fields = [
            ("signed_header_1", SignedBeaconBlockHeader),
            ("signed_header_2", SignedBeaconBlockHeader),
        ]

    class AttesterSlashing(SSZContainer):
        fields = [
            ("attestation_1", IndexedAttestation),
            ("attestation_2", IndexedAttestation),
        ]

    class Attestation(SSZContainer):
        fields = [
            ("aggregation_bits", Bitlist(MAX_VALIDATORS_PER_COMMITTEE)),
            ("data", AttestationData),
            ("signature", BLSSignature),
        ]

    class Deposit(SSZContainer):
        fields = [
            # Merkle path to deposit root
            ("proof", Vector(Bytes32, DEPOSIT_CONTRACT_TREE_DEPTH + 1)),
            ("data", DepositData),
        ]

    class VoluntaryExit(SSZContainer):
        fields = [
            ("epoch", Epoch),
            ("validator_index", ValidatorIndex),
        ]

    class SignedVoluntaryExit(SSZContainer):
        fields = [
            ("message", VoluntaryExit),
            ("signature", BLSSignature),
        ]

    class BeaconBlockBody(SSZContainer):
        fields = [
            ("randao_reveal", BLSSignature),
            ("eth1_data", Eth1Data),
            ("graffiti", Bytes32),
            ("proposer_slashings", List(ProposerSlashing, P["MAX_PROPOSER_SLASHINGS"])),
            ("attester_slashings", List(AttesterSlashing, P["MAX_ATTESTER_SLASHINGS"])),
            ("attestations", List(Attestation, P["MAX_ATTESTATIONS"])),
            ("deposits", List(Deposit, P["MAX_DEPOSITS"])),
            ("voluntary_exits", List(SignedVoluntaryExit, P["MAX_VOLUNTARY_EXITS"])),
        ]

    BeaconBlock, SignedBeaconBlock = block_containers(BeaconBlockBody)

    class BeaconState(SSZContainer):
        fields = [
            # Versioning
            ("genesis_time", uint64),
            ("genesis_validators_root", Root),
            ("slot", Slot),
            ("fork", Fork),
            # History
            ("latest_block_header", BeaconBlockHeader),
            ("block_roots", Vector(Root, P["SLOTS_PER_HISTORICAL_ROOT"])),
            ("state_roots", Vector(Root, P["SLOTS_PER_HISTORICAL_ROOT"])),
            ("historical_roots", List(Root, P["HISTORICAL_ROOTS_LIMIT"])),
            # Eth1
            ("eth1_data", Eth1Data),
            ("eth1_data_votes",
             List(Eth1Data, P["EPOCHS_PER_ETH1_VOTING_PERIOD"] * SLOTS_PER_EPOCH)),
            ("eth1_deposit_index", uint64),
            # Registry
            ("validators", List(Validator, VALIDATOR_REGISTRY_LIMIT)),
            ("balances", List(Gwei, VALIDATOR_REGISTRY_LIMIT)),
            # Randomness
            ("randao_mixes", Vector(Bytes32, P["EPOCHS_PER_HISTORICAL_VECTOR"])),
            # Slashings
            ("slashings", Vector(Gwei, P["EPOCHS_PER_SLASHINGS_VECTOR"])),
            # Attestations
            ("previous_epoch_attestations",
             List(PendingAttestation, P["MAX_ATTESTATIONS"] * SLOTS_PER_EPOCH)),
            ("current_epoch_attestations",
             List(PendingAttestation, P["MAX_ATTESTATIONS"] * SLOTS_PER_EPOCH)),
            # Finality
            ("justification_bits", Bitvector(JUSTIFICATION_BITS_LENGTH)),
            ("previous_justified_checkpoint", Checkpoint),
            ("current_justified_checkpoint", Checkpoint),
            ("finalized_checkpoint", Checkpoint),
        ]

    # validator.md / p2p-interface.md
    class Eth1Block(SSZContainer):
        fields = [
            ("timestamp", uint64),
            ("deposit_root", Root),
            ("deposit_count", uint64),
        ]

    class AggregateAndProof(SSZContainer):
        fields = [
            ("aggregator_index", ValidatorIndex),
            ("aggregate", Attestation),
            ("selection_proof", BLSSignature),
        ]

    class SignedAggregateAndProof(SSZContainer):
        fields = [
            ("message", AggregateAndProof),
            ("signature", BLSSignature),
        ]

    return extend(
        None,
        Fork, ForkData, Checkpoint, Validator, AttestationData, IndexedAttestation,
        PendingAttestation, Eth1Data, HistoricalBatch, DepositMessage, DepositData,
        BeaconBlockHeader, SigningData, SignedBeaconBlockHeader, ProposerSlashing,
        AttesterSlashing, Attestation, Deposit, VoluntaryExit, SignedVoluntaryExit,
        BeaconBlockBody, BeaconBlock, SignedBeaconBlock, BeaconState,
        Eth1Block, AggregateAndProof, SignedAggregateAndProof,
    )
