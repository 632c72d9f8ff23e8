"""Altair SSZ containers (consensus-specs `specs/altair/beacon-chain.md`, `validator.md`).

Unchanged phase0 types are the phase0 class objects themselves (see `build`).
"""

from __future__ import annotations

from types import SimpleNamespace

from . import phase0
from .phase0 import (  # noqa: F401  (re-exported spec aliases)
    BLSPubkey,
    BLSSignature,
    Bitlist,
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
    Root,
    Slot,
    SSZContainer,
    ValidatorIndex,
    Vector,
    Version,
    boolean,
    extend,
    fork_builder,
    uint8,
    uint64,
    uint256,
)

# [New in Altair] custom types
ParticipationFlags = uint8

# [New in Altair] constant (validator.md)
SYNC_COMMITTEE_SUBNET_COUNT = 4

# [New in Altair] light client (light-client/sync-protocol.md): generalized indices of the
# proven fields in the BeaconState, whose depths size the branches.
FINALIZED_ROOT_GINDEX = 105
CURRENT_SYNC_COMMITTEE_GINDEX = 54
NEXT_SYNC_COMMITTEE_GINDEX = 55


def floorlog2(x: int) -> int:
    return x.bit_length() - 1


def light_client_containers(header: type, sync_committee: type, sync_aggregate: type,
                            finalized_root_gindex: int, current_sync_committee_gindex: int,
                            next_sync_committee_gindex: int) -> tuple[type, ...]:
    """`LightClientBootstrap`, `LightClientUpdate`, `LightClientFinalityUpdate` and
    `LightClientOptimisticUpdate` around a fork's `LightClientHeader`; later forks redefine
    them only because the header type or the branch depths (Electra) change."""
    FinalityBranch = Vector(Bytes32, floorlog2(finalized_root_gindex))
    CurrentSyncCommitteeBranch = Vector(Bytes32, floorlog2(current_sync_committee_gindex))
    NextSyncCommitteeBranch = Vector(Bytes32, floorlog2(next_sync_committee_gindex))

    class LightClientBootstrap(SSZContainer):
        fields = [
            ("header", header),
            ("current_sync_committee", sync_committee),
            ("current_sync_committee_branch", CurrentSyncCommitteeBranch),
        ]

    class LightClientUpdate(SSZContainer):
        fields = [
            ("attested_header", header),
            ("next_sync_committee", sync_committee),
            ("next_sync_committee_branch", NextSyncCommitteeBranch),
            ("finalized_header", header),
            ("finality_branch", FinalityBranch),
            ("sync_aggregate", sync_aggregate),
            ("signature_slot", Slot),
        ]

    class LightClientFinalityUpdate(SSZContainer):
        fields = [
            ("attested_header", header),
            ("finalized_header", header),
            ("finality_branch", FinalityBranch),
            ("sync_aggregate", sync_aggregate),
            ("signature_slot", Slot),
        ]

    class LightClientOptimisticUpdate(SSZContainer):
        fields = [
            ("attested_header", header),
            ("sync_aggregate", sync_aggregate),
            ("signature_slot", Slot),
        ]

    return (LightClientBootstrap, LightClientUpdate, LightClientFinalityUpdate,
            LightClientOptimisticUpdate)


@fork_builder("altair")
def build(preset: dict) -> SimpleNamespace:
    """Build the altair containers for `preset`."""
    P = preset
    prev = phase0.build(preset)
    SYNC_COMMITTEE_SIZE = P["SYNC_COMMITTEE_SIZE"]
    VALIDATOR_REGISTRY_LIMIT = P["VALIDATOR_REGISTRY_LIMIT"]

    # Unchanged from phase0
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

    # [New in Altair]
    class SyncAggregate(SSZContainer):
        fields = [
            ("sync_committee_bits", Bitvector(SYNC_COMMITTEE_SIZE)),
            ("sync_committee_signature", BLSSignature),
        ]

    # [New in Altair]
    class SyncCommittee(SSZContainer):
        fields = [
            ("pubkeys", Vector(BLSPubkey, SYNC_COMMITTEE_SIZE)),
            ("aggregate_pubkey", BLSPubkey),
        ]

    # [Modified in Altair]
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
            ("sync_aggregate", SyncAggregate),  # [New in Altair]
        ]

    # [Modified in Altair] (new body type, hence new block types)
    BeaconBlock, SignedBeaconBlock = phase0.block_containers(BeaconBlockBody)

    # [Modified in Altair]
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
            # Participation  [Modified in Altair]
            ("previous_epoch_participation", List(ParticipationFlags, VALIDATOR_REGISTRY_LIMIT)),
            ("current_epoch_participation", List(ParticipationFlags, VALIDATOR_REGISTRY_LIMIT)),
            # Finality
            ("justification_bits", Bitvector(phase0.JUSTIFICATION_BITS_LENGTH)),
            ("previous_justified_checkpoint", Checkpoint),
            ("current_justified_checkpoint", Checkpoint),
            ("finalized_checkpoint", Checkpoint),
            # Inactivity  [New in Altair]
            ("inactivity_scores", List(uint64, VALIDATOR_REGISTRY_LIMIT)),
            # Sync  [New in Altair]
            ("current_sync_committee", SyncCommittee),
            ("next_sync_committee", SyncCommittee),
        ]

    # [New in Altair] validator.md
    class SyncCommitteeMessage(SSZContainer):
        fields = [
            ("slot", Slot),
            ("beacon_block_root", Root),
            ("validator_index", ValidatorIndex),
            ("signature", BLSSignature),
        ]

    # [New in Altair]
    class SyncCommitteeContribution(SSZContainer):
        fields = [
            ("slot", Slot),
            ("beacon_block_root", Root),
            ("subcommittee_index", uint64),
            ("aggregation_bits",
             Bitvector(SYNC_COMMITTEE_SIZE // SYNC_COMMITTEE_SUBNET_COUNT)),
            ("signature", BLSSignature),
        ]

    # [New in Altair]
    class ContributionAndProof(SSZContainer):
        fields = [
            ("aggregator_index", ValidatorIndex),
            ("contribution", SyncCommitteeContribution),
            ("selection_proof", BLSSignature),
        ]

    # [New in Altair]
    class SignedContributionAndProof(SSZContainer):
        fields = [
            ("message", ContributionAndProof),
            ("signature", BLSSignature),
        ]

    # [New in Altair]
    class SyncAggregatorSelectionData(SSZContainer):
        fields = [
            ("slot", Slot),
            ("subcommittee_index", uint64),
        ]

    # [New in Altair] light client (light-client/sync-protocol.md)
    class LightClientHeader(SSZContainer):
        fields = [
            ("beacon", BeaconBlockHeader),
        ]

    ns = extend(
        prev,
        SyncAggregate, SyncCommittee, BeaconBlockBody, BeaconBlock, SignedBeaconBlock,
        BeaconState, SyncCommitteeMessage, SyncCommitteeContribution, ContributionAndProof,
        SignedContributionAndProof, SyncAggregatorSelectionData, LightClientHeader,
        *light_client_containers(LightClientHeader, SyncCommittee, SyncAggregate,
                                 FINALIZED_ROOT_GINDEX, CURRENT_SYNC_COMMITTEE_GINDEX,
                                 NEXT_SYNC_COMMITTEE_GINDEX),
    )
    # [Removed in Altair]: PendingAttestation is no longer part of the state.
    del ns.PendingAttestation
    return ns
