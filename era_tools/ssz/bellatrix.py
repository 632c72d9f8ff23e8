"""Bellatrix SSZ containers (consensus-specs `specs/bellatrix/beacon-chain.md`, `fork-choice.md`).

Unchanged altair types are the altair class objects themselves (see `build`).
"""

from __future__ import annotations

from types import SimpleNamespace

from . import altair, phase0
from .altair import (  # noqa: F401  (re-exported spec aliases)
    BLSPubkey,
    BLSSignature,
    Bitvector,
    ByteList,
    ByteVector,
    Bytes32,
    CommitteeIndex,
    Domain,
    DomainType,
    Epoch,
    ForkDigest,
    Gwei,
    Hash32,
    List,
    ParticipationFlags,
    Root,
    Slot,
    SSZContainer,
    ValidatorIndex,
    Vector,
    Version,
    extend,
    fork_builder,
    uint8,
    uint64,
)
from .phase0 import uint256

# [New in Bellatrix] custom types
ExecutionAddress = ByteVector(20)


def transaction_type(preset: dict) -> ByteList:
    """`Transaction = ByteList[MAX_BYTES_PER_TRANSACTION]`."""
    return ByteList(preset["MAX_BYTES_PER_TRANSACTION"])


@fork_builder("bellatrix")
def build(preset: dict) -> SimpleNamespace:
    """Build the bellatrix containers for `preset`."""
    P = preset
    prev = altair.build(preset)
    VALIDATOR_REGISTRY_LIMIT = P["VALIDATOR_REGISTRY_LIMIT"]
    Transaction = transaction_type(P)

    # Unchanged from altair
    Fork = prev.Fork
    Checkpoint = prev.Checkpoint
    Validator = prev.Validator
    Eth1Data = prev.Eth1Data
    BeaconBlockHeader = prev.BeaconBlockHeader
    ProposerSlashing = prev.ProposerSlashing
    AttesterSlashing = prev.AttesterSlashing
    Attestation = prev.Attestation
    Deposit = prev.Deposit
    SignedVoluntaryExit = prev.SignedVoluntaryExit
    SyncAggregate = prev.SyncAggregate
    SyncCommittee = prev.SyncCommittee

    # [New in Bellatrix]
    class ExecutionPayload(SSZContainer):
        fields = [
            ("parent_hash", Hash32),
            ("fee_recipient", ExecutionAddress),
            ("state_root", Bytes32),
            ("receipts_root", Bytes32),
            ("logs_bloom", ByteVector(P["BYTES_PER_LOGS_BLOOM"])),
            ("prev_randao", Bytes32),
            ("block_number", uint64),
            ("gas_limit", uint64),
            ("gas_used", uint64),
            ("timestamp", uint64),
            ("extra_data", ByteList(P["MAX_EXTRA_DATA_BYTES"])),
            ("base_fee_per_gas", uint256),
            # Extra payload fields
            ("block_hash", Hash32),
            ("transactions", List(Transaction, P["MAX_TRANSACTIONS_PER_PAYLOAD"])),
        ]

    # [New in Bellatrix]
    class ExecutionPayloadHeader(SSZContainer):
        fields = [
            ("parent_hash", Hash32),
            ("fee_recipient", ExecutionAddress),
            ("state_root", Bytes32),
            ("receipts_root", Bytes32),
            ("logs_bloom", ByteVector(P["BYTES_PER_LOGS_BLOOM"])),
            ("prev_randao", Bytes32),
            ("block_number", uint64),
            ("gas_limit", uint64),
            ("gas_used", uint64),
            ("timestamp", uint64),
            ("extra_data", ByteList(P["MAX_EXTRA_DATA_BYTES"])),
            ("base_fee_per_gas", uint256),
            # Extra payload fields
            ("block_hash", Hash32),
            ("transactions_root", Root),
        ]

    # [Modified in Bellatrix]
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
            ("sync_aggregate", SyncAggregate),
            ("execution_payload", ExecutionPayload),  # [New in Bellatrix]
        ]

    # [Modified in Bellatrix] (new body type, hence new block types)
    BeaconBlock, SignedBeaconBlock = phase0.block_containers(BeaconBlockBody)

    # [Modified in Bellatrix]
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
             List(Eth1Data, P["EPOCHS_PER_ETH1_VOTING_PERIOD"] * P["SLOTS_PER_EPOCH"])),
            ("eth1_deposit_index", uint64),
            # Registry
            ("validators", List(Validator, VALIDATOR_REGISTRY_LIMIT)),
            ("balances", List(Gwei, VALIDATOR_REGISTRY_LIMIT)),
            # Randomness
            ("randao_mixes", Vector(Bytes32, P["EPOCHS_PER_HISTORICAL_VECTOR"])),
            # Slashings
            ("slashings", Vector(Gwei, P["EPOCHS_PER_SLASHINGS_VECTOR"])),
            # Participation
            ("previous_epoch_participation", List(ParticipationFlags, VALIDATOR_REGISTRY_LIMIT)),
            ("current_epoch_participation", List(ParticipationFlags, VALIDATOR_REGISTRY_LIMIT)),
            # Finality
            ("justification_bits", Bitvector(phase0.JUSTIFICATION_BITS_LENGTH)),
            ("previous_justified_checkpoint", Checkpoint),
            ("current_justified_checkpoint", Checkpoint),
            ("finalized_checkpoint", Checkpoint),
            # Inactivity
            ("inactivity_scores", List(uint64, VALIDATOR_REGISTRY_LIMIT)),
            # Sync
            ("current_sync_committee", SyncCommittee),
            ("next_sync_committee", SyncCommittee),
            # Execution
            ("latest_execution_payload_header", ExecutionPayloadHeader),  # [New in Bellatrix]
        ]

    # [New in Bellatrix] fork-choice.md
    class PowBlock(SSZContainer):
        fields = [
            ("block_hash", Hash32),
            ("parent_hash", Hash32),
            ("total_difficulty", uint256),
        ]

    return extend(
        prev,
        ExecutionPayload, ExecutionPayloadHeader, BeaconBlockBody, BeaconBlock,
        SignedBeaconBlock, BeaconState, PowBlock,
    )
