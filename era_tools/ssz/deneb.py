"""Deneb SSZ containers (consensus-specs `specs/deneb/beacon-chain.md`, `p2p-interface.md`).

Unchanged capella types are the capella class objects themselves (see `build`).
"""

from __future__ import annotations

from types import SimpleNamespace

from . import altair, capella, phase0
from .capella import (  # noqa: F401  (re-exported spec aliases)
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
    WithdrawalIndex,
    extend,
    fork_builder,
    transaction_type,
    uint8,
    uint64,
    uint256,
)
from .phase0 import bytes48

# [New in Deneb] custom types
KZGCommitment = bytes48
KZGProof = bytes48
BlobIndex = uint64
VersionedHash = Hash32

# [New in Deneb] constants (polynomial-commitments.md)
BYTES_PER_FIELD_ELEMENT = 32


@fork_builder("deneb")
def build(preset: dict) -> SimpleNamespace:
    """Build the deneb containers for `preset`."""
    P = preset
    prev = capella.build(preset)
    VALIDATOR_REGISTRY_LIMIT = P["VALIDATOR_REGISTRY_LIMIT"]
    MAX_BLOB_COMMITMENTS_PER_BLOCK = P["MAX_BLOB_COMMITMENTS_PER_BLOCK"]
    Transaction = transaction_type(P)
    Blob = ByteVector(BYTES_PER_FIELD_ELEMENT * P["FIELD_ELEMENTS_PER_BLOB"])

    # Unchanged from capella
    Fork = prev.Fork
    Checkpoint = prev.Checkpoint
    Validator = prev.Validator
    Eth1Data = prev.Eth1Data
    BeaconBlockHeader = prev.BeaconBlockHeader
    SignedBeaconBlockHeader = prev.SignedBeaconBlockHeader
    ProposerSlashing = prev.ProposerSlashing
    AttesterSlashing = prev.AttesterSlashing
    Attestation = prev.Attestation
    Deposit = prev.Deposit
    SignedVoluntaryExit = prev.SignedVoluntaryExit
    SyncAggregate = prev.SyncAggregate
    SyncCommittee = prev.SyncCommittee
    Withdrawal = prev.Withdrawal
    SignedBLSToExecutionChange = prev.SignedBLSToExecutionChange
    HistoricalSummary = prev.HistoricalSummary

    # [Modified in Deneb]
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
            ("withdrawals", List(Withdrawal, P["MAX_WITHDRAWALS_PER_PAYLOAD"])),
            ("blob_gas_used", uint64),  # [New in Deneb]
            ("excess_blob_gas", uint64),  # [New in Deneb]
        ]

    # [Modified in Deneb]
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
            ("withdrawals_root", Root),
            ("blob_gas_used", uint64),  # [New in Deneb]
            ("excess_blob_gas", uint64),  # [New in Deneb]
        ]

    # [Modified in Deneb]
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
            ("execution_payload", ExecutionPayload),  # [Modified in Deneb]
            ("bls_to_execution_changes",
             List(SignedBLSToExecutionChange, P["MAX_BLS_TO_EXECUTION_CHANGES"])),
            # [New in Deneb]
            ("blob_kzg_commitments", List(KZGCommitment, MAX_BLOB_COMMITMENTS_PER_BLOCK)),
        ]

    # [Modified in Deneb] (new body type, hence new block types)
    BeaconBlock, SignedBeaconBlock = phase0.block_containers(BeaconBlockBody)

    # [Modified in Deneb]
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
            ("latest_execution_payload_header", ExecutionPayloadHeader),  # [Modified in Deneb]
            # Withdrawals
            ("next_withdrawal_index", WithdrawalIndex),
            ("next_withdrawal_validator_index", ValidatorIndex),
            # Deep history valid from Capella onwards
            ("historical_summaries", List(HistoricalSummary, P["HISTORICAL_ROOTS_LIMIT"])),
        ]

    # [New in Deneb] p2p-interface.md
    class BlobIdentifier(SSZContainer):
        fields = [
            ("block_root", Root),
            ("index", BlobIndex),
        ]

    # [New in Deneb] p2p-interface.md
    class BlobSidecar(SSZContainer):
        fields = [
            ("index", BlobIndex),
            ("blob", Blob),
            ("kzg_commitment", KZGCommitment),
            ("kzg_proof", KZGProof),
            ("signed_block_header", SignedBeaconBlockHeader),
            ("kzg_commitment_inclusion_proof",
             Vector(Bytes32, P["KZG_COMMITMENT_INCLUSION_PROOF_DEPTH"])),
        ]

    # [Modified in Deneb] light client: the header carries deneb's ExecutionPayloadHeader
    LightClientHeader = capella.light_client_header(BeaconBlockHeader, ExecutionPayloadHeader)

    return extend(
        prev,
        ExecutionPayload, ExecutionPayloadHeader, BeaconBlockBody, BeaconBlock,
        SignedBeaconBlock, BeaconState, BlobIdentifier, BlobSidecar, LightClientHeader,
        *altair.light_client_containers(
            LightClientHeader, SyncCommittee, SyncAggregate, altair.FINALIZED_ROOT_GINDEX,
            altair.CURRENT_SYNC_COMMITTEE_GINDEX, altair.NEXT_SYNC_COMMITTEE_GINDEX),
    )
