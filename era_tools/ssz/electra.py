"""Electra SSZ containers (consensus-specs `specs/electra/beacon-chain.md`, `validator.md`,
`p2p-interface.md`).

Unchanged deneb types are the deneb class objects themselves (see `build`).
"""

from __future__ import annotations

from types import SimpleNamespace

from . import altair, deneb, phase0
from .deneb import (  # noqa: F401  (re-exported spec aliases)
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
from .phase0 import Bitlist


# [New in Electra] light client (electra/light-client/sync-protocol.md): the BeaconState has
# more than 32 fields, so the proven fields sit one level deeper.
FINALIZED_ROOT_GINDEX_ELECTRA = 169
CURRENT_SYNC_COMMITTEE_GINDEX_ELECTRA = 86
NEXT_SYNC_COMMITTEE_GINDEX_ELECTRA = 87


@fork_builder("electra")
def build(preset: dict) -> SimpleNamespace:
    """Build the electra containers for `preset`."""
    P = preset
    prev = deneb.build(preset)
    VALIDATOR_REGISTRY_LIMIT = P["VALIDATOR_REGISTRY_LIMIT"]
    MAX_COMMITTEES_PER_SLOT = P["MAX_COMMITTEES_PER_SLOT"]
    MAX_VALIDATORS_PER_COMMITTEE = P["MAX_VALIDATORS_PER_COMMITTEE"]

    # Unchanged from deneb
    Fork = prev.Fork
    Checkpoint = prev.Checkpoint
    Validator = prev.Validator
    AttestationData = prev.AttestationData
    Eth1Data = prev.Eth1Data
    BeaconBlockHeader = prev.BeaconBlockHeader
    ProposerSlashing = prev.ProposerSlashing
    Deposit = prev.Deposit
    SignedVoluntaryExit = prev.SignedVoluntaryExit
    SyncAggregate = prev.SyncAggregate
    SyncCommittee = prev.SyncCommittee
    SignedBLSToExecutionChange = prev.SignedBLSToExecutionChange
    HistoricalSummary = prev.HistoricalSummary
    ExecutionPayload = prev.ExecutionPayload
    ExecutionPayloadHeader = prev.ExecutionPayloadHeader

    # [New in Electra:EIP6110]
    class DepositRequest(SSZContainer):
        fields = [
            ("pubkey", BLSPubkey),
            ("withdrawal_credentials", Bytes32),
            ("amount", Gwei),
            ("signature", BLSSignature),
            ("index", uint64),
        ]

    # [New in Electra:EIP7002:EIP7251]
    class WithdrawalRequest(SSZContainer):
        fields = [
            ("source_address", ExecutionAddress),
            ("validator_pubkey", BLSPubkey),
            ("amount", Gwei),
        ]

    # [New in Electra:EIP7251]
    class ConsolidationRequest(SSZContainer):
        fields = [
            ("source_address", ExecutionAddress),
            ("source_pubkey", BLSPubkey),
            ("target_pubkey", BLSPubkey),
        ]

    # [New in Electra]
    class ExecutionRequests(SSZContainer):
        fields = [
            # [New in Electra:EIP6110]
            ("deposits", List(DepositRequest, P["MAX_DEPOSIT_REQUESTS_PER_PAYLOAD"])),
            # [New in Electra:EIP7002:EIP7251]
            ("withdrawals", List(WithdrawalRequest, P["MAX_WITHDRAWAL_REQUESTS_PER_PAYLOAD"])),
            # [New in Electra:EIP7251]
            ("consolidations",
             List(ConsolidationRequest, P["MAX_CONSOLIDATION_REQUESTS_PER_PAYLOAD"])),
        ]

    # [New in Electra:EIP7251]
    class PendingDeposit(SSZContainer):
        fields = [
            ("pubkey", BLSPubkey),
            ("withdrawal_credentials", Bytes32),
            ("amount", Gwei),
            ("signature", BLSSignature),
            ("slot", Slot),
        ]

    # [New in Electra:EIP7251]
    class PendingPartialWithdrawal(SSZContainer):
        fields = [
            ("validator_index", ValidatorIndex),
            ("amount", Gwei),
            ("withdrawable_epoch", Epoch),
        ]

    # [New in Electra:EIP7251]
    class PendingConsolidation(SSZContainer):
        fields = [
            ("source_index", ValidatorIndex),
            ("target_index", ValidatorIndex),
        ]

    # [Modified in Electra:EIP7549]
    class Attestation(SSZContainer):
        fields = [
            ("aggregation_bits",
             Bitlist(MAX_VALIDATORS_PER_COMMITTEE * MAX_COMMITTEES_PER_SLOT)),
            ("data", AttestationData),
            ("signature", BLSSignature),
            ("committee_bits", Bitvector(MAX_COMMITTEES_PER_SLOT)),  # [New in Electra:EIP7549]
        ]

    # [Modified in Electra:EIP7549]
    class IndexedAttestation(SSZContainer):
        fields = [
            ("attesting_indices",
             List(ValidatorIndex, MAX_VALIDATORS_PER_COMMITTEE * MAX_COMMITTEES_PER_SLOT)),
            ("data", AttestationData),
            ("signature", BLSSignature),
        ]

    # [Modified in Electra:EIP7549] (new IndexedAttestation type)
    class AttesterSlashing(SSZContainer):
        fields = [
            ("attestation_1", IndexedAttestation),
            ("attestation_2", IndexedAttestation),
        ]

    # [New in Electra:EIP7549] p2p-interface.md
    class SingleAttestation(SSZContainer):
        fields = [
            ("committee_index", CommitteeIndex),
            ("attester_index", ValidatorIndex),
            ("data", AttestationData),
            ("signature", BLSSignature),
        ]

    # [Modified in Electra:EIP7549] validator.md (new Attestation type)
    class AggregateAndProof(SSZContainer):
        fields = [
            ("aggregator_index", ValidatorIndex),
            ("aggregate", Attestation),
            ("selection_proof", BLSSignature),
        ]

    # [Modified in Electra:EIP7549] validator.md (new AggregateAndProof type)
    class SignedAggregateAndProof(SSZContainer):
        fields = [
            ("message", AggregateAndProof),
            ("signature", BLSSignature),
        ]

    # [Modified in Electra]
    class BeaconBlockBody(SSZContainer):
        fields = [
            ("randao_reveal", BLSSignature),
            ("eth1_data", Eth1Data),
            ("graffiti", Bytes32),
            ("proposer_slashings", List(ProposerSlashing, P["MAX_PROPOSER_SLASHINGS"])),
            # [Modified in Electra:EIP7549]
            ("attester_slashings",
             List(AttesterSlashing, P["MAX_ATTESTER_SLASHINGS_ELECTRA"])),
            # [Modified in Electra:EIP7549]
            ("attestations", List(Attestation, P["MAX_ATTESTATIONS_ELECTRA"])),
            ("deposits", List(Deposit, P["MAX_DEPOSITS"])),
            ("voluntary_exits", List(SignedVoluntaryExit, P["MAX_VOLUNTARY_EXITS"])),
            ("sync_aggregate", SyncAggregate),
            ("execution_payload", ExecutionPayload),
            ("bls_to_execution_changes",
             List(SignedBLSToExecutionChange, P["MAX_BLS_TO_EXECUTION_CHANGES"])),
            ("blob_kzg_commitments",
             List(KZGCommitment, P["MAX_BLOB_COMMITMENTS_PER_BLOCK"])),
            ("execution_requests", ExecutionRequests),  # [New in Electra]
        ]

    # [Modified in Electra] (new body type, hence new block types)
    BeaconBlock, SignedBeaconBlock = phase0.block_containers(BeaconBlockBody)

    # [Modified in Electra]
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
            # [New in Electra:EIP6110]
            ("deposit_requests_start_index", uint64),
            # [New in Electra:EIP7251]
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
        ]

    # [Modified in Electra] light client: deeper branches into the bigger BeaconState
    LightClientHeader = prev.LightClientHeader
    light_client = altair.light_client_containers(
        LightClientHeader, SyncCommittee, SyncAggregate, FINALIZED_ROOT_GINDEX_ELECTRA,
        CURRENT_SYNC_COMMITTEE_GINDEX_ELECTRA, NEXT_SYNC_COMMITTEE_GINDEX_ELECTRA)

    return extend(
        prev, *light_client,
        DepositRequest, WithdrawalRequest, ConsolidationRequest, ExecutionRequests,
        PendingDeposit, PendingPartialWithdrawal, PendingConsolidation,
        Attestation, IndexedAttestation, AttesterSlashing, SingleAttestation,
        AggregateAndProof, SignedAggregateAndProof,
        BeaconBlockBody, BeaconBlock, SignedBeaconBlock, BeaconState,
    )
