"""Fulu SSZ containers (consensus-specs `specs/fulu/beacon-chain.md`, `das-core.md`,
`p2p-interface.md`).

Blocks are unchanged from electra (`SignedBeaconBlock` is electra's class object); the state
gains `proposer_lookahead`.
"""

from __future__ import annotations

from types import SimpleNamespace

from . import electra, phase0
from .electra import (  # noqa: F401  (re-exported spec aliases)
    BLSPubkey,
    BLSSignature,
    BYTES_PER_FIELD_ELEMENT,
    BlobIndex,
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
    KZGCommitment,
    KZGProof,
    List,
    ParticipationFlags,
    Root,
    Slot,
    SSZContainer,
    ValidatorIndex,
    Vector,
    Version,
    VersionedHash,
    WithdrawalIndex,
    extend,
    fork_builder,
    transaction_type,
    uint8,
    uint64,
    uint256,
)

# [New in Fulu] custom types (das-core.md)
RowIndex = uint64
ColumnIndex = uint64
CellIndex = uint64
CustodyIndex = uint64

# [New in Fulu] constants (das-core.md, polynomial-commitments-sampling.md)
CELLS_PER_EXT_BLOB = 128
NUMBER_OF_COLUMNS = CELLS_PER_EXT_BLOB


@fork_builder("fulu")
def build(preset: dict) -> SimpleNamespace:
    """Build the fulu containers for `preset`."""
    P = preset
    prev = electra.build(preset)
    VALIDATOR_REGISTRY_LIMIT = P["VALIDATOR_REGISTRY_LIMIT"]
    MAX_BLOB_COMMITMENTS_PER_BLOCK = P["MAX_BLOB_COMMITMENTS_PER_BLOCK"]
    Cell = ByteVector(BYTES_PER_FIELD_ELEMENT * P["FIELD_ELEMENTS_PER_CELL"])

    # Unchanged from electra
    Fork = prev.Fork
    Checkpoint = prev.Checkpoint
    Validator = prev.Validator
    Eth1Data = prev.Eth1Data
    BeaconBlockHeader = prev.BeaconBlockHeader
    SignedBeaconBlockHeader = prev.SignedBeaconBlockHeader
    SyncCommittee = prev.SyncCommittee
    HistoricalSummary = prev.HistoricalSummary
    ExecutionPayloadHeader = prev.ExecutionPayloadHeader
    PendingDeposit = prev.PendingDeposit
    PendingPartialWithdrawal = prev.PendingPartialWithdrawal
    PendingConsolidation = prev.PendingConsolidation

    # [Modified in Fulu:EIP7917]
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
            ("latest_execution_payload_header", ExecutionPayloadHeader),
            # Withdrawals
            ("next_withdrawal_index", WithdrawalIndex),
            ("next_withdrawal_validator_index", ValidatorIndex),
            # Deep history valid from Capella onwards
            ("historical_summaries", List(HistoricalSummary, P["HISTORICAL_ROOTS_LIMIT"])),
            ("deposit_requests_start_index", uint64),
            ("deposit_balance_to_consume", Gwei),
            ("exit_balance_to_consume", Gwei),
            ("earliest_exit_epoch", Epoch),
            ("consolidation_balance_to_consume", Gwei),
            ("earliest_consolidation_epoch", Epoch),
            ("pending_deposits", List(PendingDeposit, P["PENDING_DEPOSITS_LIMIT"])),
            ("pending_partial_withdrawals",
             List(PendingPartialWithdrawal, P["PENDING_PARTIAL_WITHDRAWALS_LIMIT"])),
            ("pending_consolidations",
             List(PendingConsolidation, P["PENDING_CONSOLIDATIONS_LIMIT"])),
            # [New in Fulu:EIP7917]
            ("proposer_lookahead",
             Vector(ValidatorIndex, (P["MIN_SEED_LOOKAHEAD"] + 1) * P["SLOTS_PER_EPOCH"])),
        ]

    # [New in Fulu] das-core.md
    class DataColumnSidecar(SSZContainer):
        fields = [
            ("index", ColumnIndex),
            ("column", List(Cell, MAX_BLOB_COMMITMENTS_PER_BLOCK)),
            ("kzg_commitments", List(KZGCommitment, MAX_BLOB_COMMITMENTS_PER_BLOCK)),
            ("kzg_proofs", List(KZGProof, MAX_BLOB_COMMITMENTS_PER_BLOCK)),
            ("signed_block_header", SignedBeaconBlockHeader),
            ("kzg_commitments_inclusion_proof",
             Vector(Bytes32, P["KZG_COMMITMENTS_INCLUSION_PROOF_DEPTH"])),
        ]

    # [New in Fulu] das-core.md
    class MatrixEntry(SSZContainer):
        fields = [
            ("cell", Cell),
            ("kzg_proof", KZGProof),
            ("column_index", ColumnIndex),
            ("row_index", RowIndex),
        ]

    # [New in Fulu] p2p-interface.md
    class DataColumnsByRootIdentifier(SSZContainer):
        fields = [
            ("block_root", Root),
            ("columns", List(ColumnIndex, NUMBER_OF_COLUMNS)),
        ]

    return extend(prev, BeaconState, DataColumnSidecar, MatrixEntry, DataColumnsByRootIdentifier)
