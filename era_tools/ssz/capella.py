"""Capella SSZ containers (consensus-specs `specs/capella/beacon-chain.md`).

Unchanged bellatrix types are the bellatrix class objects themselves (see `build`).
"""

from __future__ import annotations

from types import SimpleNamespace

from . import altair, bellatrix, phase0
from .bellatrix import (  # noqa: F401  (re-exported spec aliases)
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
    ExecutionAddress,
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
    transaction_type,
    uint8,
    uint64,
    uint256,
)

# [New in Capella] custom types
WithdrawalIndex = uint64

# [New in Capella] light client (capella/light-client/sync-protocol.md)
EXECUTION_PAYLOAD_GINDEX = 25


def light_client_header(beacon_block_header: type, execution_payload_header: type) -> type:
    """`LightClientHeader` with the execution payload header and its branch into the body
    (capella; deneb redefines it with its own `ExecutionPayloadHeader`)."""

    class LightClientHeader(SSZContainer):
        fields = [
            ("beacon", beacon_block_header),
            ("execution", execution_payload_header),  # [New in Capella]
            ("execution_branch",
             Vector(Bytes32, altair.floorlog2(EXECUTION_PAYLOAD_GINDEX))),  # [New in Capella]
        ]

    return LightClientHeader


@fork_builder("capella")
def build(preset: dict) -> SimpleNamespace:
    """Build the capella containers for `preset`."""
    P = preset
    prev = bellatrix.build(preset)
    VALIDATOR_REGISTRY_LIMIT = P["VALIDATOR_REGISTRY_LIMIT"]
    Transaction = transaction_type(P)

    # Unchanged from bellatrix
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

    # [New in Capella]
    class Withdrawal(SSZContainer):
        fields = [
            ("index", WithdrawalIndex),
            ("validator_index", ValidatorIndex),
            ("address", ExecutionAddress),
            ("amount", Gwei),
        ]

    # [New in Capella]
    class BLSToExecutionChange(SSZContainer):
        fields = [
            ("validator_index", ValidatorIndex),
            ("from_bls_pubkey", BLSPubkey),
            ("to_execution_address", ExecutionAddress),
        ]

    # [New in Capella]
    class SignedBLSToExecutionChange(SSZContainer):
        fields = [
            ("message", BLSToExecutionChange),
            ("signature", BLSSignature),
        ]

    # [New in Capella]
    class HistoricalSummary(SSZContainer):
        """`HistoricalBatch` with its two vectors replaced by their roots."""

        fields = [
            ("block_summary_root", Root),
            ("state_summary_root", Root),
        ]

    # [Modified in Capella]
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
            ("block_hash", Hash32),
            ("transactions", List(Transaction, P["MAX_TRANSACTIONS_PER_PAYLOAD"])),
            ("withdrawals", List(Withdrawal, P["MAX_WITHDRAWALS_PER_PAYLOAD"])),  # [New in Capella]
        ]

    # [Modified in Capella]
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
            ("block_hash", Hash32),
            ("transactions_root", Root),
            ("withdrawals_root", Root),  # [New in Capella]
        ]

    # [Modified in Capella]
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
            ("execution_payload", ExecutionPayload),
            # [New in Capella]
            ("bls_to_execution_changes",
             List(SignedBLSToExecutionChange, P["MAX_BLS_TO_EXECUTION_CHANGES"])),
        ]

    # [Modified in Capella] (new body type, hence new block types)
    BeaconBlock, SignedBeaconBlock = phase0.block_containers(BeaconBlockBody)

    # [Modified in Capella]
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
            # Frozen in Capella, replaced by historical_summaries
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
            ("latest_execution_payload_header", ExecutionPayloadHeader),  # [Modified in Capella]
            # Withdrawals
            ("next_withdrawal_index", WithdrawalIndex),  # [New in Capella]
            ("next_withdrawal_validator_index", ValidatorIndex),  # [New in Capella]
            # Deep history valid from Capella onwards
            ("historical_summaries",
             List(HistoricalSummary, P["HISTORICAL_ROOTS_LIMIT"])),  # [New in Capella]
        ]

    # [Modified in Capella] light client: the header carries the execution payload header
    LightClientHeader = light_client_header(BeaconBlockHeader, ExecutionPayloadHeader)

    return extend(
        prev,
        Withdrawal, BLSToExecutionChange, SignedBLSToExecutionChange, HistoricalSummary,
        ExecutionPayload, ExecutionPayloadHeader, BeaconBlockBody, BeaconBlock,
        SignedBeaconBlock, BeaconState, LightClientHeader,
        *altair.light_client_containers(
            LightClientHeader, SyncCommittee, SyncAggregate, altair.FINALIZED_ROOT_GINDEX,
            altair.CURRENT_SYNC_COMMITTEE_GINDEX, altair.NEXT_SYNC_COMMITTEE_GINDEX),
    )
